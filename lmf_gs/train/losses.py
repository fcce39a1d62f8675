"""Composable loss terms. Each term maps a `RenderContext` to a scalar; the total is their sum."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from lmf_gs.model.layered import LAYERS, LayeredGaussians, LayeredRender


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


Crop = tuple[int, int, int, int]  # x0, y0, x1, y1 (pixels, end exclusive)


@dataclass
class RenderContext:
    """The main render of a batch, plus layer masks whose gradient is kept from some sets.

    Compositing couples layers through transmittance: a loss on one layer's mask also moves
    the Gaussians of the others in front of it. `masks_isolated` renders the masks again with
    those sets' parameters detached, only when one of them is being optimised.
    """

    model: LayeredGaussians
    batch: Batch
    render: LayeredRender
    backend: str
    trainable: tuple[str, ...] = LAYERS
    layers: tuple[str, ...] = LAYERS
    _cache: dict = field(default_factory=dict)

    def masks_isolated(self, no_grad_to: tuple[str, ...], crop: Crop | None = None) -> Tensor:
        """Layer masks ``[C, h, w, 3]`` (cropped to ``crop``) with no gradient to ``no_grad_to``."""
        detach = tuple(n for n in no_grad_to if n in self.trainable and n in self.layers)
        if not detach:
            m = self.render.masks
            return m if crop is None else m[:, crop[1]:crop[3], crop[0]:crop[2]]
        key = (detach, crop)
        if key not in self._cache:
            b = self.batch
            K, (h, w) = b.K, b.image.shape[1:3]
            if crop is not None:
                K = K.clone()
                K[:, 0, 2] -= crop[0]
                K[:, 1, 2] -= crop[1]
                w, h = crop[2] - crop[0], crop[3] - crop[1]
            r = self.model.render(b.t, b.w2c, K, w, h, self.backend, self.layers, detach=detach)
            self._cache[key] = r.masks
        return self._cache[key]


LossTerm = Callable[[RenderContext], Tensor]


def rgb_loss(ctx: RenderContext) -> Tensor:
    """Uncertainty-weighted colour loss (paper Eq. 4): mean ||I^ - I||^2 / (2 B^2) + log B^2."""
    r = ctx.render
    b2 = r.beta.square()
    err = (r.rgb - ctx.batch.image).square().sum(-1)
    return (err / (2.0 * b2) + torch.log(b2)).mean()


def sparsity_loss(weight: float) -> LossTerm:
    """NeuralDiff's sparsity: ``weight`` x mean of the non-static layer masks."""

    def term(ctx: RenderContext) -> Tensor:
        return weight * ctx.render.masks[..., 1:].sum(-1).mean()

    return term


def total_loss(terms: dict[str, LossTerm], ctx: RenderContext) -> tuple[Tensor, dict[str, float]]:
    """Sum of the terms and their values for logging."""
    values = {name: term(ctx) for name, term in terms.items()}
    total = torch.stack(list(values.values())).sum()
    return total, {k: float(v.detach()) for k, v in values.items()}


def psnr(pred: Tensor, target: Tensor) -> float:
    """PSNR in dB of images in [0, 1]."""
    mse = (pred.clamp(0, 1) - target).square().mean()
    return float(-10.0 * torch.log10(mse.clamp_min(1e-12)))
