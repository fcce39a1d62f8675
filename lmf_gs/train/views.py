"""From a `Scene` to tensors: cameras, times, frame batches and the train/held-out split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lmf_gs.data.scene import Scene
from lmf_gs.data.udos import load_split
from lmf_gs.errors import DataError
from lmf_gs.model.layered import SceneGeometry
from lmf_gs.train.losses import Batch


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
    if len(scene.points) == 0:
        raise DataError(f"{scene.paths.epic_fields}: no 'points' to initialise Gaussians from")
    depths = [np.median(z[z > 0]) for z in
              (scene.points @ m[2, :3] + m[2, 3] for m in scene.w2c[:: max(1, len(scene) // 50)])
              if (z > 0).any()]
    return SceneGeometry(
        points=scene.points,
        colors=scene.point_colors / 255.0,
        scale=float(np.median(depths)),
        K=scene.intrinsics.K,
        width=scene.width,
        height=scene.height,
    )


def split_protected_frames(scene: Scene) -> set[str]:
    """UDOS split frames of this video (never held out), empty when there is no split."""
    try:
        entry = load_split(scene.paths.udos_split).get(scene.vid, {})
    except DataError:
        return set()
    return {f for frames in entry.values() for f in frames}


def train_holdout(scene: Scene, every: int) -> tuple[list[int], list[int]]:
    """Indices of training frames and of held-out frames (every k-th, not in the UDOS split)."""
    protected = split_protected_frames(scene)
    held = [] if every <= 0 else [
        i for i in range(every // 2, len(scene), every) if scene.frames[i] not in protected
    ]
    held_set = set(held)
    return [i for i in range(len(scene)) if i not in held_set], held


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
