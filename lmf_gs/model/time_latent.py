"""Smooth time latents z_t = phi(t) W with a fixed low-frequency Fourier basis (NeuralDiff)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class TimeLatent(nn.Module):
    """phi(t) = [1, cos(k pi t), sin(k pi t)]_{k=1..F} for t in [-1, 1]; z_t = phi(t) W.

    Smoothness in t comes from the basis (at most F half-periods over the video), not from a
    regulariser; W ``[2F + 1, D]`` is learned.
    """

    def __init__(self, n_freqs: int, dim: int, seed: int = 0):
        super().__init__()
        self.register_buffer("freqs", torch.arange(1, n_freqs + 1, dtype=torch.float32) * math.pi)
        g = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(torch.randn(2 * n_freqs + 1, dim, generator=g) / math.sqrt(dim))

    def basis(self, t: Tensor) -> Tensor:
        """``t [T]`` -> ``phi [T, 2F + 1]``."""
        ang = t[:, None] * self.freqs
        return torch.cat([torch.ones_like(t)[:, None], torch.cos(ang), torch.sin(ang)], dim=1)

    def forward(self, t: Tensor) -> Tensor:
        """``t [T]`` -> ``z [T, D]``."""
        return self.basis(t) @ self.W
