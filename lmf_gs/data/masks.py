"""Soft 2D masks stored as 8-bit PNGs: motion masks (fusion input) and GT annotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from lmf_gs.data.paths import ScenePaths, png_name
from lmf_gs.errors import DataError


def read_png(path: Path) -> np.ndarray:
    """A single-channel PNG as a float64 ``[H, W]`` array of its raw values."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        arr = np.asarray(Image.open(path))
    except (OSError, UnidentifiedImageError) as e:
        raise DataError(f"{path}: cannot read PNG ({e})") from None
    if arr.ndim == 3:
        if not (arr[..., :3] == arr[..., :1]).all():
            raise DataError(f"{path}: expected a single-channel mask, got {arr.shape[2]} channels")
        arr = arr[..., 0]
    return arr.astype(np.float64)


def read_soft_mask(path: Path) -> np.ndarray:
    """A soft score PNG (0..255) as float64 ``[H, W]`` in [0, 1]."""
    return read_png(path) / 255.0


class MotionMasks:
    """2D motion masks of one video: ``motion_masks/{vid}/`` first, then the UDOS MG cache.

    Where a frame's mask is (or that it has none) is looked up once and remembered for the
    life of this object: a mask written later is seen by a new `MotionMasks` (a new `Scene`).
    """

    def __init__(self, paths: ScenePaths):
        self.dirs = [paths.motion_masks, paths.mg_cache]
        self._paths: dict[str, Path | None] = {}

    def path(self, frame: str) -> Path | None:
        """The PNG for ``frame`` (a .jpg frame name), or None when no mask exists."""
        if frame not in self._paths:
            files = (d / png_name(frame) for d in self.dirs)
            self._paths[frame] = next((p for p in files if p.is_file()), None)
        return self._paths[frame]

    def read(self, frame: str) -> np.ndarray | None:
        """Soft mask ``[H, W]`` in [0, 1], or None for a frame without a mask."""
        p = self.path(frame)
        return None if p is None else read_soft_mask(p)
