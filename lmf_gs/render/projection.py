"""EWA projection of 3D Gaussians to pixel space, mirroring gsplat 1.5.3 step by step.

Every step follows ``gsplat/cuda/csrc/ProjectionEWA3DGSFused.cu``
(``projection_ewa_3dgs_fused_fwd_kernel``) and the helpers it calls:

- world -> camera: ``posW2C`` / ``covarW2C`` (``cuda/include/Utils.cuh``), ``R x + t`` and
  ``R Σ R^T``;
- covariance from (unnormalised, wxyz) quaternion and scale: ``quat_to_rotmat`` /
  ``quat_scale_to_covar_preci`` (``Utils.cuh``), ``Σ = (R S)(R S)^T``, quaternion normalised
  with ``rsqrt`` of its squared norm;
- near/far culling: ``z < near_plane or z > far_plane`` -> culled;
- perspective Jacobian with the fov clamp: ``persp_proj`` (``Utils.cuh``), ``x/z`` clamped to
  ``[-(cx/fx + 0.3 tan_fovx), (W - cx)/fx + 0.3 tan_fovx]`` (``1.3 tan(fov/2)`` for a centred
  principal point), same for y, ``Σ2d = J Σ_c J^T``; the 2D mean is *not* clamped;
- ``add_blur`` (``Utils.cuh``): ``eps2d = 0.3`` added to the diagonal, classic mode (no
  compensation), culled when ``det <= 0``;
- conic = ``glm::inverse`` of the blurred 2D covariance, stored as ``(a, b, c)`` =
  ``(inv[0][0], inv[0][1], inv[1][1])``;
- opacity culling and opacity-aware radii (gsplat >= 1.5 replaced the eigenvalue 3-sigma
  extent with this tighter box): culled when ``opacity < 1/255``, then
  ``extend = min(3.33, sqrt(2 log(opacity * 255)))`` and
  ``radius_{x,y} = ceil(extend * sqrt(Σ2d_{xx,yy}))``;
- culled when the radius box lies outside the image
  (``mean.x + r_x <= 0 or mean.x - r_x >= W``, same for y).

Culled entries get ``radii = 0`` and zero ``means2d``/``depths``/``conics``, exactly as the
kernel leaves its zero-initialised outputs. The derivatives come from autograd; they equal
gsplat's hand-written ``projection_ewa_3dgs_fused_bwd_kernel`` (including the fov clamp).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

ALPHA_THRESHOLD = 1.0 / 255.0  # gsplat Common.h
EPS2D = 0.3  # gsplat's default blur, "classic" rasterize mode
MAX_EXTEND = 3.33  # gsplat ProjectionEWA3DGSFused.cu


@dataclass
class Projection:
    """Gaussians projected into C cameras (C images of N Gaussians each)."""

    means2d: Tensor  # [C, N, 2] pixel coordinates, 0 where culled
    conics: Tensor  # [C, N, 3] inverse 2D covariance (a, b, c), 0 where culled
    depths: Tensor  # [C, N] camera-space z, 0 where culled
    radii: Tensor  # [C, N, 2] int32 box half-sizes in pixels, 0 where culled


def quat_scale_to_matrix(quats: Tensor, scales: Tensor) -> list[list[Tensor]]:
    """``M = R(q) diag(s)`` with ``Σ = M M^T``, as 3x3 nested lists of [B, N] components.

    Args:
        quats: [B, N, 4] unnormalised wxyz quaternions.
        scales: [B, N, 3].
    """
    w, x, y, z = quats.movedim(-1, 0).contiguous()
    inv = torch.rsqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w * inv, x * inv, y * inv, z * inv
    R = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    s = scales.movedim(-1, 0).contiguous()
    return [[R[i][j] * s[j] for j in range(3)] for i in range(3)]


def _fov_limits(K: Tensor, width: int, height: int) -> tuple[Tensor, ...]:
    """gsplat ``persp_proj`` clamp limits for x/z and y/z, each [C, 1]."""
    fx, fy, cx, cy = K[:, 0, 0:1], K[:, 1, 1:2], K[:, 0, 2:3], K[:, 1, 2:3]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    return (
        cx / fx + 0.3 * tan_fovx, (width - cx) / fx + 0.3 * tan_fovx,
        cy / fy + 0.3 * tan_fovy, (height - cy) / fy + 0.3 * tan_fovy,
    )


def project(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    near_plane: float,
    far_plane: float,
) -> Projection:
    """Project Gaussians [B, N, *] (B = 1 shared or B = C per camera) into C cameras.

    Args:
        means: [B, N, 3] world positions.
        quats: [B, N, 4] wxyz quaternions (any norm).
        scales: [B, N, 3] activated scales.
        opacities: [B, N] activated opacities (only used for culling and radii).
        viewmats: [C, 4, 4] world-to-camera (OpenCV axes).
        Ks: [C, 3, 3] pinhole intrinsics.
    """
    # components as [C, N] tensors (camera constants as [C, 1]): tiny 3x3 algebra vectorised
    # over Gaussians is much faster than batched matmuls on a CPU
    V = viewmats[:, :3, :, None]  # [C, 3, 4, 1]
    mean = means.movedim(-1, 0).contiguous()
    mean_c = [V[:, i, 0] * mean[0] + V[:, i, 1] * mean[1] + V[:, i, 2] * mean[2] + V[:, i, 3]
              for i in range(3)]
    M = quat_scale_to_matrix(quats, scales)
    M_c = [[V[:, i, 0] * M[0][k] + V[:, i, 1] * M[1][k] + V[:, i, 2] * M[2][k] for k in range(3)]
           for i in range(3)]  # R_view M: Σ_c = M_c M_c^T
    x, y, z = mean_c
    in_range = (z >= near_plane) & (z <= far_plane)
    z = torch.where(in_range, z, 1.0)  # keep culled entries finite (and their gradients zero)
    rz = 1.0 / z

    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    lim_xn, lim_xp, lim_yn, lim_yp = _fov_limits(Ks, width, height)
    tx = z * torch.minimum(lim_xp, torch.maximum(-lim_xn, x * rz))
    ty = z * torch.minimum(lim_yp, torch.maximum(-lim_yn, y * rz))
    # rows of J M_c, with J = [[fx/z, 0, -fx tx/z^2], [0, fy/z, -fy ty/z^2]]
    j00, j02 = fx * rz, -fx * tx * rz * rz
    j11, j12 = fy * rz, -fy * ty * rz * rz
    jm0 = [j00 * M_c[0][k] + j02 * M_c[2][k] for k in range(3)]
    jm1 = [j11 * M_c[1][k] + j12 * M_c[2][k] for k in range(3)]
    cov_xx = jm0[0] * jm0[0] + jm0[1] * jm0[1] + jm0[2] * jm0[2] + EPS2D
    cov_xy = jm0[0] * jm1[0] + jm0[1] * jm1[1] + jm0[2] * jm1[2]
    cov_yy = jm1[0] * jm1[0] + jm1[1] * jm1[1] + jm1[2] * jm1[2] + EPS2D
    det = cov_xx * cov_yy - cov_xy * cov_xy
    ok = in_range & (det > 0)
    det = torch.where(ok, det, 1.0)
    conics = torch.stack([cov_yy / det, -cov_xy / det, cov_xx / det], -1)
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], -1)

    with torch.no_grad():
        op = opacities.detach().expand_as(z)
        keep = ok & (op >= ALPHA_THRESHOLD)
        extend = torch.sqrt(2.0 * torch.log(op.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD))
        extend = extend.clamp_max(MAX_EXTEND)
        rx = torch.ceil(extend * torch.sqrt(cov_xx.detach()))
        ry = torch.ceil(extend * torch.sqrt(cov_yy.detach()))
        mx, my = means2d.detach().unbind(-1)
        keep &= (rx > 0) | (ry > 0)
        keep &= (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)
        radii = torch.stack([rx, ry], -1).int() * keep[..., None]

    return Projection(
        means2d=means2d * keep[..., None],
        conics=conics * keep[..., None],
        depths=mean_c[2] * keep,
        radii=radii,
    )

