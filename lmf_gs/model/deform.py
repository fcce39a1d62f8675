"""Small deformation networks: per-Gaussian offsets from the time latent z_t."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Deformation(nn.Module):
    """MLP([z_t, f_i]) + z_t A_i -> named per-Gaussian offsets, zero at initialisation.

    The MLP shares what all Gaussians of a set do over time; the per-Gaussian readout
    ``A_i [D, O]`` of the same smooth latent lets each Gaussian follow its own trajectory in
    the span of the time basis (fast to fit, and still smooth in t).
    ``outputs`` maps a name to its width, e.g. ``{"opacity": 1, "rgb": 3, "xyz": 3, "rot": 4}``.
    """

    def __init__(self, latent_dim: int, feature_dim: int, hidden: int, outputs: dict[str, int]):
        super().__init__()
        self.outputs = dict(outputs)
        self.net = nn.Sequential(
            nn.Linear(latent_dim + feature_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, sum(self.outputs.values())),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    @property
    def width(self) -> int:
        return sum(self.outputs.values())

    def forward(self, z: Tensor, features: Tensor, readout: Tensor | None = None
                ) -> dict[str, Tensor]:
        """``z [T, D]``, ``features [N, F]``, ``readout [N, D, O]`` -> ``{name: [T, N, width]}``."""
        T, N = z.shape[0], features.shape[0]
        x = torch.cat([z[:, None, :].expand(T, N, -1), features[None].expand(T, N, -1)], dim=-1)
        out = self.net(x)
        if readout is not None:
            out = out + torch.einsum("td,ndo->tno", z, readout)
        return dict(zip(self.outputs, out.split(list(self.outputs.values()), dim=-1), strict=True))
