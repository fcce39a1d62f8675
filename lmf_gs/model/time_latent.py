"""Smooth time latents z_t = phi(t) W on a fixed Fourier basis (NeuralDiff), shared by both
backends.

phi(t) = [1, cos(w_1 t), sin(w_1 t), ..., cos(w_L t), sin(w_L t)] for the normalised time
t in [-1, 1] of a video, with one of two sets of frequencies:

- "octave" (octaves, as NeuralDiff's 2^0..2^9): w_k = pi 2^k, k = 0..L-1. Over a video of D
  seconds the shortest period is D 2^(1-L) seconds, so L is derived from D (`time_octaves`):
  the time model resolves about `PERIOD_S` on a 1-minute and on a 30-minute video alike.
- "linear" (lmf-gs before the octaves): w_k = k pi, k = 1..F, the shortest period D / F: a
  fixed share of the video, minutes on a long one.

The frequencies are a persistent buffer: a model rebuilt from its ``state_dict`` gets the same
basis whatever the config says.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

TimeBasis = Literal["octave", "linear"]
PERIOD_S = 2.0  # default target of the shortest period of the octave basis (seconds)
# floor: clips under ~1 minute get periods down to 1/32 of the clip (default synthetic videos,
# 6-7 s with motion stretched over them: TR + LMF Dyn+SS 54.8 on the demo with 6, 51.5 with 4)
MIN_OCTAVES = 6
MAX_OCTAVES = 12  # ceiling: a 1-hour video keeps periods <= 2 s; 2 h would get ~3.5 s
DEFAULT_FREQS = 10  # when the duration is unknown (NeuralDiff's 2^0..2^9; linear: k = 1..10)


def time_octaves(duration_s: float | None, period_s: float = PERIOD_S) -> int:
    """Octave count L whose shortest period ``duration_s * 2^(1-L)`` is closest (in log scale)
    to ``period_s``, clipped to [`MIN_OCTAVES`, `MAX_OCTAVES`]; `DEFAULT_FREQS` when the
    duration is unknown."""
    if duration_s is None:
        return DEFAULT_FREQS
    if period_s <= 0:
        raise ValueError(f"period_s must be > 0, got {period_s}")
    if duration_s <= period_s:
        return MIN_OCTAVES
    return int(min(max(round(1 + math.log2(duration_s / period_s)), MIN_OCTAVES), MAX_OCTAVES))


def resolve_time_freqs(basis: TimeBasis, n_freqs: int | None, duration_s: float | None,
                       period_s: float = PERIOD_S) -> int:
    """Frequency count: ``n_freqs`` when given, else derived from the video's duration (octave
    basis) or `DEFAULT_FREQS` (linear basis, as before the octaves)."""
    if n_freqs is not None:
        return n_freqs
    return time_octaves(duration_s, period_s) if basis == "octave" else DEFAULT_FREQS


def time_frequencies(basis: TimeBasis, n_freqs: int) -> Tensor:
    """Angular frequencies ``[n_freqs]`` (float32) of the basis in normalised time t."""
    if n_freqs < 1:
        raise ValueError(f"the time basis needs at least one frequency, got {n_freqs}")
    k = torch.arange(n_freqs, dtype=torch.float32)
    return (2.0**k if basis == "octave" else k + 1.0) * math.pi


def shortest_period_s(freqs: Tensor, duration_s: float) -> float:
    """Shortest period in seconds of a basis with angular ``freqs`` on a video of
    ``duration_s`` seconds (t spans 2 units)."""
    return float(2 * math.pi / freqs.max() * duration_s / 2)


def fourier_basis(t: Tensor, freqs: Tensor) -> Tensor:
    """``t [T]`` -> phi ``[T, 2L + 1]`` on the angular frequencies ``freqs [L]``."""
    ang = t[:, None] * freqs
    return torch.cat([torch.ones_like(t)[:, None], torch.cos(ang), torch.sin(ang)], dim=1)


class TimeLatent(nn.Module):
    """phi(t) ``[2L + 1]`` on the given angular frequencies, z_t = phi(t) W.

    Smoothness in t comes from the basis (no period shorter than the highest frequency's), not
    from a regulariser; W ``[2L + 1, D]`` is learned.
    """

    def __init__(self, freqs: Tensor, dim: int, seed: int = 0):
        super().__init__()
        self.register_buffer("freqs", torch.as_tensor(freqs, dtype=torch.float32).clone())
        g = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(torch.randn(2 * len(self.freqs) + 1, dim, generator=g)
                              / math.sqrt(dim))

    @property
    def n_freqs(self) -> int:
        return len(self.freqs)

    def basis(self, t: Tensor) -> Tensor:
        """``t [T]`` -> ``phi [T, 2L + 1]``."""
        return fourier_basis(t, self.freqs)

    def forward(self, t: Tensor) -> Tensor:
        """``t [T]`` -> ``z [T, D]``."""
        return self.basis(t) @ self.W
