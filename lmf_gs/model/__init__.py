"""Layered Gaussian model: static, semi-static and camera-frame dynamic sets."""

from lmf_gs.model.layered import LayeredGaussians, LayeredRender

__all__ = ["LayeredGaussians", "LayeredRender"]
