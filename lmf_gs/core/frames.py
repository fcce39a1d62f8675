"""Which frames: training / held-out, the UDOS split, a list or a file, N neighbours (Eq. 16-17)."""

from __future__ import annotations

from pathlib import Path

from lmf_gs.data.epic_fields import frame_name
from lmf_gs.data.scene import Scene
from lmf_gs.data.udos import load_split
from lmf_gs.errors import DataError


def split_or_empty(scene: Scene, split: str) -> list[str]:
    """The UDOS split frames of the scene, or none when it has no annotations."""
    try:
        return scene.split_frames(split)
    except DataError:
        return []


def split_protected_frames(scene: Scene) -> set[str]:
    """UDOS split frames of this video (never held out), empty when there is no split."""
    try:
        entry = load_split(scene.paths.udos_split).get(scene.vid, {})
    except DataError:
        return set()
    return {f for frames in entry.values() for f in frames}


def train_holdout(scene: Scene, every: int) -> tuple[list[int], list[int]]:
    """Positions of training frames and of held-out frames (every k-th, not in the UDOS split)."""
    protected = split_protected_frames(scene)
    held = [] if every <= 0 else [
        i for i in range(every // 2, len(scene), every) if scene.frames[i] not in protected
    ]
    held_set = set(held)
    return [i for i in range(len(scene)) if i not in held_set], held


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
    """T_N = union over t in T of {t-N..t+N} in registered-frame order (sorted positions)."""
    out: set[int] = set()
    for f in frames:
        i = scene.index(f)
        out.update(range(max(0, i - n), min(len(scene), i + n + 1)))
    return sorted(out)
