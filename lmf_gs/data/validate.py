"""`validate_frames`: find missing, corrupt or mis-sized frames and motion masks before training."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from rich.progress import track

from lmf_gs.data.frames import decode_rgb
from lmf_gs.data.masks import read_png
from lmf_gs.data.scene import Scene
from lmf_gs.errors import DataError

JPEG_END = b"\xff\xd9"


@dataclass(frozen=True)
class FrameCheck:
    """What `validate_frames` looked at."""

    frames: int
    masks: int
    seconds: float


def _size_problem(scene: Scene, source: str, width: int, height: int) -> str | None:
    raw = scene.raw_intrinsics
    if (width, height) == (raw.width, raw.height):
        return None
    return (f"{source}: size {width}x{height} does not match the camera "
            f"({raw.width}x{raw.height} in {scene.paths.epic_fields.name})")


def _decode_problem(scene: Scene, data: bytes, source: str) -> str | None:
    try:
        img = decode_rgb(data, source)
    except DataError as e:
        return str(e)
    return _size_problem(scene, source, img.shape[1], img.shape[0])


def _check_frame(scene: Scene, name: str, decode: bool) -> str | None:
    store = scene.frame_store
    source = store.source(name)
    data = store.read_bytes(name)
    if decode or not data.endswith(JPEG_END):  # no end marker: truncated, unless it decodes
        return _decode_problem(scene, data, source)
    try:
        with Image.open(io.BytesIO(data)) as img:
            size = img.size
    except (OSError, UnidentifiedImageError, SyntaxError):
        return _decode_problem(scene, data, source)  # with the reason decoding gives
    return _size_problem(scene, source, *size)


def _check_mask(scene: Scene, path: Path, decode: bool) -> str | None:
    try:
        if decode:
            arr = read_png(path)
            size = (arr.shape[1], arr.shape[0])
        else:
            with Image.open(path) as img:
                size = img.size
                img.verify()  # PNG: chunk structure and CRCs, without decompressing
    except DataError as e:
        return str(e)
    except (OSError, UnidentifiedImageError, SyntaxError) as e:
        return f"{path}: cannot read PNG ({e})"
    return _size_problem(scene, str(path), *size)


def validate_frames(
    scene: Scene, decode: bool = False, workers: int = 2, progress: bool = False
) -> FrameCheck:
    """Check that every registered frame of ``scene`` exists, is an image of the camera's size
    and is complete, and that every motion mask it has is a PNG of the camera's size.

    ``decode=False`` reads each JPEG's header and checks its end-of-image marker (a frame without
    one is decoded to decide), and checks mask PNGs' structure and CRCs; ``decode=True`` fully
    decodes every frame and mask. Raises one `DataError` naming the first bad file in frame order
    and how many are bad; ``progress`` shows a progress bar.
    """
    start = time.perf_counter()
    names = scene.frames
    scene.frame_store  # noqa: B018 (raises for missing frames, naming the first and the count)
    mask_paths = [scene.masks.path(n) for n in names]

    def check(k: int) -> list[str]:
        problems = [_check_frame(scene, names[k], decode)]
        if mask_paths[k] is not None:
            problems.append(_check_mask(scene, mask_paths[k], decode))
        return [p for p in problems if p is not None]

    with ThreadPoolExecutor(max(workers, 1)) as pool:
        results = pool.map(check, range(len(names)))
        problems = [p for ps in track(results, total=len(names), description="checking frames",
                                      disable=not progress, transient=True) for p in ps]
    if problems:
        more = f" ({len(problems)} bad files in all)" if len(problems) > 1 else ""
        raise DataError(problems[0] + more)
    n_masks = sum(p is not None for p in mask_paths)
    return FrameCheck(len(names), n_masks, time.perf_counter() - start)
