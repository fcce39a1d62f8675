"""PMF and NMF (paper Eq. 11-12) as loss terms over rendered layer masks.

Frames of a batch without a 2D motion mask contribute no fusion loss. Each term moves only the
layers it is about: PMF never moves the static set, NMF never moves the dynamic set (their masks
come with no gradient to those sets when they are being optimised: `RenderContext.mask_isolated`,
rendered in the main pass when the backend can, see `isolated_masks`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from lmf_gs.config import FusionConfig
from lmf_gs.core.batch import Crop
from lmf_gs.core.losses import LossTerm, RenderContext, isolation

FUSION_MODES = ("none", "pmf", "nmf", "lmf")
# the mask each term reads and the sets it must not move
ISOLATED = {"pmf": ("dynamic", ("static",)), "nmf": ("semistatic", ("dynamic",))}


def _zero(ctx: RenderContext) -> Tensor:
    return ctx.render.masks.sum() * 0.0


def pmf_loss(weight: float) -> LossTerm:
    """Positive motion fusion: ``weight`` x mean over pixels of (M_dy - M)^2."""

    def term(ctx: RenderContext) -> Tensor:
        b = ctx.batch
        if b.motion is None or not bool(b.has_motion.any()):
            return _zero(ctx)
        dyn = ctx.mask_isolated(*ISOLATED["pmf"])
        return weight * (dyn[b.has_motion] - b.motion[b.has_motion]).square().mean()

    return term


def _bbox(mask: Tensor) -> Crop:
    """Bounding box ``(x0, y0, x1, y1)`` of the True pixels of ``mask [C, H, W]``."""
    ys = torch.nonzero(mask.any(dim=(0, 2)))[:, 0]
    xs = torch.nonzero(mask.any(dim=(0, 1)))[:, 0]
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def nmf_loss(weight: float, threshold: float) -> LossTerm:
    """Negative motion fusion: ``weight`` x mean of M_ss^2 over pixels where M > threshold.

    Only the bounding box of those pixels is rendered for it.
    """

    def term(ctx: RenderContext) -> Tensor:
        b = ctx.batch
        if b.motion is None:
            return _zero(ctx)
        moving = (b.motion > threshold) & b.has_motion[:, None, None]
        if not bool(moving.any()):
            return _zero(ctx)
        x0, y0, x1, y1 = crop = _bbox(moving)
        ss = ctx.mask_isolated(*ISOLATED["nmf"], crop)
        return weight * ss[moving[:, y0:y1, x0:x1]].square().mean()

    return term


def isolated_masks(terms: Iterable[str], trainable: tuple[str, ...],
                   layers: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(layer, sets) masks the fusion ``terms`` will ask `RenderContext.mask_isolated` for, so
    that a backend can render them in the main pass."""
    specs = ((ISOLATED[t][0], isolation(ISOLATED[t][1], trainable, layers))
             for t in terms if t in ISOLATED)
    return tuple((layer, sets) for layer, sets in specs if sets)


def fusion_terms(mode: str, cfg: FusionConfig) -> dict[str, LossTerm]:
    """The fusion terms of ``mode``: none, pmf, nmf or lmf (= pmf + nmf)."""
    if mode not in FUSION_MODES:
        raise ValueError(f"unknown fusion {mode!r}; expected one of {', '.join(FUSION_MODES)}")
    terms: dict[str, LossTerm] = {}
    if mode in ("pmf", "lmf"):
        terms["pmf"] = pmf_loss(cfg.lambda_pmf)
    if mode in ("nmf", "lmf"):
        terms["nmf"] = nmf_loss(cfg.lambda_nmf, cfg.threshold)
    return terms
