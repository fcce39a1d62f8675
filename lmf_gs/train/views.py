"""From a `Scene` to the Gaussian backend's tensors: cameras, times, frame batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lmf_gs.core.batch import Batch
from lmf_gs.core.geometry import median_point_depth
from lmf_gs.data.scene import Scene
from lmf_gs.model.layered import SceneGeometry


@dataclass
class Cameras:
    """All registered cameras of a scene at the working resolution."""

    w2c: torch.Tensor  # [N, 4, 4] float32
    K: torch.Tensor  # [3, 3]
    t: torch.Tensor  # [N] normalised time
    width: int
    height: int

    @classmethod
    def of(cls, scene: Scene, device: torch.device) -> Cameras:
        return cls(
            w2c=torch.as_tensor(scene.w2c, dtype=torch.float32, device=device),
            K=torch.as_tensor(scene.intrinsics.K, dtype=torch.float32, device=device),
            t=torch.as_tensor(scene.times, device=device),
            width=scene.width,
            height=scene.height,
        )


def scene_geometry(scene: Scene) -> SceneGeometry:
    """Points, colours and scale for model initialisation."""
    scale = median_point_depth(scene)
    return SceneGeometry(
        points=scene.points,
        colors=scene.point_colors / 255.0,
        scale=scale,
        K=scene.intrinsics.K,
        width=scene.width,
        height=scene.height,
    )


def make_batch(scene: Scene, cams: Cameras, idx: list[int], motion: bool = False) -> Batch:
    """Targets of frames ``idx`` (images, and motion masks when ``motion``)."""
    device = cams.w2c.device
    index = torch.as_tensor(idx, device=device)
    image = torch.as_tensor(np.stack([scene.image(i) for i in idx]), device=device)
    batch = Batch(index=index, t=cams.t[index], w2c=cams.w2c[index],
                  K=cams.K[None].expand(len(idx), 3, 3), image=image)
    if motion:
        masks = [scene.motion_mask(i) for i in idx]
        batch.has_motion = torch.tensor([m is not None for m in masks], device=device)
        zeros = np.zeros((cams.height, cams.width), np.float32)
        batch.motion = torch.as_tensor(
            np.stack([zeros if m is None else m for m in masks]), device=device)
    return batch
