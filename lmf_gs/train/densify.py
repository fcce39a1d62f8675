"""Per-set densification and pruning with gsplat's strategy ops (plain torch, CPU-safe).

gsplat 1.5.3's ``DefaultStrategy`` never resets opacities (``step % every == 0 & step > 0``
parses as a chained comparison that is always False), so the schedule lives here and only the
parameter/optimizer surgery (`duplicate`, `split`, `remove`, `reset_opa`) comes from gsplat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from gsplat.strategy.ops import duplicate, remove, reset_opa, split
from torch import Tensor, nn

from lmf_gs.config import TrainConfig


@dataclass
class SetDensifier:
    """Gradient statistics and refinement schedule of one Gaussian set."""

    cfg: TrainConfig
    scene_scale: float
    max_gaussians: int
    reset_opacity: bool = True  # only meaningful where base opacity is the rendered opacity
    state: dict[str, Tensor] = field(default_factory=dict)

    def _ensure(self, n: int, device: torch.device) -> None:
        if "grad2d" not in self.state or self.state["grad2d"].shape[0] != n:
            self.state["grad2d"] = torch.zeros(n, device=device)
            self.state["count"] = torch.zeros(n, device=device)
        if "max_opacity" not in self.state or self.state["max_opacity"].shape[0] != n:
            self.state["max_opacity"] = torch.full((n,), -1.0, device=device)

    @torch.no_grad()
    def accumulate(self, means2d_grad: Tensor, radii: Tensor, width: int, height: int,
                   opacities: Tensor | None = None) -> None:
        """Add the NDC-scaled 2D-mean gradient norms of visible Gaussians (``[C, N, 2]``) and,
        with ``opacities [C, N]``, keep each Gaussian's highest opacity while visible
        (``max_opacity``, -1 until first seen; it survives densification, for pruning)."""
        C, N = means2d_grad.shape[:2]
        self._ensure(N, means2d_grad.device)
        g = means2d_grad.clone()
        g[..., 0] *= width / 2.0 * C
        g[..., 1] *= height / 2.0 * C
        visible = (radii > 0).all(-1) if radii.dim() == 3 else radii > 0  # [C, N]
        self.state["grad2d"] += (g.norm(dim=-1) * visible).sum(0)
        self.state["count"] += visible.sum(0)
        if opacities is not None:
            seen = torch.where(visible, opacities, -1.0).max(0).values
            self.state["max_opacity"] = torch.maximum(self.state["max_opacity"], seen)

    @torch.no_grad()
    def step(
        self,
        step: int,
        params: nn.ParameterDict,
        optimizers: dict[str, torch.optim.Optimizer],
        opacity_for_pruning: Callable[[], Tensor],
    ) -> dict[str, int]:
        """Grow, prune and reset on schedule; returns counts of what changed."""
        cfg, done = self.cfg, {}
        if cfg.densify_from <= step < cfg.densify_until and step % cfg.densify_every == 0:
            n = params["means"].shape[0]
            self._ensure(n, params["means"].device)
            avg = self.state["grad2d"] / self.state["count"].clamp_min(1)
            high = _top_fraction(avg, cfg.grow_fraction) & (avg > cfg.grad_threshold)
            big = torch.exp(params["scales"]).max(-1).values > cfg.split_scale * self.scene_scale
            room = max(self.max_gaussians - n, 0)
            clone_mask = _limit(high & ~big, room)
            duplicate(params, optimizers, self.state, clone_mask)
            n_cloned = int(clone_mask.sum())
            split_mask = torch.cat([_limit(high & big, room - n_cloned),
                                    torch.zeros(n_cloned, dtype=torch.bool, device=high.device)])
            split(params, optimizers, self.state, split_mask)
            prune = opacity_for_pruning() < cfg.prune_opacity
            if step > cfg.reset_opacity_every:
                prune |= torch.exp(params["scales"]).max(-1).values > 0.1 * self.scene_scale
            if prune.all():
                prune[0] = False  # never empty a set
            remove(params, optimizers, self.state, prune)
            done = {"cloned": int(clone_mask.sum()), "split": int(split_mask.sum()),
                    "pruned": int(prune.sum())}
            del self.state["grad2d"], self.state["count"]  # max_opacity is kept
        if self.reset_opacity and step > 0 and step % cfg.reset_opacity_every == 0 \
                and step < cfg.densify_until:
            reset_opa(params, optimizers, self.state, value=cfg.prune_opacity * 2.0)
            done["reset"] = 1
        return done


def _top_fraction(values: Tensor, fraction: float) -> Tensor:
    """Mask of the ``ceil(fraction * N)`` largest entries of ``values [N]``."""
    k = min(len(values), max(1, int(fraction * len(values) + 0.999)))
    mask = torch.zeros_like(values, dtype=torch.bool)
    mask[torch.topk(values, k).indices] = True
    return mask


def _limit(mask: Tensor, room: int) -> Tensor:
    """Keep at most ``room`` True entries of ``mask`` (the first ones)."""
    if int(mask.sum()) <= room:
        return mask
    keep = mask.clone()
    idx = torch.nonzero(mask)[:, 0]
    keep[idx[max(room, 0):]] = False
    return keep
