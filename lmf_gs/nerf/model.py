"""NeuralDiff (Tschernezki et al., 3DV 2021) as published: the NeRF reference backend.

- static field: coarse and fine NeRF MLPs (``depth x width``, skip) on world positions; the fine
  one's colour head also sees a per-frame appearance embedding;
- semi-static ("transient") head on the fine trunk's features Phi_0(x) and z_t;
- dynamic ("actor") head on CAMERA-frame positions and z_t (no shared features);
- both non-static heads predict density, colour and an uncertainty beta.

Differences from the released code, each for exact layer isolation or scale independence:
each non-static layer has its own time latent z_t (same Fourier basis; NeuralDiff shares one), so
that a loss on one layer's mask can be kept from the other layer entirely; positions are
normalised by the scene (median SfM point, median point depth) so that the encoding means the
same on any COLMAP scale; the dynamic head's input is not zero-padded to the semi-static width
(zero inputs add nothing); the time basis's octave count is derived from the video's duration
(NeuralDiff: 10 octaves whatever the length, see `lmf_gs.model.time_latent`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmf_gs.config import NerfConfig
from lmf_gs.core.geometry import median_point_depth
from lmf_gs.core.layers import LAYERS, NON_STATIC
from lmf_gs.data.scene import Scene
from lmf_gs.model.time_latent import TimeLatent, resolve_time_freqs, time_frequencies
from lmf_gs.nerf.encoding import PosEncoding

SS, DY = LAYERS.index("semistatic"), LAYERS.index("dynamic")
# `NerfConfig` fields that shape the network (taken from the checkpoint when a run is loaded)
ARCHITECTURE = ("width", "depth", "skips", "xyz_freqs", "dir_freqs", "appearance_dim",
                "time_freqs", "latent_dim")
MODULES = {"static": ("coarse", "fine", "appearance"),
           "semistatic": ("semistatic", "time.semistatic"),
           "dynamic": ("dynamic", "time.dynamic")}


class StaticField(nn.Module):
    """NeRF MLP: trunk Phi_0 (``depth`` ReLU layers of ``width``, the encoded position fed again
    at ``skips``), density from the trunk, colour from its features + view direction
    (+ appearance)."""

    def __init__(self, xyz_dim: int, dir_dim: int, appearance_dim: int, width: int, depth: int,
                 skips: tuple[int, ...]):
        super().__init__()
        self.skips = tuple(skips)
        self.layers = nn.ModuleList(
            nn.Linear(xyz_dim if i == 0 else width + xyz_dim * (i in self.skips), width)
            for i in range(depth))
        self.sigma = nn.Linear(width, 1)
        self.feature = nn.Linear(width, width)
        self.colour = nn.Sequential(nn.Linear(width + dir_dim + appearance_dim, width // 2),
                                    nn.ReLU(), nn.Linear(width // 2, 3))

    def forward(self, x_enc: Tensor, view: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``x_enc [..., X]``, ``view [..., V]`` (direction encoding + appearance) ->
        density ``[...]``, colour ``[..., 3]``, features Phi_0 ``[..., width]``."""
        h = x_enc
        for i, layer in enumerate(self.layers):
            if i in self.skips:
                h = torch.cat([x_enc, h], dim=-1)
            h = F.relu(layer(h))
        feat = self.feature(h)
        rgb = torch.sigmoid(self.colour(torch.cat([feat, view], dim=-1)))
        return F.softplus(self.sigma(h))[..., 0], rgb, feat


