"""Composable loss terms. Each term maps (render, batch) to a scalar; the total is their sum."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from lmf_gs.model.layered import LayeredRender


@dataclass
class Batch:
    """Targets of C frames."""

    index: Tensor  # [C] frame indices in the scene
    t: Tensor  # [C] normalised times
    w2c: Tensor  # [C, 4, 4]
    K: Tensor  # [C, 3, 3]
    image: Tensor  # [C, H, W, 3] in [0, 1]
    motion: Tensor | None = None  # [C, H, W] soft 2D motion masks
    has_motion: Tensor | None = None  # [C] bool: which frames have a mask


LossTerm = Callable[[LayeredRender, Batch], Tensor]


def rgb_loss(render: LayeredRender, batch: Batch) -> Tensor:
    """Uncertainty-weighted colour loss (paper Eq. 4): mean ||I^ - I||^2 / (2 B^2) + log B^2."""
    b2 = render.beta.square()
    err = (render.rgb - batch.image).square().sum(-1)
    return (err / (2.0 * b2) + torch.log(b2)).mean()


def sparsity_loss(weight: float) -> LossTerm:
    """NeuralDiff's sparsity: ``weight`` x mean of the non-static layer masks."""

    def term(render: LayeredRender, batch: Batch) -> Tensor:
        return weight * render.masks[..., 1:].sum(-1).mean()

    return term


def total_loss(
    terms: dict[str, LossTerm], render: LayeredRender, batch: Batch
) -> tuple[Tensor, dict[str, float]]:
    """Sum of the terms and their values for logging."""
    values = {name: term(render, batch) for name, term in terms.items()}
    total = torch.stack(list(values.values())).sum()
    return total, {k: float(v.detach()) for k, v in values.items()}


def psnr(pred: Tensor, target: Tensor) -> float:
    """PSNR in dB of images in [0, 1]."""
    mse = (pred.clamp(0, 1) - target).square().mean()
    return float(-10.0 * torch.log10(mse.clamp_min(1e-12)))
