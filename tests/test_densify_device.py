"""Densification keeps every tensor on the set's device (it crashed on CUDA: a CPU mask was
concatenated with a CUDA one)."""

import numpy as np
import pytest
import torch

from lmf_gs.config import TrainConfig
from lmf_gs.model.gaussians import init_gaussians
from lmf_gs.train.densify import SetDensifier
from lmf_gs.train.trainer import set_optimizers

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA"))]


@pytest.mark.parametrize("device", DEVICES)
def test_clone_and_split_on_the_sets_device(device):
    rng = np.random.default_rng(0)
    n = 40
    params = init_gaussians(rng.normal(size=(n, 3)), rng.uniform(size=(n, 3)), 0.5, 0,
                            seed=0).to(device)
    with torch.no_grad():  # half large (split), half small (clone)
        params["scales"][: n // 2] = np.log(0.5)
        params["scales"][n // 2:] = np.log(0.001)
    cfg = TrainConfig(densify_from=1, densify_every=1, densify_until=10, grow_fraction=1.0,
                      grad_threshold=0.0, split_scale=0.01, prune_opacity=0.0,
                      reset_opacity_every=1000)
    dens = SetDensifier(cfg, 1.0, max_gaussians=1000, reset_opacity=False)
    opts = set_optimizers(params, cfg, 1.0)
    grad = torch.ones(1, n, 2, device=device)
    radii = torch.full((1, n), 3, device=device)
    dens.accumulate(grad, radii, 32, 32)
    done = dens.step(1, params, opts, lambda: torch.sigmoid(params["opacities"]))
    assert done["cloned"] == n // 2 and done["split"] == n // 2
    assert params["means"].shape[0] == n + n // 2 + n // 2  # a split makes two of one
    assert all(p.device.type == device for p in params.values())
