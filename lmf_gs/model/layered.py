"""`LayeredGaussians`: three Gaussian sets composited in one rasterisation.

Every Gaussian carries 7 channels: RGB, the one-hot of its layer (static, semi-static, dynamic)
and its uncertainty beta. Alpha compositing turns the one-hots into the soft layer masks
M_st + M_ss + M_dy = alpha and beta into the uncertainty image B, exactly as volume rendering does
for NeuralDiff's pseudo-colours.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmf_gs.config import ModelConfig
from lmf_gs.core.layers import LAYERS, NON_STATIC
from lmf_gs.model.appearance import ColourTransform
from lmf_gs.model.deform import Deformation
from lmf_gs.model.gaussians import empty_like_state, init_gaussians, knn_scales, quat_multiply
from lmf_gs.model.sh import sh_to_rgb
from lmf_gs.model.time_latent import TimeLatent, resolve_time_freqs, time_frequencies
from lmf_gs.render import rasterize

N_CHANNELS = 7  # rgb, 3 layer one-hots, beta


@dataclass
class LayeredRender:
    """Images of C cameras."""

    rgb: Tensor  # [C, H, W, 3]
    masks: Tensor  # [C, H, W, 3] soft layer masks (static, semistatic, dynamic)
    beta: Tensor  # [C, H, W] uncertainty image B (beta_min included)
    depth: Tensor  # [C, H, W] expected depth
    alpha: Tensor  # [C, H, W] accumulated opacity
    opacities: Tensor  # [C, N_total] each Gaussian's opacity at its camera's time
    means2d: Tensor  # [C, N_total, 2] projected means (gradient available after backward)
    radii: Tensor  # [C, N_total] or [C, N_total, 2]
    sizes: dict[str, int]  # Gaussians per set, in LAYERS order
    # (layer, sets) -> [C, H, W] that layer's mask with no gradient to those sets (`render`)
    isolated: dict[tuple[str, tuple[str, ...]], Tensor] = field(default_factory=dict)

    def set_slice(self, layer: str) -> slice:
        """Columns of ``means2d``/``radii`` belonging to ``layer``."""
        start = 0
        for name in LAYERS:
            if name == layer:
                return slice(start, start + self.sizes[name])
            start += self.sizes[name]
        raise KeyError(layer)


@dataclass
class SceneGeometry:
    """What the model needs to know about the scene to initialise itself."""

    points: np.ndarray  # [P, 3] SfM points (world)
    colors: np.ndarray  # [P, 3] in [0, 1]
    scale: float  # median depth of the points over the frames
    K: np.ndarray  # [3, 3] working-resolution intrinsics
    width: int
    height: int
    duration_s: float | None = None  # first to last frame (sizes the octave time basis)


class LayeredGaussians(nn.Module):
    """Static (world), semi-static (world, time-varying) and dynamic (camera frame) Gaussians."""

    def __init__(self, cfg: ModelConfig, sets: dict[str, nn.ParameterDict], scene_scale: float,
                 time_freqs: Tensor):
        """``time_freqs [L]``: angular frequencies of the time basis (`time_frequencies`)."""
        super().__init__()
        self.cfg = cfg
        self.sets = nn.ModuleDict(sets)
        self.register_buffer("scene_scale", torch.tensor(float(scene_scale)))
        self.near_plane = cfg.near * float(scene_scale)  # a float: no device read per render
        d, f, h = cfg.latent_dim, cfg.feature_dim, cfg.hidden
        ss_out = {"opacity": 1, "rgb": 3, **({"xyz": 3} if cfg.semistatic_motion else {})}
        self.time = nn.ModuleDict({n: TimeLatent(time_freqs, d, seed=i)
                                   for i, n in enumerate(NON_STATIC)})
        self.deform = nn.ModuleDict({
            "semistatic": Deformation(d, f, h, ss_out),
            "dynamic": Deformation(d, f, h, {"opacity": 1, "rgb": 3, "xyz": 3, "rot": 4}),
        })
        self.appearance = ColourTransform(time_freqs) if cfg.appearance == "affine" else None

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def initialise(cls, cfg: ModelConfig, geo: SceneGeometry, seed: int = 0) -> LayeredGaussians:
        """Static/semi-static sets from the EPIC points, dynamic set in a camera frustum volume;
        the time basis sized to ``geo.duration_s`` (see `ModelConfig.time_basis`)."""
        rng = np.random.default_rng(seed)
        static_xyz, static_rgb, src = _resample_points(geo.points, geo.colors, cfg.n_static, rng,
                                                       jitter=0.002 * geo.scale)
        static_scales = knn_scales(geo.points)[src] if cfg.static_init_scale == "sfm" else None
        ss_xyz, ss_rgb, _ = _resample_points(geo.points, geo.colors, cfg.n_semistatic, rng,
                                             jitter=0.01 * geo.scale)
        dy_xyz = _frustum_points(cfg.n_dynamic, geo, cfg.dynamic_depth, rng)
        dy_rgb = rng.uniform(0.3, 0.7, size=(cfg.n_dynamic, 3))
        d = cfg.latent_dim
        ss_w, dy_w = 4 + 3 * cfg.semistatic_motion, 11
        def ro(layer: str, width: int) -> tuple[int, int] | None:
            return (d, width) if layer in cfg.readout else None

        sets = {
            "static": init_gaussians(static_xyz, static_rgb, cfg.init_opacity, cfg.sh_degree,
                                     beta_init=cfg.beta_init if cfg.static_uncertainty else None,
                                     seed=seed, scales=static_scales),
            "semistatic": init_gaussians(ss_xyz, ss_rgb, cfg.init_opacity_nonstatic, 0,
                                         cfg.feature_dim, cfg.beta_init, seed + 1,
                                         ro("semistatic", ss_w)),
            "dynamic": init_gaussians(dy_xyz, dy_rgb, cfg.init_opacity_nonstatic, 0,
                                      cfg.feature_dim, cfg.beta_init, seed + 2,
                                      ro("dynamic", dy_w)),
        }
        with torch.random.fork_rng():  # the networks' initial weights depend on `seed` only
            torch.manual_seed(seed)
            n_freqs = resolve_time_freqs(cfg.time_basis, cfg.time_freqs, geo.duration_s,
                                         cfg.time_period_s)
            return cls(cfg, sets, geo.scale, time_frequencies(cfg.time_basis, n_freqs))

    @classmethod
    def from_state_dict(cls, cfg: ModelConfig, state: dict[str, Tensor]) -> LayeredGaussians:
        """Rebuild a model (with its saved Gaussian counts and time basis) from `state_dict()`."""
        sets = {}
        for layer in LAYERS:
            prefix = f"sets.{layer}."
            sets[layer] = empty_like_state(
                {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            )
        model = cls(cfg, sets, float(state["scene_scale"]), state["time.semistatic.freqs"])
        model.load_state_dict(state)
        return model

    def num_gaussians(self) -> dict[str, int]:
        return {n: int(self.sets[n]["means"].shape[0]) for n in LAYERS}

    # -- per-frame Gaussians ------------------------------------------------------------------

    def gaussians(
        self, t: Tensor, c2w: Tensor, layers: tuple[str, ...] = LAYERS,
        detach: tuple[str, ...] = (),
    ) -> tuple[dict[str, Tensor], dict[str, int]]:
        """The ``layers`` at times ``t [C]`` for cameras ``c2w [C, 4, 4]``, concatenated in
        LAYERS order; the sets in ``detach`` pass no gradient back.

        Returns per-camera tensors ``means/quats/scales [C, N, .]``, ``opacities [C, N]``,
        ``colors [C, N, 7]``, and the per-set counts (0 for a layer left out).
        """
        C = t.shape[0]
        make = {"static": lambda: self._static(t, c2w[:, :3, 3]),
                "semistatic": lambda: self._semistatic(t),
                "dynamic": lambda: self._dynamic(t, c2w)}
        parts = [make[n]() for n in LAYERS if n in layers]
        parts = [{k: v.detach() for k, v in p.items()} if n in detach else p
                 for n, p in zip([n for n in LAYERS if n in layers], parts, strict=True)]
        sizes = {n: (self.num_gaussians()[n] if n in layers else 0) for n in LAYERS}
        cat = {k: torch.cat([p[k].expand(C, *p[k].shape[1:]) for p in parts], dim=1)
               for k in parts[0]}
        return cat, sizes

    def _channels(self, rgb: Tensor, layer: str, betas: Tensor | None) -> Tensor:
        """``rgb [C, N, 3]`` + one-hot + beta (0 without ``betas``) -> ``[C, N, 7]``."""
        C, N = rgb.shape[:2]
        extra = torch.zeros(C, N, 4, dtype=rgb.dtype, device=rgb.device)
        extra[..., LAYERS.index(layer)] = 1.0
        if betas is not None:
            extra[..., 3] = F.softplus(betas)
        return torch.cat([rgb, extra], dim=-1)

    def _base(self, layer: str) -> dict[str, Tensor]:
        p = self.sets[layer]
        return {
            "means": p["means"][None],
            "quats": p["quats"][None],
            "scales": torch.exp(p["scales"])[None],
        }

    def _static(self, t: Tensor, cam_centers: Tensor) -> dict[str, Tensor]:
        p = self.sets["static"]
        out = self._base("static")
        coeffs = p["sh0"] if "shN" not in p else torch.cat([p["sh0"], p["shN"]], dim=1)
        dirs = p["means"][None] - cam_centers[:, None, :]
        rgb = sh_to_rgb(coeffs[None], dirs, self.cfg.sh_degree)
        if self.appearance is not None:
            rgb = self.appearance(rgb, t)
        out["opacities"] = torch.sigmoid(p["opacities"])[None]
        out["colors"] = self._channels(rgb, "static", p["betas"][None] if "betas" in p else None)
        return out

    def deformation(self, layer: str, t: Tensor) -> dict[str, Tensor]:
        """Offsets of a non-static set at times ``t [T]``: ``{name: [T, N, width]}``."""
        p = self.sets[layer]
        return self.deform[layer](self.time[layer](t), p["features"], p.get("readout"))

    def _deformed(self, layer: str, t: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        p = self.sets[layer]
        d = self.deformation(layer, t)
        out = self._base(layer)
        out["opacities"] = torch.sigmoid(p["opacities"][None] + d["opacity"][..., 0])
        rgb = (0.5 + 0.28209479177387814 * p["sh0"][None, :, 0, :] + d["rgb"]).clamp_min(0.0)
        out["colors"] = self._channels(rgb, layer, p["betas"][None])
        return out, d

    def _semistatic(self, t: Tensor) -> dict[str, Tensor]:
        out, d = self._deformed("semistatic", t)
        if "xyz" in d:
            out["means"] = out["means"] + d["xyz"] * self.scene_scale
        return out

    def _dynamic(self, t: Tensor, c2w: Tensor) -> dict[str, Tensor]:
        """Camera-frame Gaussians deformed at ``t`` and placed in the world with ``c2w``."""
        out, d = self._deformed("dynamic", t)
        cam_means = out["means"] + d["xyz"] * self.scene_scale  # [C, N, 3] camera frame
        R, trans = c2w[:, :3, :3], c2w[:, :3, 3]
        out["means"] = torch.einsum("cij,cnj->cni", R, cam_means) + trans[:, None, :]
        cam_quats = out["quats"] + d["rot"]
        out["quats"] = quat_multiply(_rotmat_to_quat(R)[:, None, :], cam_quats)
        return out

    # -- rendering ----------------------------------------------------------------------------

    def render(
        self, t: Tensor, w2c: Tensor, K: Tensor, width: int, height: int, backend: str = "auto",
        layers: tuple[str, ...] = LAYERS, detach: tuple[str, ...] = (),
        isolate: tuple[tuple[str, tuple[str, ...]], ...] = (),
    ) -> LayeredRender:
        """Render cameras ``w2c [C, 4, 4]``, ``K [C, 3, 3]`` at normalised times ``t [C]``,
        with only ``layers`` (the others contribute nothing) and no gradient to ``detach``;
        ``isolate`` lists (layer, sets) whose mask is also rendered with no gradient to those
        sets (`LayeredRender.isolated`)."""
        c2w = torch.linalg.inv(w2c)
        g, sizes = self.gaussians(t, c2w, layers, detach)
        frozen = [torch.cat([torch.full((sizes[n],), n in sets, device=w2c.device)
                             for n in LAYERS]) for _, sets in isolate]
        out = rasterize(g["means"], g["quats"], g["scales"], g["opacities"], g["colors"],
                        w2c, K, width, height, backend=backend,
                        near_plane=self.near_plane,
                        isolate=tuple((3 + LAYERS.index(layer), f)
                                      for (layer, _), f in zip(isolate, frozen, strict=True)))
        feats = out.colors
        return LayeredRender(
            rgb=feats[..., :3],
            masks=feats[..., 3:6],
            beta=feats[..., 6] + self.cfg.beta_min,
            depth=out.depths[..., 0],
            alpha=out.alphas[..., 0],
            opacities=g["opacities"],
            means2d=out.means2d,
            radii=out.radii,
            sizes=sizes,
            isolated={spec: feats[..., 7 + k] for k, spec in enumerate(isolate)},
        )


def _rotmat_to_quat(R: Tensor) -> Tensor:
    """Rotation matrices ``[C, 3, 3]`` -> wxyz quaternions ``[C, 4]`` (Shepperd's method)."""
    m = R
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    cands = torch.stack([
        torch.stack([1 + tr, m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0],
                     m[:, 1, 0] - m[:, 0, 1]], -1),
        torch.stack([m[:, 2, 1] - m[:, 1, 2], 1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2],
                     m[:, 0, 1] + m[:, 1, 0], m[:, 0, 2] + m[:, 2, 0]], -1),
        torch.stack([m[:, 0, 2] - m[:, 2, 0], m[:, 0, 1] + m[:, 1, 0],
                     1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2], m[:, 1, 2] + m[:, 2, 1]], -1),
        torch.stack([m[:, 1, 0] - m[:, 0, 1], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1],
                     1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]], -1),
    ], dim=1)  # [C, 4 candidates, 4]
    diag = torch.stack([tr, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], -1)
    best = cands[torch.arange(len(m)), diag.argmax(-1)]
    return F.normalize(best, dim=-1)


def _resample_points(
    points: np.ndarray, colors: np.ndarray, n: int, rng: np.random.Generator, jitter: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` points drawn from the SfM cloud (each once before any twice), jittered; returns
    positions ``[n, 3]``, colours ``[n, 3]`` and the index of each one's SfM point ``[n]``."""
    if len(points) == 0:
        raise ValueError("the scene has no SfM points to initialise Gaussians from")
    idx = np.concatenate([rng.permutation(len(points))[: min(n, len(points))],
                          rng.integers(0, len(points), size=max(0, n - len(points)))])
    xyz = points[idx] + rng.normal(scale=jitter, size=(len(idx), 3))
    return xyz.astype(np.float32), colors[idx].astype(np.float32), idx


def _frustum_points(
    n: int, geo: SceneGeometry, depth: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """``n`` camera-frame points uniform over the image and ``depth`` x scene scale."""
    uv = rng.uniform([0, 0], [geo.width, geo.height], size=(n, 2))
    z = rng.uniform(depth[0], depth[1], size=n) * geo.scale
    xy = (uv - geo.K[:2, 2]) / [geo.K[0, 0], geo.K[1, 1]]
    return np.concatenate([xy * z[:, None], z[:, None]], axis=1).astype(np.float32)
