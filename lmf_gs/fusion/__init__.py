"""Layered Motion Fusion: positive (PMF) and negative (NMF) motion fusion losses."""

from lmf_gs.fusion.losses import FUSION_MODES, fusion_terms, nmf_loss, pmf_loss

__all__ = ["FUSION_MODES", "fusion_terms", "nmf_loss", "pmf_loss"]