class LayerHead(nn.Module):
    """A non-static layer: 4 ReLU layers of ``width`` -> density (softplus), colour (sigmoid),
    uncertainty beta (softplus)."""

    def __init__(self, in_dim: int, width: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, width), nn.ReLU(),
                                 *[m for _ in range(3) for m in (nn.Linear(width, width),
                                                                 nn.ReLU())])
        self.out = nn.Linear(width, 5)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``x [..., in]`` -> density ``[...]``, colour ``[..., 3]``, beta ``[...]``."""
        o = self.out(self.mlp(x))
        return F.softplus(o[..., 0]), torch.sigmoid(o[..., 1:4]), F.softplus(o[..., 4])


@dataclass
class SampleFields:
    """The three layers at S samples of R rays (LAYERS order in the layer axis)."""

    sigma: Tensor  # [R, S, 3] densities
    rgb: Tensor  # [R, S, 3, 3] colours
    beta: Tensor  # [R, S, 3] uncertainties (0 for the static layer)
    feature: Tensor  # [R, S, W] trunk features Phi_0, the semi-static head's input
    z_ss: Tensor  # [R, D] semi-static time latent


class NeuralDiff(nn.Module):
    """Static, semi-static and dynamic radiance fields (see the module docstring)."""

    def __init__(self, cfg: NerfConfig, n_frames: int, time_freqs: Tensor):
        """``time_freqs [L]``: angular frequencies of the time basis (`time_frequencies`)."""
        super().__init__()
        self.cfg = cfg
        W, D = cfg.width, cfg.latent_dim
        self.xyz_enc, self.dir_enc = PosEncoding(cfg.xyz_freqs), PosEncoding(cfg.dir_freqs)
        xd, dd = self.xyz_enc.out_dim(), self.dir_enc.out_dim()
        self.coarse = StaticField(xd, dd, 0, W, cfg.depth, cfg.skips)
        self.fine = StaticField(xd, dd, cfg.appearance_dim, W, cfg.depth, cfg.skips)
        self.appearance = nn.Embedding(n_frames, cfg.appearance_dim)
        self.time = nn.ModuleDict({n: TimeLatent(time_freqs, D, seed=i)
                                   for i, n in enumerate(NON_STATIC)})
        self.semistatic = LayerHead(W + D, W // 2)
        self.dynamic = LayerHead(xd + D, W // 2)
        self.register_buffer("center", torch.zeros(3))
        self.register_buffer("scale", torch.tensor(1.0))
        # frame -> appearance embedding row (held-out frames use the nearest training frame)
        self.register_buffer("appearance_index", torch.arange(n_frames))

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def initialise(cls, cfg: NerfConfig, scene: Scene, train_idx: list[int]) -> NeuralDiff:
        """A fresh model normalised to the scene; frames outside ``train_idx`` borrow the
        appearance of the training frame nearest in frame number (as NeuralDiff); the time
        basis is sized to the video's duration (see `NerfConfig.time_basis`)."""
        n_freqs = resolve_time_freqs(cfg.time_basis, cfg.time_freqs, scene.duration_s,
                                     cfg.time_period_s)
        model = cls(cfg, len(scene), time_frequencies(cfg.time_basis, n_freqs))
        model.center.copy_(torch.as_tensor(np.median(scene.points, axis=0)))
        model.scale.fill_(median_point_depth(scene))
        numbers = scene.frame_numbers
        train = np.asarray(train_idx)
        nearest = train[np.abs(numbers[:, None] - numbers[train][None]).argmin(1)]
        model.appearance_index.copy_(torch.as_tensor(nearest))
        return model

    @classmethod
    def from_state_dict(cls, cfg: NerfConfig, state: dict[str, Tensor]) -> NeuralDiff:
        model = cls(cfg, int(state["appearance.weight"].shape[0]), state["time.semistatic.freqs"])
        model.load_state_dict(state)
        return model

    def normalisation(self) -> tuple[np.ndarray, float]:
        """``(center [3], scale)``: world units -> model units."""
        return self.center.cpu().double().numpy(), float(self.scale)

    def layer_parameters(self, layers: tuple[str, ...]) -> list[nn.Parameter]:
        """The parameters of ``layers``; "static" is the coarse and fine static MLPs (the shared
        trunk included) and the appearance embeddings."""
        return [p for n in layers for m in MODULES[n] for p in self.get_submodule(m).parameters()]

    # -- fields ---------------------------------------------------------------------------------

    def _view(self, dirs: Tensor, S: int, appearance: Tensor | None = None) -> Tensor:
        """Encoded unit view directions of rays ``dirs [R, 3]`` (+ appearance) -> ``[R, S, V]``."""
        v = self.dir_enc(F.normalize(dirs, dim=-1))
        if appearance is not None:
            v = torch.cat([v, appearance], dim=-1)
        return v[:, None].expand(-1, S, -1)

    def coarse_fields(self, x: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
        """Coarse static field at ``x [R, S, 3]`` -> density ``[R, S]``, colour ``[R, S, 3]``."""
        sigma, rgb, _ = self.coarse(self.xyz_enc(x), self._view(dirs, x.shape[1]))
        return sigma, rgb

    def fine_fields(
        self, x: Tensor, x_cam: Tensor, dirs: Tensor, frame: Tensor, t: Tensor,
        background: Tensor | None = None,
    ) -> SampleFields:
        """All layers at world positions ``x [R, S, 3]`` (camera frame ``x_cam``) of rays with
        directions ``dirs [R, 3]``, frames ``frame [R]`` and times ``t [R]``.

        ``background [R, 3]``: NeuralDiff's training-time "transmittance fix": the last sample
        is an opaque static surface of that (random) colour, so that no ray ends transparent.
        """
        S = x.shape[1]
        a = self.appearance(self.appearance_index[frame])
        sigma_st, rgb_st, feat = self.fine(self.xyz_enc(x), self._view(dirs, S, a))
        if background is not None:
            sigma_st = torch.cat([sigma_st[:, :-1], torch.full_like(sigma_st[:, -1:], 100.0)], 1)
            rgb_st = torch.cat([rgb_st[:, :-1], background[:, None]], 1)
        z_ss, z_dy = self.time["semistatic"](t), self.time["dynamic"](t)
        ss = self.semistatic(torch.cat([feat, z_ss[:, None].expand(-1, S, -1)], dim=-1))
        dy = self.dynamic(torch.cat([self.xyz_enc(x_cam), z_dy[:, None].expand(-1, S, -1)], -1))
        return SampleFields(
            sigma=torch.stack([sigma_st, ss[0], dy[0]], dim=-1),
            rgb=torch.stack([rgb_st, ss[1], dy[1]], dim=-2),
            beta=torch.stack([torch.zeros_like(sigma_st), ss[2], dy[2]], dim=-1),
            feature=feat, z_ss=z_ss,
        )

    def isolate(self, f: SampleFields, detach: tuple[str, ...]) -> SampleFields:
        """The same fields with no gradient to the layers in ``detach``. Detaching "static" also
        cuts the semi-static head from the shared trunk (its features are recomputed into it
        detached), so that nothing static moves."""
        sigma, rgb, beta = list(f.sigma.unbind(-1)), list(f.rgb.unbind(-2)), list(f.beta.unbind(-1))
        if "static" in detach and "semistatic" not in detach:
            S = f.feature.shape[1]
            sigma[SS], rgb[SS], beta[SS] = self.semistatic(
                torch.cat([f.feature.detach(), f.z_ss[:, None].expand(-1, S, -1)], dim=-1))
        for n in detach:
            k = LAYERS.index(n)
            sigma[k], rgb[k], beta[k] = sigma[k].detach(), rgb[k].detach(), beta[k].detach()
        return replace(f, sigma=torch.stack(sigma, -1), rgb=torch.stack(rgb, -2),
                       beta=torch.stack(beta, -1))
