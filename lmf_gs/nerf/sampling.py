"""Depth samples along rays: stratified (coarse) and importance sampling (fine), as NeRF."""

from __future__ import annotations

import torch
from torch import Tensor


def stratified(near: Tensor, far: Tensor, n: int, perturb: bool) -> Tensor:
    """``n`` depths between ``near [R]`` and ``far [R]``: evenly spaced, jittered within their
    bins when ``perturb`` -> ``[R, n]``."""
    s = torch.linspace(0.0, 1.0, n, device=near.device)
    z = near[:, None] * (1.0 - s) + far[:, None] * s
    if not perturb:
        return z
    mid = 0.5 * (z[:, 1:] + z[:, :-1])
    lower = torch.cat([z[:, :1], mid], dim=-1)
    upper = torch.cat([mid, z[:, -1:]], dim=-1)
    return lower + (upper - lower) * torch.rand_like(z)


def sample_pdf(bins: Tensor, weights: Tensor, n: int, deterministic: bool,
               eps: float = 1e-5) -> Tensor:
    """``n`` depths per ray drawn from the piecewise-constant pdf of ``weights [R, B]`` over the
    bin edges ``bins [R, B + 1]`` (inverse transform; evenly spaced quantiles when
    ``deterministic``) -> ``[R, n]``."""
    R, B = weights.shape
    w = weights + eps
    cdf = torch.cumsum(w / w.sum(-1, keepdim=True), dim=-1)
    cdf = torch.cat([torch.zeros_like(cdf[:, :1]), cdf], dim=-1)  # [R, B + 1]
    if deterministic:
        u = torch.linspace(0.0, 1.0, n, device=bins.device).expand(R, n).contiguous()
    else:
        u = torch.rand(R, n, device=bins.device)
    idx = torch.searchsorted(cdf, u, right=True)
    below = (idx - 1).clamp_min(0)
    above = idx.clamp_max(B)
    cdf_lo, cdf_hi = cdf.gather(1, below), cdf.gather(1, above)
    bin_lo, bin_hi = bins.gather(1, below), bins.gather(1, above)
    denom = cdf_hi - cdf_lo
    denom = torch.where(denom < eps, torch.ones_like(denom), denom)
    return bin_lo + (u - cdf_lo) / denom * (bin_hi - bin_lo)
