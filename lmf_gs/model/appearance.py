"""A smooth per-frame colour transform of the static layer (exposure, white balance).

Real cameras change exposure and white balance as they move; a static set without a way to
follow that leaves a colour error that the uncertainty-weighted loss lets the non-static layers
explain. NeuralDiff gives its static colour a per-frame appearance embedding; here each static
Gaussian's colour at time t goes through ``rgb' = (I + A(t)) rgb + b(t)`` before compositing, so
the bias is weighted by the static layer's opacity.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lmf_gs.model.time_latent import fourier_basis

AFFINE_WIDTH = 12  # a 3x3 matrix and a bias


class ColourTransform(nn.Module):
    """``[A(t) | b(t)] = phi'(t) W``: phi' is the model's Fourier time basis without its constant
    term, so the transform is as smooth as the time latents and averages to the identity over
    the video (no global colour offset to trade with the Gaussians' own colours). W ``[2L, 12]``
    starts at 0: the identity at every t."""

    def __init__(self, freqs: Tensor):
        super().__init__()
        self.register_buffer("freqs", torch.as_tensor(freqs, dtype=torch.float32).clone())
        self.W = nn.Parameter(torch.zeros(2 * len(self.freqs), AFFINE_WIDTH))

    def affine(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """``t [T]`` -> matrices ``I + A(t) [T, 3, 3]`` and biases ``b(t) [T, 3]``."""
        out = fourier_basis(t, self.freqs)[:, 1:] @ self.W
        eye = torch.eye(3, dtype=out.dtype, device=out.device)
        return eye + out[:, :9].reshape(-1, 3, 3), out[:, 9:]

    def forward(self, rgb: Tensor, t: Tensor) -> Tensor:
        """Colours ``rgb [T, N, 3]`` at times ``t [T]`` -> transformed ``[T, N, 3]`` (>= 0)."""
        m, b = self.affine(t)
        return (torch.einsum("tij,tnj->tni", m, rgb) + b[:, None, :]).clamp_min(0.0)
