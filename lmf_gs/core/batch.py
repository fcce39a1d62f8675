"""A batch of training targets and the frame render every backend returns."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class Batch:
    """Targets of C cameras (C frames, or C one-pixel cameras for a batch of rays)."""

    index: Tensor  # [C] positions of the frames in the scene
    t: Tensor  # [C] normalised times
    w2c: Tensor  # [C, 4, 4]
    K: Tensor  # [C, 3, 3]
    image: Tensor  # [C, H, W, 3] in [0, 1]
    motion: Tensor | None = None  # [C, H, W] soft 2D motion masks
    has_motion: Tensor | None = None  # [C] bool: which frames have a mask


Crop = tuple[int, int, int, int]  # x0, y0, x1, y1 (pixels, end exclusive)


@dataclass
class FrameRender:
    """A whole frame at the working resolution, as every backend renders it."""

    rgb: Tensor  # [H, W, 3]
    masks: Tensor  # [H, W, 3] soft layer masks (static, semi-static, dynamic)
    depth: Tensor  # [H, W] expected depth (world units)
