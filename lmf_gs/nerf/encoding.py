"""NeRF positional encoding (NeuralDiff's ``PosEmbedding``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class PosEncoding(nn.Module):
    """``x -> [x, sin(2^0 x), cos(2^0 x), ..., sin(2^(L-1) x), cos(2^(L-1) x)]``."""

    def __init__(self, n_freqs: int):
        super().__init__()
        self.n_freqs = n_freqs
        self.register_buffer("freqs", 2.0 ** torch.arange(n_freqs, dtype=torch.float32),
                             persistent=False)

    def out_dim(self, in_dim: int = 3) -> int:
        return in_dim * (1 + 2 * self.n_freqs)

    def forward(self, x: Tensor) -> Tensor:
        """``x [..., d]`` -> ``[..., d (1 + 2L)]``."""
        ang = x[..., None, :] * self.freqs[:, None]  # [..., L, d]
        enc = torch.stack([torch.sin(ang), torch.cos(ang)], dim=-2)  # [..., L, 2, d]
        return torch.cat([x, enc.flatten(-3)], dim=-1)
