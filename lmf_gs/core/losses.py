"""Composable loss terms. Each term maps a `RenderContext` to a scalar; the total is their sum."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from lmf_gs.core.batch import Batch, Crop
from lmf_gs.core.layers import LAYERS


class LayerImages(Protocol):
    """What the loss terms read from a render of C cameras."""

    rgb: Tensor  # [C, H, W, 3]
    masks: Tensor  # [C, H, W, 3] static, semi-static, dynamic
    beta: Tensor  # [C, H, W] uncertainty image B (beta_min included)
    # (layer, sets) -> [C, H, W] masks the render computed with no gradient to those sets
    isolated: dict[tuple[str, tuple[str, ...]], Tensor]


@dataclass(kw_only=True)
class RenderContext:
    """The main render of a batch, plus layer masks whose gradient is kept from some sets.

    Compositing couples layers: a loss on one layer's mask also moves the others (through
    transmittance, or the shared samples of a ray). `mask_isolated` gives a mask with no gradient
    to some sets, only when one of them is being optimised: from the render when it computed that
    mask in the same pass (its ``isolated``), else by rendering again with those sets detached
    (backends implement `_isolated`).
    """

    batch: Batch
    render: LayerImages
    trainable: tuple[str, ...] = LAYERS
    layers: tuple[str, ...] = LAYERS
    _cache: dict = field(default_factory=dict)

    def mask_isolated(self, layer: str, no_grad_to: tuple[str, ...],
                      crop: Crop | None = None) -> Tensor:
        """``layer``'s mask ``[C, h, w]`` (cropped to ``crop``) with no gradient to
        ``no_grad_to``."""
        detach = isolation(no_grad_to, self.trainable, self.layers)
        m = self.render.isolated.get((layer, detach)) if detach else \
            self.render.masks[..., LAYERS.index(layer)]
        if m is None:
            key = (detach, crop)
            if key not in self._cache:
                self._cache[key] = self._isolated(detach, crop)
            return self._cache[key][..., LAYERS.index(layer)]
        return m if crop is None else m[:, crop[1]:crop[3], crop[0]:crop[2]]

    def _isolated(self, detach: tuple[str, ...], crop: Crop | None) -> Tensor:
        raise NotImplementedError


def isolation(no_grad_to: tuple[str, ...], trainable: tuple[str, ...],
              layers: tuple[str, ...]) -> tuple[str, ...]:
    """The sets of ``no_grad_to`` that need detaching: those optimised and rendered."""
    return tuple(n for n in no_grad_to if n in trainable and n in layers)


LossTerm = Callable[[RenderContext], Tensor]


def rgb_loss(ctx: RenderContext) -> Tensor:
    """Uncertainty-weighted colour loss (paper Eq. 4): mean ||I^ - I||^2 / (2 B^2) + log B^2."""
    r = ctx.render
    b2 = r.beta.square()
    err = (r.rgb - ctx.batch.image).square().sum(-1)
    return (err / (2.0 * b2) + torch.log(b2)).mean()


def total_loss(terms: dict[str, LossTerm], ctx: RenderContext) -> tuple[Tensor, dict[str, Tensor]]:
    """Sum of the terms and their detached values for logging."""
    values = {name: term(ctx) for name, term in terms.items()}
    total = torch.stack(list(values.values())).sum()
    return total, {k: v.detach() for k, v in values.items()}


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """PSNR in dB of images in [0, 1] (a 0-d tensor: read it with float() only when logging)."""
    mse = (pred.clamp(0, 1) - target).square().mean()
    return -10.0 * torch.log10(mse.clamp_min(1e-12))
