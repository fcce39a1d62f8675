"""lmf-gs: Layered Motion Fusion on Gaussian splatting for egocentric videos."""

__version__ = "0.1.0"
