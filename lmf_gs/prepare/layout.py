"""The canonical files ``prepare`` writes, staged in a temporary folder under the data root and
moved in place only once everything succeeded (nothing half-written on failure or Ctrl-C)."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from rich.progress import Progress

from lmf_gs.data.epic_fields import frame_name
from lmf_gs.errors import DataError, LmfError
from lmf_gs.prepare.sfm import SfmResult
from lmf_gs.prepare.source import FrameSource, Sampling, resize, working_size

JPEG_QUALITY = 95
VID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Outputs:
    """Where one video's results go in the data root."""

    frames: Path  # frames/{vid}/
    epic_fields: Path  # epic_fields/{vid}.json
    sfm: Path  # sfm/{vid}/ (pycolmap database, sparse models, sfm_report.json)

    @classmethod
    def of(cls, root: Path, vid: str) -> Outputs:
        if not VID_RE.match(vid):
            raise LmfError(f"--vid {vid!r}: use letters, digits, '_', '-' and '.' only")
        return cls(root / "frames" / vid, root / "epic_fields" / f"{vid}.json",
                   root / "sfm" / vid)

    def existing(self) -> list[Path]:
        return [p for p in (self.epic_fields, self.frames, self.sfm) if p.exists()]


def refuse_overwrite(out: Outputs, overwrite: bool) -> None:
    """`LmfError` when a previous result exists and ``overwrite`` is not set."""
    found = out.existing()
    if found and not overwrite:
        raise LmfError(f"{found[0]} already exists (a previous prepare?): pass --overwrite to "
                       "replace " + ", ".join(str(p) for p in found))


@contextmanager
def staging(root: Path, vid: str) -> Iterator[Path]:
    """A new folder ``root/.prepare-{vid}-*`` that is removed on exit, whatever happens (and
    ``root`` too if this made it and it is left empty)."""
    made_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".prepare-{vid}-", dir=root))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if made_root and not any(root.iterdir()):
            root.rmdir()


def commit(stage: Path, out: Outputs) -> None:
    """Move ``stage/{frames, sfm, epic_fields.json}`` in place, replacing previous ones (moved
    aside into the stage first, so each path is swapped by one rename); the JSON goes last."""
    old = stage / "replaced"
    old.mkdir()
    moves = [(stage / "frames", out.frames), (stage / "sfm", out.sfm),
             (stage / "epic_fields.json", out.epic_fields)]
    for i, (src, dst) in enumerate(moves):
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():
            dst.rename(old / str(i))
        src.rename(dst)


@dataclass
class WrittenFrames:
    """Frames written at the working size: their EPIC numbers (source index + 1), in order."""

    numbers: list[int]
    size: tuple[int, int]  # (w, h) written
    source_size: tuple[int, int]  # (w, h) of the source
    source_frames: int  # source frames seen (kept or not)

    @property
    def names(self) -> list[str]:
        return [frame_name(n) for n in self.numbers]


def write_frames(source: FrameSource, folder: Path, step: float, longest: int | None,
                 bar: Progress) -> WrittenFrames:
    """Write every kept source frame (`Sampling.keeps` with ``step``), resized to the working
    size (longest side ``longest``), as ``folder/frame_{index + 1:010d}.jpg``."""
    folder.mkdir(parents=True)
    task = bar.add_task("frames", total=source.count)
    numbers: list[int] = []
    first: tuple[int, int] | None = None
    size = (0, 0)
    seen = 0
    for i, rgb in source.frames(lambda i: Sampling.keeps(i, step)):
        seen += 1
        bar.advance(task)
        if rgb is None:
            continue
        shape = (rgb.shape[1], rgb.shape[0])
        if first is None:
            first, size = shape, working_size(*shape, longest)
        elif shape != first:
            raise DataError(f"{source.where(i)}: {shape[0]}x{shape[1]} pixels, but the first "
                            f"frame is {first[0]}x{first[1]}")
        Image.fromarray(np.ascontiguousarray(resize(rgb, size))).save(
            folder / frame_name(i + 1), quality=JPEG_QUALITY)
        numbers.append(i + 1)
    bar.update(task, total=seen, completed=seen)
    return WrittenFrames(numbers, size, first or (0, 0), seen)


def epic_fields_doc(sfm: SfmResult, fps: float | None) -> dict:
    """EPIC Fields JSON: OPENCV camera, world-to-camera ``images`` in frame order, coloured
    ``points``, and the source frame rate as ``fps`` when known."""
    k = sfm.intrinsics
    rgb = np.clip(np.rint(sfm.points[:, 3:6]), 0, 255).astype(int).tolist()
    doc: dict = {
        "camera": {"id": 1, "model": "OPENCV", "width": k.width, "height": k.height,
                   "params": [k.fx, k.fy, k.cx, k.cy, *map(float, k.dist)]},
        "images": {name: sfm.poses[name] for name in sorted(sfm.poses)},
        "points": [[*xyz, *c] for xyz, c in zip(sfm.points[:, :3].tolist(), rgb, strict=True)],
    }
    if fps is not None:
        doc["fps"] = float(fps)
    return doc


def frame_ranges(numbers: list[int], given: list[int] | None = None) -> str:
    """Runs of ``numbers`` that are consecutive in ``given`` (default: in the integers):
    ``[12, 13, 14, 15, 40]`` -> ``"12-15, 40"``; with ``given = [1, 3, 5, 7]``, ``[3, 5, 7]`` ->
    ``"3-7"``."""
    position = ({n: n for n in numbers} if given is None
                else {n: i for i, n in enumerate(sorted(given))})
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and position[n] == position[runs[-1][-1]] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)
