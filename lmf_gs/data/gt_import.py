"""Human object masks (e.g. DAVIS ``Annotations/<video>/00000.png``) -> UDOS ground truth.

The k-th mask of a folder (natural name order, ``2.png`` before ``10.png``) is the mask of source
frame k, i.e. frame number ``first_number + k`` (``frame_0000000001`` = source frame 0, as
``lmf-gs prepare`` numbers frames). Any non-zero label (0/255, palette index, RGB colour) is the
object. Masks are resized nearest-neighbour to the size of ``frames/VID/`` and written as 0/1
8-bit PNGs into the three UDOS folders:

- layer ``dynamic`` (default): ``test_dynamic`` = ``test_dynamic_semistatic`` = the object,
  ``test_semistatic`` all zero;
- layer ``semistatic`` (an object that was moved, then rests): ``test_semistatic`` =
  ``test_dynamic_semistatic`` = the object, ``test_dynamic`` all zero.

The video's entry in ``udos/split/test.json`` becomes ``within_action`` = the annotated frames
(those registered in ``epic_fields/VID.json`` when that file exists), other videos are kept.
Everything is checked before anything is written; the folders are built in a staging folder and
moved into place at the end, and an existing annotation of VID is only replaced with
``overwrite``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from lmf_gs.config import MOTION_TYPES
from lmf_gs.data.epic_fields import FRAME_RE, frame_name, load_epic_fields
from lmf_gs.data.paths import ScenePaths, natural_key, png_name
from lmf_gs.data.udos import SPLIT_KEYS, load_split
from lmf_gs.errors import DataError

MASK_SUFFIXES = (".png",)  # lossless only: a JPEG mask's compression noise would read as object
LAYERS = {  # layer -> the motion types whose GT is the object (the others are all zero)
    "dynamic": ("dynamic", "dynamic_semistatic"),
    "semistatic": ("semistatic", "dynamic_semistatic"),
}
ASPECT_TOLERANCE_PX = 1  # prepare rounds the working size to whole pixels


@dataclass(frozen=True)
class GtImportOptions:
    """``every``: annotate only every N-th mask (mask 0, N, 2N, ...); ``first_number``: frame
    number of the first mask; ``layer``: a key of `LAYERS`; ``overwrite``: replace VID's
    existing annotation and split entry."""

    every: int = 1
    first_number: int = 1
    layer: str = "dynamic"
    overwrite: bool = False


@dataclass
class GtPlan:
    """What an import will write, found by `plan_import` without writing anything."""

    masks: dict[str, Path]  # frame name (.jpg) -> its mask file, for every annotated frame
    split: list[str]  # the ``within_action`` frames (annotated and registered)
    size: tuple[int, int]  # (width, height) of the frames
    unregistered: int  # annotated frames left out of the split (not in epic_fields/VID.json)


@dataclass
class GtImportResult:
    """What `import_gt_masks` wrote."""

    plan: GtPlan
    folders: list[Path]  # the three annotation folders of VID
    split_path: Path
    object_share: float  # mean object pixel fraction over the split frames showing the object
    frames_with_object: int  # split frames with at least one object pixel


def list_masks(mask_dir: Path) -> list[Path]:
    """The mask images of ``mask_dir`` in natural name order; `DataError` if none."""
    if not mask_dir.is_dir():
        raise DataError(f"{mask_dir}: mask folder not found")
    masks = sorted((p for p in mask_dir.iterdir()
                    if p.is_file() and p.suffix.lower() in MASK_SUFFIXES),
                   key=lambda p: natural_key(p.name))
    if not masks:
        raise DataError(f"{mask_dir}: no mask images ({'/'.join(MASK_SUFFIXES)}) in the folder")
    return masks


def read_object_mask(path: Path) -> np.ndarray:
    """``bool [H, W]``: the pixels with a non-zero label (grey level, palette index or colour)."""
    try:
        with Image.open(path) as img:
            arr = np.asarray(img)
            mode = img.mode
    except (OSError, UnidentifiedImageError, SyntaxError) as e:
        raise DataError(f"{path}: cannot read mask image ({e})") from None
    if arr.ndim == 3:  # LA, RGB, RGBA: the colour channels, not alpha
        arr = arr[..., :1] if mode == "LA" else arr[..., :3]
        return (arr != 0).any(axis=2)
    return arr != 0


def _image_size(path: Path, what: str) -> tuple[int, int]:
    """(width, height) from the image header, without decoding."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, UnidentifiedImageError, SyntaxError) as e:
        raise DataError(f"{path}: cannot read {what} ({e})") from None


def _frame_numbers(folder: Path) -> list[int]:
    """Sorted frame numbers of the ``frame_XXXXXXXXXX.jpg`` files in ``folder``."""
    if not folder.is_dir():
        raise DataError(f"{folder}: frame folder not found (write it with lmf-gs prepare)")
    numbers = sorted(int(m.group(1)) for p in folder.iterdir()
                     if (m := FRAME_RE.match(p.name)) is not None)
    if not numbers:
        raise DataError(f"{folder}: no frame_XXXXXXXXXX.jpg frames in the folder")
    return numbers


