"""Real spherical harmonics up to degree 3 (the 3DGS / gsplat convention)."""

from __future__ import annotations

from torch import Tensor

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
      0.5462742152960396)
C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
      -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


def num_sh_bases(degree: int) -> int:
    return (degree + 1) ** 2


def sh_to_rgb(coeffs: Tensor, dirs: Tensor, degree: int) -> Tensor:
    """Colours ``[..., 3]`` from SH ``coeffs [..., K, 3]`` in unit-or-not ``dirs [..., 3]``.

    Adds 0.5 and clamps at 0 like gsplat's rasterisation with sh_degree set.
    """
    out = C0 * coeffs[..., 0, :]
    if degree > 0:
        d = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        x, y, z = d[..., 0:1], d[..., 1:2], d[..., 2:3]
        out = (out - C1 * y * coeffs[..., 1, :] + C1 * z * coeffs[..., 2, :]
               - C1 * x * coeffs[..., 3, :])
        if degree > 1:
            xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
            out = (out + C2[0] * xy * coeffs[..., 4, :] + C2[1] * yz * coeffs[..., 5, :]
                   + C2[2] * (2 * zz - xx - yy) * coeffs[..., 6, :]
                   + C2[3] * xz * coeffs[..., 7, :] + C2[4] * (xx - yy) * coeffs[..., 8, :])
            if degree > 2:
                out = (out + C3[0] * y * (3 * xx - yy) * coeffs[..., 9, :]
                       + C3[1] * xy * z * coeffs[..., 10, :]
                       + C3[2] * y * (4 * zz - xx - yy) * coeffs[..., 11, :]
                       + C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * coeffs[..., 12, :]
                       + C3[4] * x * (4 * zz - xx - yy) * coeffs[..., 13, :]
                       + C3[5] * z * (xx - yy) * coeffs[..., 14, :]
                       + C3[6] * x * (xx - 3 * yy) * coeffs[..., 15, :])
    return (out + 0.5).clamp_min(0.0)


def rgb_to_sh0(rgb: Tensor) -> Tensor:
    """Degree-0 coefficient giving colour ``rgb`` (inverse of `sh_to_rgb` at degree 0)."""
    return (rgb - 0.5) / C0
