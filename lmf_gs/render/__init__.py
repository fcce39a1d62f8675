"""Gaussian rasterisation: `rasterize` (gsplat on CUDA, a pure-PyTorch twin elsewhere)."""

from lmf_gs.render.output import RenderOutput
from lmf_gs.render.rasterize import rasterize

__all__ = ["RenderOutput", "rasterize"]
