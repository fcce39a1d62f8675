"""NeuralDiff reference backend (``--backend nerf``): the same layered losses, LMF and TR as the
Gaussian backend, on the published NeRF architecture."""

from lmf_gs.nerf.evaluate import nerf_predictor
from lmf_gs.nerf.refine import refine_nerf
from lmf_gs.nerf.train import train_nerf

__all__ = ["nerf_predictor", "refine_nerf", "train_nerf"]
