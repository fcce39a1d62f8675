"""PMF and NMF (paper Eq. 11-12) as loss terms over rendered layer masks.

Frames of a batch without a 2D motion mask contribute no fusion loss.
"""

from __future__ import annotations

from torch import Tensor

from lmf_gs.config import FusionConfig
from lmf_gs.model.layered import LAYERS, LayeredRender
from lmf_gs.train.losses import Batch, LossTerm

FUSION_MODES = ("none", "pmf", "nmf", "lmf")
SS, DY = LAYERS.index("semistatic"), LAYERS.index("dynamic")


def pmf_loss(weight: float) -> LossTerm:
    """Positive motion fusion: ``weight`` x mean over pixels of (M_dy - M)^2."""

    def term(render: LayeredRender, batch: Batch) -> Tensor:
        dyn = render.masks[..., DY]
        has = batch.has_motion
        if batch.motion is None or not bool(has.any()):
            return dyn.sum() * 0.0
        return weight * (dyn[has] - batch.motion[has]).square().mean()

    return term


def nmf_loss(weight: float, threshold: float) -> LossTerm:
    """Negative motion fusion: ``weight`` x mean of M_ss^2 over pixels where M > threshold."""

    def term(render: LayeredRender, batch: Batch) -> Tensor:
        ss = render.masks[..., SS]
        if batch.motion is None:
            return ss.sum() * 0.0
        moving = (batch.motion > threshold) & batch.has_motion[:, None, None]
        if not bool(moving.any()):
            return ss.sum() * 0.0
        return weight * ss[moving].square().mean()

    return term


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
