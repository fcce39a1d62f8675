"""Volume rendering of the three layers (paper Eq. 1-3, 8-10).

Densities add, colours mix by density: a sample's alpha is ``1 - exp(-delta sum_l sigma_l)`` and
layer l receives the share ``sigma_l / sum_l sigma_l`` of its weight. Rendering the pseudo-colour
one-hot of each layer with these shares gives the soft layer masks, so
``M_st + M_ss + M_dy = accumulated weight`` exactly, as for the Gaussian backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lmf_gs.config import NerfConfig
from lmf_gs.nerf.model import NeuralDiff, SampleFields
from lmf_gs.nerf.rays import RayCameras, Rays
from lmf_gs.nerf.sampling import sample_pdf, stratified

FAR_DELTA = 1e2  # length of the last interval (NeuralDiff: the ray's remainder)


@dataclass
class Composite:
    """Rendered values of R rays."""

    rgb: Tensor  # [R, 3]
    masks: Tensor  # [R, L] soft layer masks (the rendered one-hot pseudo-colours)
    beta: Tensor  # [R] rendered uncertainty (no beta_min)
    depth: Tensor  # [R] expected depth (normalised units)
    alpha: Tensor  # [R] accumulated weight
    weights: Tensor  # [R, S] per-sample weights


def deltas(z: Tensor, dirs: Tensor) -> Tensor:
    """Interval lengths along rays at depths ``z [R, S]`` with directions ``dirs [R, 3]``."""
    d = (z[:, 1:] - z[:, :-1]) * dirs.norm(dim=-1, keepdim=True)
    return torch.cat([d, torch.full_like(z[:, :1], FAR_DELTA)], dim=-1)


def composite(sigma: Tensor, rgb: Tensor, beta: Tensor, delta: Tensor, z: Tensor) -> Composite:
    """Layers' densities ``sigma [R, S, L]``, colours ``rgb [R, S, L, 3]``, uncertainties
    ``beta [R, S, L]`` at depths ``z [R, S]`` with interval lengths ``delta [R, S]``."""
    total = sigma.sum(-1)
    alpha = 1.0 - torch.exp(-delta * total)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha[:, :-1]], -1), -1)
    w = alpha * trans  # [R, S]
    wl = w[..., None] * sigma / total.clamp_min(1e-10)[..., None]  # [R, S, L]
    return Composite(
        rgb=(wl[..., None] * rgb).sum(dim=(1, 2)),
        masks=wl.sum(1),
        beta=(wl * beta).sum(dim=(1, 2)),
        depth=(w * z).sum(1),
        alpha=w.sum(1),
        weights=w,
    )


@dataclass
class RayRender:
    """The fine render of R rays, the coarse colour, and what re-compositing needs."""

    fine: Composite  # beta includes beta_min
    rgb_coarse: Tensor  # [R, 3]
    fields: SampleFields  # at the fine samples
    delta: Tensor  # [R, S]
    z: Tensor  # [R, S] fine sample depths

    def recomposite(self, fields: SampleFields, beta_min: float) -> Composite:
        """Composite other fields (e.g. `NeuralDiff.isolate`d ones) at the same samples."""
        return composite_layers(fields, self.delta, self.z, beta_min)


def composite_layers(fields: SampleFields, delta: Tensor, z: Tensor, beta_min: float) -> Composite:
    """`composite` of the three layers' fields, with ``beta_min`` added to the uncertainty."""
    c = composite(fields.sigma, fields.rgb, fields.beta, delta, z)
    c.beta = c.beta + beta_min
    return c


def render_rays(model: NeuralDiff, rays: Rays, cfg: NerfConfig, train: bool) -> RayRender:
    """Coarse pass (static field, stratified samples), then the fine pass on coarse + importance
    samples. ``train``: jittered samples, coarse density noise and the transmittance fix."""
    z_c = stratified(rays.near, rays.far, cfg.coarse_samples, perturb=train)
    sigma_c, rgb_c = model.coarse_fields(rays.points(z_c)[0], rays.dirs)
    if train and cfg.noise_std > 0:
        sigma_c = torch.relu(sigma_c + cfg.noise_std * torch.randn_like(sigma_c))
    coarse = composite(sigma_c[..., None], rgb_c[..., None, :],
                       torch.zeros_like(sigma_c[..., None]), deltas(z_c, rays.dirs), z_c)
    z_f = sample_pdf(0.5 * (z_c[:, 1:] + z_c[:, :-1]), coarse.weights[:, 1:-1].detach(),
                     cfg.fine_samples, deterministic=not train)
    z = torch.sort(torch.cat([z_c, z_f], dim=-1), dim=-1).values.detach()
    x, x_cam = rays.points(z)
    background = torch.rand(len(rays), 3, device=z.device) if train else None
    fields = model.fine_fields(x, x_cam, rays.dirs, rays.frame, rays.t, background)
    delta = deltas(z, rays.dirs)
    return RayRender(fine=composite_layers(fields, delta, z, cfg.beta_min), rgb_coarse=coarse.rgb,
                     fields=fields, delta=delta, z=z)


@dataclass
class FrameRender:
    """A whole frame at the working resolution."""

    rgb: Tensor  # [H, W, 3]
    masks: Tensor  # [H, W, 3] static, semi-static, dynamic
    beta: Tensor  # [H, W]
    depth: Tensor  # [H, W] (world units)
    alpha: Tensor  # [H, W]


@torch.no_grad()
def render_frame(model: NeuralDiff, cams: RayCameras, i: int, cfg: NerfConfig) -> FrameRender:
    """Render frame ``i`` in chunks of ``cfg.chunk`` rays (deterministic samples)."""
    rays = cams.frame_rays(i)
    parts = [render_rays(model, rays[s:s + cfg.chunk], cfg, train=False).fine
             for s in range(0, len(rays), cfg.chunk)]
    H, W = cams.height, cams.width

    def cat(name: str) -> Tensor:
        return torch.cat([getattr(p, name) for p in parts]).reshape(H, W, -1).squeeze(-1)

    return FrameRender(rgb=cat("rgb"), masks=cat("masks"), beta=cat("beta"),
                       depth=cat("depth") * model.scale, alpha=cat("alpha"))
