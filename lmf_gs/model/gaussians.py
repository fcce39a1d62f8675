"""Per-set Gaussian parameters (gsplat's naming, so gsplat.strategy.ops can edit them)."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor, nn

from lmf_gs.model.sh import num_sh_bases, rgb_to_sh0


def knn_scales(means: np.ndarray, k: int = 3) -> np.ndarray:
    """Initial isotropic scale per point: mean distance to its ``k`` nearest neighbours ``[N]``."""
    if len(means) <= k:
        return np.full(len(means), 0.01)
    dist, _ = cKDTree(means).query(means, k=k + 1)
    return np.maximum(dist[:, 1:].mean(axis=1), 1e-7)


def init_gaussians(
    means: np.ndarray,
    rgb: np.ndarray,
    opacity: float,
    sh_degree: int,
    feature_dim: int = 0,
    beta_init: float | None = None,
    seed: int = 0,
    readout: tuple[int, int] | None = None,
    scales: np.ndarray | None = None,
) -> nn.ParameterDict:
    """Parameters of one set: means ``[N, 3]``, log ``scales [N, 3]`` (isotropic: ``scales
    [N]`` when given, else `knn_scales` of the means), ``quats [N, 4]`` (wxyz),
    logit ``opacities [N]``, SH ``sh0 [N, 1, 3]`` and ``shN [N, K-1, 3]``, and optionally
    ``features [N, F]`` (deformation input), ``readout [N, D, O]`` (per-Gaussian time readout,
    zero) and pre-softplus ``betas [N]`` (uncertainty)."""
    n = len(means)
    g = torch.Generator().manual_seed(seed)
    m = torch.as_tensor(means, dtype=torch.float32)
    params = {
        "means": m,
        "scales": torch.log(torch.as_tensor(knn_scales(means) if scales is None else scales,
                                            dtype=torch.float32))[:, None].repeat(1, 3),
        "quats": torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1),
        "opacities": torch.full((n,), math.log(opacity / (1 - opacity))),
        "sh0": rgb_to_sh0(torch.as_tensor(rgb, dtype=torch.float32))[:, None, :],
    }
    if sh_degree > 0:
        params["shN"] = torch.zeros(n, num_sh_bases(sh_degree) - 1, 3)
    if feature_dim > 0:
        params["features"] = torch.randn(n, feature_dim, generator=g) * 0.1
    if readout is not None:
        params["readout"] = torch.zeros(n, *readout)
    if beta_init is not None:
        params["betas"] = torch.full((n,), math.log(math.expm1(beta_init)))
    return nn.ParameterDict({k: nn.Parameter(v.contiguous()) for k, v in params.items()})


def empty_like_state(state: dict[str, Tensor]) -> nn.ParameterDict:
    """A set with the shapes of a saved state dict (for loading checkpoints)."""
    return nn.ParameterDict({k: nn.Parameter(torch.empty_like(v)) for k, v in state.items()})


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product of wxyz quaternions ``[..., 4]`` (rotation a after b)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], dim=-1)
