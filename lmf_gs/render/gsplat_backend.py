"""gsplat CUDA backend (imported lazily: only used for CUDA tensors).

Runs the same steps as ``gsplat.rasterization(..., sh_degree=None, packed=False,
render_mode="RGB+ED", rasterize_mode="classic", eps2d=0.3, radius_clip=0)`` but calls its
stages directly, so that per-camera Gaussians (batch dim = camera, one camera per batch) are
flattened to C images right after the projection. The ``means2d`` [C, N, 2] handed to the
rasteriser is then the very tensor returned to the caller, whose ``.grad`` densification reads.
"""

from __future__ import annotations

import math

import torch
from gsplat.cuda._wrapper import (
    fully_fused_projection,
    isect_offset_encode,
    isect_tiles,
    rasterize_to_pixels,
)
from torch import Tensor

from lmf_gs.render.output import RenderOutput
from lmf_gs.render.projection import EPS2D

TILE_SIZE = 16  # gsplat's default
CHANNEL_CHUNK = 32  # gsplat rasterization()'s default channel_chunk


def rasterize_gsplat(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    near_plane: float,
    far_plane: float,
    backgrounds: Tensor | None,
) -> RenderOutput:
    """Render C cameras; Gaussian tensors are [B, N, *] with B = 1 (shared) or B = C."""
    C, N = viewmats.shape[0], means.shape[1]
    per_camera = max(x.shape[0] for x in (means, quats, scales, opacities)) > 1
    if per_camera:  # batch dim = camera, one camera per batch
        geometry = [x.expand(C, *x.shape[1:]) for x in (means, quats, scales, opacities)]
        cams = viewmats[:, None], Ks[:, None]
    else:
        geometry = [x[0] for x in (means, quats, scales, opacities)]
        cams = viewmats, Ks
    radii, means2d, depths, conics, _ = fully_fused_projection(
        geometry[0], None, geometry[1], geometry[2], *cams, width, height, eps2d=EPS2D,
        near_plane=near_plane, far_plane=far_plane, opacities=geometry[3],
    )
    if per_camera:
        radii, means2d, depths, conics = (x.squeeze(1) for x in (radii, means2d, depths, conics))

    feats = torch.cat([colors.expand(C, N, -1), depths[..., None]], -1)  # "RGB+ED"
    if backgrounds is not None:
        backgrounds = torch.cat([backgrounds, backgrounds.new_zeros(C, 1)], -1)
    tiles_x, tiles_y = math.ceil(width / TILE_SIZE), math.ceil(height / TILE_SIZE)
    _, isect_ids, flatten_ids = isect_tiles(means2d, radii, depths, TILE_SIZE, tiles_x, tiles_y)
    offsets = isect_offset_encode(isect_ids, C, tiles_x, tiles_y).reshape(C, tiles_y, tiles_x)
    renders = [
        rasterize_to_pixels(
            means2d, conics, feats[..., lo:lo + CHANNEL_CHUNK], opacities.expand(C, N), width,
            height, TILE_SIZE, offsets, flatten_ids,
            backgrounds=None if backgrounds is None else backgrounds[..., lo:lo + CHANNEL_CHUNK],
        )
        for lo in range(0, feats.shape[-1], CHANNEL_CHUNK)
    ]
    out, alphas = torch.cat([r for r, _ in renders], -1), renders[0][1]
    return RenderOutput(
        colors=out[..., :-1],
        alphas=alphas,
        depths=out[..., -1:] / alphas.clamp(min=1e-10),
        means2d=means2d,
        radii=radii.amax(-1),
    )
