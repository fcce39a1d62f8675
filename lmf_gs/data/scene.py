"""`Scene`: one EPIC video with its cameras, frames, motion masks and UDOS annotations."""

from __future__ import annotations

from functools import cached_property

import cv2
import numpy as np
from PIL import Image

from lmf_gs.config import DataConfig
from lmf_gs.data.cache import ArrayCache
from lmf_gs.data.camera import Intrinsics, Remap
from lmf_gs.data.epic_fields import frame_number, load_epic_fields, near_far_from_points
from lmf_gs.data.frames import FrameStore
from lmf_gs.data.masks import MotionMasks, read_png
from lmf_gs.data.paths import ScenePaths
from lmf_gs.data.udos import GroundTruth, load_gt, split_frames
from lmf_gs.errors import DataError


def box_downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks of ``[H, W]`` or ``[H, W, C]`` (remainder cropped)."""
    if factor == 1:
        return image
    h, w = image.shape[0] // factor, image.shape[1] // factor
    img = np.ascontiguousarray(image[: h * factor, : w * factor])
    # OpenCV's area resampling by an integer factor is this block mean, ~20x faster than numpy's
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA).reshape(h, w, *img.shape[2:])


def resize_bilinear(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of a float ``[H, W]`` map (pixel centres aligned, as PIL)."""
    if image.shape == (height, width):
        return image.astype(np.float32, copy=False)
    pil = Image.fromarray(image.astype(np.float32), mode="F")
    return np.asarray(pil.resize((width, height), Image.Resampling.BILINEAR))