def _check_sizes(masks: list[Path], frame: Path) -> tuple[int, int]:
    """All masks share one size with the aspect ratio of the frames; returns the frame size."""
    fw, fh = _image_size(frame, "frame")
    mw, mh = _image_size(masks[0], "mask image")
    for p in masks[1:]:
        if (size := _image_size(p, "mask image")) != (mw, mh):
            raise DataError(f"{p}: {size[0]}x{size[1]} pixels, but {masks[0].name} is {mw}x{mh}")
    if (abs(round(mh * fw / mw) - fh) > ASPECT_TOLERANCE_PX
            or abs(round(mw * fh / mh) - fw) > ASPECT_TOLERANCE_PX):
        raise DataError(f"{masks[0]}: {mw}x{mh} pixels does not have the shape of the frames "
                        f"({frame.name} is {fw}x{fh}): masks of another video?")
    return fw, fh


def plan_import(mask_dir: Path, paths: ScenePaths, options: GtImportOptions) -> GtPlan:
    """Check masks, frames, split and existing outputs; `DataError` (one line) on any problem."""
    if options.every < 1 or options.first_number < 1:
        raise DataError(f"every={options.every}, first_number={options.first_number}: both must "
                        "be at least 1")
    if options.layer not in LAYERS:
        raise DataError(f"unknown layer {options.layer!r} (expected one of: {', '.join(LAYERS)})")
    masks = list_masks(mask_dir)
    numbers = _frame_numbers(paths.frames)
    first, last = options.first_number, options.first_number + len(masks) - 1
    # the masks must end where the source video ends: at the last written frame, or before the
    # next frame prepare would have sampled (its largest step between written frames)
    step = max(np.diff(numbers), default=1)
    if not numbers[-1] <= last < numbers[-1] + step:
        raise DataError(
            f"{mask_dir}: {len(masks)} masks map to frames {first}..{last}, but "
            f"{paths.frames} ends at frame {numbers[-1]}: masks of another video, or a wrong "
            "--first-number?")
    present = set(numbers)
    chosen = {frame_name(first + k): p for k, p in enumerate(masks)
              if k % options.every == 0 and first + k in present}
    if not chosen:
        raise DataError(f"{mask_dir}: no mask falls on a frame of {paths.frames}")
    size = _check_sizes(masks, paths.frames / next(iter(chosen)))
    split = list(chosen)
    if paths.epic_fields.is_file():
        registered = set(load_epic_fields(paths.epic_fields).frames)
        split = [f for f in split if f in registered]
        if not split:
            raise DataError(f"{paths.epic_fields}: none of the {len(chosen)} annotated frames is "
                            "registered")
    _check_outputs(paths, options.overwrite)
    return GtPlan(chosen, split, size, len(chosen) - len(split))


def _check_outputs(paths: ScenePaths, overwrite: bool) -> None:
    """Refuse to replace an existing annotation or split entry of the video without overwrite."""
    if paths.udos_split.exists() and paths.vid in load_split(paths.udos_split) and not overwrite:
        raise DataError(f"{paths.udos_split}: already has {paths.vid} (pass --overwrite to "
                        "replace it)")
    for motion in MOTION_TYPES:
        folder = _folder(paths, motion)
        if folder.exists() and not overwrite:
            raise DataError(f"{folder}: annotation exists (pass --overwrite to replace it)")


def _folder(paths: ScenePaths, motion: str) -> Path:
    """The annotation folder of the video for one motion type (where the loader reads)."""
    return paths.gt_mask(motion, "frame_0000000000.jpg").parent


def _write_split(path: Path, vid: str, frames: list[str]) -> None:
    """Merge ``vid`` into the split file (other videos kept), replacing the file atomically."""
    merged = load_split(path) if path.exists() else {}
    merged[vid] = {key: (frames if key == "within_action" else []) for key in SPLIT_KEYS}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(merged, indent=1))
    os.replace(tmp, path)


def import_gt_masks(
    mask_dir: Path, paths: ScenePaths, options: GtImportOptions,
    progress: Callable[[Iterable[str]], Iterable[str]] = lambda it: it,
) -> GtImportResult:
    """Check (`plan_import`), then write the UDOS annotation folders of ``paths.vid`` and merge
    its split entry. ``progress`` wraps the iteration over the frames (e.g. rich's ``track``)."""
    plan = plan_import(mask_dir, paths, options)
    positive = LAYERS[options.layer]
    paths.udos_annotations.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".gt-{paths.vid}-", dir=paths.udos_annotations))
    shares: dict[str, float] = {}
    try:
        for motion in MOTION_TYPES:
            (stage / motion).mkdir()
        zero = np.zeros(plan.size[::-1], np.uint8)
        for frame in progress(list(plan.masks)):
            obj = read_object_mask(plan.masks[frame]).astype(np.uint8)
            obj = cv2.resize(obj, plan.size, interpolation=cv2.INTER_NEAREST_EXACT)
            shares[frame] = float(obj.mean())
            for motion in MOTION_TYPES:
                Image.fromarray(obj if motion in positive else zero).save(
                    stage / motion / png_name(frame))
        folders = [_folder(paths, motion) for motion in MOTION_TYPES]
        for motion, folder in zip(MOTION_TYPES, folders, strict=True):
            if folder.exists():  # only reached with overwrite (checked in plan_import)
                folder.rename(stage / f"old-{motion}")
            folder.parent.mkdir(parents=True, exist_ok=True)
            (stage / motion).rename(folder)
        _write_split(paths.udos_split, paths.vid, plan.split)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    seen = [shares[f] for f in plan.split if shares[f] > 0]
    return GtImportResult(plan, folders, paths.udos_split,
                          float(np.mean(seen)) if seen else 0.0, len(seen))
