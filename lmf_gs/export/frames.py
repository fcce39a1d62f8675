"""Which frame to export and which frames to render."""

from __future__ import annotations

from lmf_gs.core.frames import parse_frames, split_or_empty
from lmf_gs.data.epic_fields import frame_name, frame_number
from lmf_gs.data.scene import Scene
from lmf_gs.errors import DataError, LmfError


def _name(item: str) -> str:
    """``"80"`` -> ``frame_0000000080.jpg``; a frame name stays as it is."""
    item = item.strip()
    return frame_name(int(item)) if item.isdigit() else item


def _number(item: str, default: int) -> int:
    """A frame number from a number or a frame name; ``default`` for an empty string."""
    item = item.strip()
    if not item:
        return default
    return int(item) if item.isdigit() else frame_number(item)


def export_frame(scene: Scene, spec: str | None, split: str) -> str:
    """The frame named or numbered by ``spec``; by default the first UDOS split frame, or the
    middle registered frame of a video without a split."""
    if spec is None:
        frames = split_or_empty(scene, split)
        return frames[0] if frames else scene.frames[len(scene) // 2]
    name = _name(spec)
    scene.index(name)  # one-line error for an unregistered frame
    return name


def render_frames(scene: Scene, spec: str | None, split: str, video: bool) -> list[str]:
    """``START:END`` (frame numbers or names, inclusive) -> the registered frames in between;
    a comma list or a file -> those frames; None -> the UDOS split frames, or every registered
    frame for a video."""
    if spec is None and video:
        return list(scene.frames)
    if spec is None or ":" not in spec:
        return parse_frames(spec, scene, split)
    lo, _, hi = spec.partition(":")
    try:
        first = _number(lo, int(scene.frame_numbers[0]))
        last = _number(hi, int(scene.frame_numbers[-1]))
    except ValueError:
        raise LmfError(f"--frames {spec!r}: expected START:END frame numbers or names") from None
    frames = [f for f, n in zip(scene.frames, scene.frame_numbers, strict=True)
              if first <= n <= last]
    if not frames:
        raise DataError(f"--frames {spec!r}: no registered frame in this range")
    return frames
