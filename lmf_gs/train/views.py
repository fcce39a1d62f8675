"""From a `Scene` to the Gaussian backend's tensors: cameras, times, frame batches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from lmf_gs.core.batch import Batch
from lmf_gs.core.geometry import median_point_depth
from lmf_gs.data.prefetch import Sample
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
        duration_s=scene.duration_s,
    )


def make_batch(
    scene: Scene, cams: Cameras, idx: list[int], motion: bool = False,
    fetch: Callable[[int], Sample] | None = None,
) -> Batch:
    """Targets of frames ``idx`` (images, and motion masks when ``motion`` and some frame has
    one: ``batch.motion`` stays None otherwise), read through ``fetch(i)`` (e.g.
    `Prefetcher.get`) when given. Frames cross to the device as uint8 (pinned, without
    blocking, on CUDA) and become float there."""
    device = cams.w2c.device
    samples = [fetch(i) if fetch is not None else
               Sample(i, scene.image_u8(i), scene.motion_mask_u8(i) if motion else None)
               for i in idx]

    def to_device(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(a)
        if device.type == "cuda":
            t = t.pin_memory()
        return t.to(device, non_blocking=True).float() / 255

    index = torch.as_tensor(idx, device=device)
    batch = Batch(index=index, t=cams.t[index], w2c=cams.w2c[index],
                  K=cams.K[None].expand(len(idx), 3, 3),
                  image=to_device(np.stack([s.image for s in samples])))
    if motion and any(s.mask is not None for s in samples):
        batch.has_motion = torch.tensor([s.mask is not None for s in samples], device=device)
        zeros = np.zeros((cams.height, cams.width), np.uint8)
        batch.motion = to_device(np.stack([zeros if s.mask is None else s.mask
                                           for s in samples]))
    return batch
