"""Pinhole rays of a `Scene` in the model's normalised units (``x_n = (x - center) / scale``).

Images and masks are undistorted onto the pinhole camera once (`Scene`), so a pixel's ray is a
plain pinhole ray through its centre (+0.5). Rays are parametrised by camera DEPTH z (their
camera-frame direction is ``(x, y, 1)``), so the per-frame near/far (depth quantiles of the SfM
points, as NeuralDiff) bound the samples exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from lmf_gs.data.scene import Scene


@dataclass
class Rays:
    """R rays."""

    origin: Tensor  # [R, 3] camera centres (normalised world)
    dirs: Tensor  # [R, 3] world directions with unit camera depth: x(z) = origin + z dirs
    dirs_cam: Tensor  # [R, 3] the same directions in the camera frame, (x, y, 1)
    near: Tensor  # [R] normalised depth bounds
    far: Tensor  # [R]
    t: Tensor  # [R] normalised time in [-1, 1]
    frame: Tensor  # [R] scene frame index (long)

    def __len__(self) -> int:
        return self.origin.shape[0]

    def __getitem__(self, sl: slice) -> Rays:
        return Rays(**{f.name: getattr(self, f.name)[sl] for f in fields(self)})

    def points(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Positions at depths ``z [R, S]``: world ``[R, S, 3]`` and camera frame ``[R, S, 3]``."""
        zz = z[..., None]
        return self.origin[:, None] + zz * self.dirs[:, None], zz * self.dirs_cam[:, None]


@dataclass
class RayCameras:
    """All registered cameras of a scene, normalised with the model's ``center`` and ``scale``."""

    rot: Tensor  # [N, 3, 3] camera-to-world rotations
    origin: Tensor  # [N, 3] normalised camera centres
    near_far: Tensor  # [N, 2] normalised depth bounds
    t: Tensor  # [N]
    w2c: Tensor  # [N, 4, 4] world-to-camera (original units, for `Batch`)
    K: Tensor  # [3, 3] working-resolution pinhole intrinsics
    width: int
    height: int

    @classmethod
    def of(cls, scene: Scene, center: np.ndarray, scale: float,
           device: torch.device) -> RayCameras:
        c2w = scene.c2w
        f32 = {"dtype": torch.float32, "device": device}
        return cls(
            rot=torch.as_tensor(c2w[:, :3, :3], **f32),
            origin=torch.as_tensor((c2w[:, :3, 3] - center) / scale, **f32),
            near_far=torch.as_tensor(scene.near_far / scale, **f32),
            t=torch.as_tensor(scene.times, **f32),
            w2c=torch.as_tensor(scene.w2c, **f32),
            K=torch.as_tensor(scene.intrinsics.K, **f32),
            width=scene.width,
            height=scene.height,
        )

    def rays(self, frame: Tensor, px: Tensor, py: Tensor) -> Rays:
        """Rays through pixels ``(px, py) [R]`` (integer column/row) of frames ``frame [R]``."""
        K = self.K
        dirs_cam = torch.stack([(px + 0.5 - K[0, 2]) / K[0, 0], (py + 0.5 - K[1, 2]) / K[1, 1],
                                torch.ones_like(px)], dim=-1)
        dirs = torch.einsum("rij,rj->ri", self.rot[frame], dirs_cam)
        nf = self.near_far[frame]
        return Rays(self.origin[frame], dirs, dirs_cam, nf[:, 0], nf[:, 1], self.t[frame], frame)

    def frame_rays(self, i: int) -> Rays:
        """The ``height x width`` rays of frame ``i``, row-major."""
        device = self.K.device
        py, px = torch.meshgrid(torch.arange(self.height, device=device, dtype=torch.float32),
                                torch.arange(self.width, device=device, dtype=torch.float32),
                                indexing="ij")
        frame = torch.full((self.height * self.width,), i, dtype=torch.long, device=device)
        return self.rays(frame, px.reshape(-1), py.reshape(-1))
