"""Which frames to refine: the UDOS split, a list or a file; plus N neighbours (Eq. 16-17)."""

from __future__ import annotations

from pathlib import Path

from lmf_gs.data.epic_fields import frame_name
from lmf_gs.data.scene import Scene
from lmf_gs.errors import DataError


def parse_frames(spec: str | None, scene: Scene, split: str) -> list[str]:
    """``None`` -> the UDOS split frames; else a file (one frame per line) or a comma list of
    frame names or numbers. Every frame must be registered."""
    if spec is None:
        return scene.split_frames(split)
    path = Path(spec)
    items = path.read_text().split() if path.is_file() else spec.split(",")
    frames = []
    for item in (s.strip() for s in items):
        if not item:
            continue
        name = frame_name(int(item)) if item.isdigit() else item
        scene.index(name)  # one-line error for an unregistered frame
        frames.append(name)
    if not frames:
        raise DataError(f"--frames {spec!r}: no frames given")
    return list(dict.fromkeys(frames))


def with_neighbors(scene: Scene, frames: list[str], n: int) -> list[int]:
    """T_N = union over t in T of {t-N..t+N} in registered-frame order (sorted indices)."""
    out: set[int] = set()
    for f in frames:
        i = scene.index(f)
        out.update(range(max(0, i - n), min(len(scene), i + n + 1)))
    return sorted(out)