class Scene:
    """One video. Images and masks are undistorted onto the pinhole camera `intrinsics` (the
    original K, scaled by ``1/downscale``); predictions go back to the original distorted grid
    with `to_gt_grid`. Frames are sorted by frame number; ``times`` maps them to [-1, 1].
    """

    def __init__(self, vid: str, cfg: DataConfig):
        self.vid = vid
        self.cfg = cfg
        self.paths = ScenePaths.from_config(vid, cfg)
        ef = load_epic_fields(self.paths.epic_fields)
        self.raw_intrinsics: Intrinsics = ef.intrinsics
        self.frames: list[str] = ef.frames
        self.frame_numbers = np.array([frame_number(f) for f in self.frames], dtype=np.int64)
        # frame rate of the frame numbers: the camera file's ``fps`` key, else ``data.fps``
        self.fps: float = ef.fps if ef.fps is not None else cfg.fps
        self.w2c: np.ndarray = ef.w2c
        self.points: np.ndarray = ef.points
        self.point_colors: np.ndarray = ef.point_colors
        self._index = {f: i for i, f in enumerate(self.frames)}
        self.intrinsics: Intrinsics = self.raw_intrinsics.pinhole().downscaled(cfg.downscale)
        self.masks = MotionMasks(self.paths)
        # decoded frames and masks, uint8 at the working resolution, least recently used first out
        self.cache = ArrayCache(cfg.cache_mb * 2**20 if cfg.cache_frames else 0)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def width(self) -> int:
        return self.intrinsics.width

    @property
    def height(self) -> int:
        return self.intrinsics.height

    def index(self, frame: str | int) -> int:
        """Position of a frame given by name or frame number."""
        name = frame if isinstance(frame, str) else f"frame_{frame:010d}.jpg"
        if name not in self._index:
            raise DataError(f"{self.paths.epic_fields}: frame {name} is not registered")
        return self._index[name]

    @property
    def duration_s(self) -> float:
        """Seconds from the first to the last registered frame (``times`` -1 to 1)."""
        return float(self.frame_numbers[-1] - self.frame_numbers[0]) / self.fps

    @cached_property
    def times(self) -> np.ndarray:
        """Normalised time in [-1, 1] from frame numbers ``[N]`` (float32): t = -1 + 2 s /
        `duration_s` at s seconds after the first frame."""
        f = self.frame_numbers.astype(np.float64)
        span = max(f[-1] - f[0], 1.0)
        return (2.0 * (f - f[0]) / span - 1.0).astype(np.float32)

    @cached_property
    def c2w(self) -> np.ndarray:
        """Camera-to-world ``[N, 4, 4]``."""
        return np.linalg.inv(self.w2c)

    @cached_property
    def near_far(self) -> np.ndarray:
        """Per-frame near/far ``[N, 2]`` from the SfM points (NeuralDiff's 0.1%/99.9% quantiles)."""
        if len(self.points) == 0:
            raise DataError(f"{self.paths.epic_fields}: no 'points', cannot compute near/far")
        return near_far_from_points(self.w2c, self.points)

    @cached_property
    def frame_store(self) -> FrameStore:
        store = FrameStore(self.paths.frames)
        missing = store.missing(self.frames)
        if missing:
            raise DataError(
                f"{store.path}: missing frame {missing[0]} "
                f"({len(missing)} of {len(self.frames)} registered frames absent)"
            )
        return store

    @cached_property
    def _undistort(self) -> Remap | None:
        return Remap.undistort(self.raw_intrinsics) if self.raw_intrinsics.has_distortion else None

    @cached_property
    def _redistort(self) -> Remap | None:
        return Remap.redistort(self.raw_intrinsics) if self.raw_intrinsics.has_distortion else None

    def _to_working(self, image: np.ndarray, source: str) -> np.ndarray:
        """Original-grid image -> undistorted, downscaled float32."""
        raw = self.raw_intrinsics
        if image.shape[:2] != (raw.height, raw.width):
            raise DataError(
                f"{source}: size {image.shape[1]}x{image.shape[0]} does not match the camera "
                f"({raw.width}x{raw.height} in {self.paths.epic_fields.name})"
            )
        img = image.astype(np.float32)
        if self._undistort is not None:
            img = self._undistort(img)
        return box_downscale(img, self.cfg.downscale).astype(np.float32)

    def _to_uint8(self, image: np.ndarray, source: str) -> np.ndarray:
        """Original-grid 0..255 image -> undistorted, downscaled, rounded uint8."""
        return np.clip(np.rint(self._to_working(image, source)), 0, 255).astype(np.uint8)

    def image_u8(self, frame: str | int) -> np.ndarray:
        """Undistorted RGB ``uint8 [h, w, 3]`` of a frame (name or index), from the cache or
        decoded into it. Safe from several threads; do not modify the returned array."""
        name = frame if isinstance(frame, str) else self.frames[int(frame)]
        img = self.cache.get(("rgb", name))
        if img is None:
            self.index(name)
            img = self._to_uint8(self.frame_store.read(name), self.frame_store.source(name))
            self.cache.put(("rgb", name), img)
        return img

    def image(self, frame: str | int) -> np.ndarray:
        """Undistorted RGB ``float32 [h, w, 3]`` in [0, 1] of a frame (name or index)."""
        return self.image_u8(frame).astype(np.float32) / 255

    def motion_mask_u8(self, frame: str | int) -> np.ndarray | None:
        """Undistorted soft motion mask ``uint8 [h, w]`` (255 = moving), or None when the frame
        has none (remembered). Safe from several threads; do not modify the returned array."""
        name = frame if isinstance(frame, str) else self.frames[int(frame)]
        path = self.masks.path(name)
        if path is None:
            return None
        mask = self.cache.get(("mask", name))
        if mask is None:
            mask = self._to_uint8(read_png(path), str(path))
            self.cache.put(("mask", name), mask)
        return mask

    def motion_mask(self, frame: str | int) -> np.ndarray | None:
        """Undistorted soft motion mask ``float32 [h, w]`` in [0, 1], or None when the frame has
        none."""
        mask = self.motion_mask_u8(frame)
        return None if mask is None else mask.astype(np.float32) / 255

    def split_frames(self, kind: str = "within_action") -> list[str]:
        """UDOS split frames of this video; each must be a registered frame."""
        frames = split_frames(self.paths.udos_split, self.vid, kind)
        absent = [f for f in frames if f not in self._index]
        if absent:
            raise DataError(
                f"{self.paths.udos_split}: split frame {absent[0]} of {self.vid} is not registered "
                f"in {self.paths.epic_fields.name} ({len(absent)} absent)"
            )
        return frames

    def gt(self, motion: str, frame: str) -> GroundTruth:
        """UDOS GT of a frame at the original resolution."""
        return load_gt(self.paths, motion, frame)

    def to_gt_grid(self, pred: np.ndarray) -> np.ndarray:
        """A working-resolution pinhole map ``[h, w]`` -> the original distorted grid ``[H, W]``."""
        raw = self.raw_intrinsics
        out = resize_bilinear(pred, raw.width, raw.height)
        return out if self._redistort is None else self._redistort(out)
