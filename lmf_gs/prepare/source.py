"""Frames of a video file (imageio's ffmpeg plugin) or of a folder of images, sampled and resized.

Source frame ``i`` (0-based, decode order for a video, natural name order for a folder) becomes
the EPIC frame number ``i + 1`` (``frame_0000000001.jpg`` is the first frame), so frame numbers
stay those of the source whatever the sampling.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lmf_gs.data.frames import decode_rgb
from lmf_gs.data.paths import natural_key
from lmf_gs.errors import DataError, LmfError

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
EPIC_LONGEST_SIDE = 456  # EPIC Fields frames are 456x256


def _ffmpeg_reason(error: Exception) -> str:
    """The last line of an imageio/ffmpeg error, without ffmpeg's banner."""
    lines = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else type(error).__name__
    return last.split(": ", 1)[-1] if last.startswith("Error opening input") else last


@dataclass
class FrameSource:
    """A readable video or frame folder. ``fps``: its frame rate when known (a video's own, or
    the one given for a folder); ``count``: its number of frames when known."""

    path: Path
    kind: str  # "video" | "folder"
    fps: float | None
    count: int | None
    files: list[Path]  # the folder's images in natural order (empty for a video)

    def where(self, index: int) -> str:
        """Source frame ``index`` named for an error message."""
        return str(self.files[index]) if self.kind == "folder" else f"{self.path} frame {index}"

    def frames(self, keep: Callable[[int], bool]) -> Iterator[tuple[int, np.ndarray | None]]:
        """``(source index, uint8 [H, W, 3])`` for every frame, the image None where
        ``keep(index)`` is false (a video is decoded whole anyway, a folder's image is not
        read); `DataError` names what is unreadable."""
        if self.kind == "folder":
            for i, f in enumerate(self.files):
                yield i, decode_rgb(f.read_bytes(), str(f)) if keep(i) else None
            return
        import imageio.v3 as iio

        i = -1
        try:
            for i, frame in enumerate(iio.imiter(self.path, plugin="FFMPEG")):
                yield i, np.ascontiguousarray(frame[..., :3]) if keep(i) else None
        except (OSError, RuntimeError, ValueError) as e:
            where = "" if i < 0 else f" after frame {i}"
            raise DataError(f"{self.path}: cannot decode the video{where} "
                            f"({_ffmpeg_reason(e)})") from None
        if i < 0:
            raise DataError(f"{self.path}: the video has no frames")


def open_source(path: Path, fps: float | None = None) -> FrameSource:
    """Check that ``path`` is a readable video or a folder with images; ``fps`` overrides (video)
    or gives (folder) the source frame rate. Raises `LmfError` with one line otherwise."""
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise LmfError(f"source frame rate must be a positive number, got {fps}")
    if not path.exists():
        raise DataError(f"{path}: not found")
    if path.is_dir():
        files = sorted((p for p in path.iterdir()
                        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                       key=lambda p: natural_key(p.name))
        if not files:
            raise DataError(f"{path}: no {'/'.join(IMAGE_SUFFIXES)} images in this folder")
        return FrameSource(path, "folder", fps, len(files), files)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise LmfError(f"{path}: unsupported source (expected a video {'/'.join(VIDEO_SUFFIXES)} "
                       "or a folder of .jpg/.png frames)")
    import imageio.v3 as iio

    try:
        meta = iio.immeta(path, plugin="FFMPEG")
    except (OSError, RuntimeError, ValueError) as e:
        raise DataError(f"{path}: cannot read the video ({_ffmpeg_reason(e)})") from None
    own_fps = float(meta.get("fps") or 0.0)
    rate = fps if fps is not None else (own_fps if math.isfinite(own_fps) and own_fps > 0
                                        else None)
    duration = float(meta.get("duration") or 0.0)
    count = round(duration * own_fps) if own_fps > 0 and math.isfinite(duration) else None
    return FrameSource(path, "video", rate, count or None, [])


@dataclass(frozen=True)
class Sampling:
    """Which source frames to keep: every ``every``-th, or about ``fps`` per second (at least one
    source frame apart). Neither: every frame."""

    every: int | None = None
    fps: float | None = None

    def __post_init__(self) -> None:
        if self.every is not None and self.fps is not None:
            raise LmfError("give --every or --fps, not both")
        if self.every is not None and self.every < 1:
            raise LmfError(f"--every must be at least 1, got {self.every}")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise LmfError(f"--fps must be a positive number, got {self.fps}")

    def step(self, source_fps: float | None) -> float:
        """Source frames per kept frame (>= 1)."""
        if self.fps is None:
            return float(self.every or 1)
        if source_fps is None:
            raise LmfError("--fps needs the source frame rate: a frame folder has none, give "
                           "--source-fps (or use --every)")
        return max(1.0, source_fps / self.fps)

    @staticmethod
    def keeps(index: int, step: float) -> bool:
        """Whether source frame ``index`` is the first at or after a multiple of ``step``."""
        eps = 1e-9
        return index == 0 or math.floor(index / step + eps) > math.floor((index - 1) / step + eps)


def working_size(width: int, height: int, longest: int | None) -> tuple[int, int]:
    """``(w, h)`` with the longest side ``longest`` (never enlarged; None or 0: unchanged)."""
    scale = 1.0 if not longest else min(1.0, longest / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-averaged resize of ``uint8 [H, W, 3]`` to ``size`` = (w, h)."""
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
