"""The Gaussian backend's optimiser: training, test-time refinement and fusion fine-tuning."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from lmf_gs.config import Config, TrainConfig
from lmf_gs.core.fusion import isolated_masks
from lmf_gs.core.layers import LAYERS, NON_STATIC
from lmf_gs.core.loop import LoopSettings
from lmf_gs.core.losses import LossTerm, psnr, total_loss
from lmf_gs.data.prefetch import Prefetcher
from lmf_gs.data.scene import Scene
from lmf_gs.model.layered import LayeredGaussians
from lmf_gs.train.densify import SetDensifier
from lmf_gs.train.losses import GaussianRenderContext
from lmf_gs.train.views import Cameras, make_batch

SCHEDULE = ("warmup", "densify_from", "densify_until", "reset_opacity_every")

SET_LR = {  # param name -> TrainConfig attribute
    "means": "lr_means", "scales": "lr_scales", "quats": "lr_quats",
    "opacities": "lr_opacities", "sh0": "lr_colors", "shN": "lr_colors",
    "features": "lr_features", "betas": "lr_betas", "readout": "lr_readout",
}


def set_optimizers(
    params: nn.ParameterDict, cfg: TrainConfig, scene_scale: float, lr_scale: float = 1.0
) -> dict[str, torch.optim.Optimizer]:
    """One Adam per parameter tensor (the layout gsplat's strategy ops edit)."""
    opts = {}
    for name, p in params.items():
        lr = getattr(cfg, SET_LR[name]) * lr_scale
        if name == "means":
            lr *= scene_scale
        elif name == "shN":
            lr /= 20.0
        opts[name] = torch.optim.Adam([{"params": [p], "lr": lr, "name": name}], eps=1e-15)
    return opts


def resolved_schedule(cfg: TrainConfig, n_frames: int) -> TrainConfig:
    """``cfg`` in iterations: ``iters`` from ``epochs`` when set, schedule fractions of the run
    turned into iterations."""
    iters = cfg.iters if cfg.epochs is None else max(
        1, math.ceil(cfg.epochs * n_frames / cfg.batch_size))
    update: dict[str, object] = {"iters": iters, "epochs": None}
    for k in SCHEDULE:
        v = getattr(cfg, k)
        update[k] = round(v * iters) if isinstance(v, float) and 0 < v < 1 else int(v)
    return cfg.model_copy(update=update)


class FrameSampler:
    """Cycles through shuffled permutations of the training frames (resumable)."""

    def __init__(self, frames: list[int], seed: int,
                 on_epoch: Callable[[list[int]], None] | None = None):
        """``on_epoch(order)`` is told each new epoch's frames in the order they will come."""
        self.frames = list(frames)
        self.rng = np.random.default_rng(seed)
        self.order: list[int] = []
        self.on_epoch = on_epoch

    def next(self) -> int:
        if not self.order:
            self.order = [self.frames[i] for i in self.rng.permutation(len(self.frames))]
            if self.on_epoch is not None:
                self.on_epoch(self.order[::-1])
        return self.order.pop()

    def state(self) -> dict:
        return {"order": self.order, "rng": self.rng.bit_generator.state}

    def load(self, state: dict) -> None:
        self.order = list(state["order"])
        self.rng.bit_generator.state = state["rng"]


class Optimisation:
    """Optimises some sets (and their time/deformation networks) of a model on some frames.

    Training optimises everything; refinement passes ``layers=("semistatic", "dynamic")`` and
    the static set stays untouched (not even handed to an optimiser).
    """

    def __init__(
        self,
        model: LayeredGaussians,
        scene: Scene,
        cams: Cameras,
        cfg: Config,
        terms: dict[str, LossTerm],
        frames: list[int],
        layers: tuple[str, ...] = LAYERS,
        densify: bool = True,
        train_cfg: TrainConfig | None = None,
        lr_scale: dict[str, float] | None = None,
    ):
        """``lr_scale`` multiplies the learning rates of a set and its networks."""
        self.model, self.scene, self.cams, self.cfg = model, scene, cams, cfg
        self.lr_scale = {n: (lr_scale or {}).get(n, 1.0) for n in LAYERS}
        self.tcfg = resolved_schedule(train_cfg or cfg.train, len(frames))
        self.terms, self.layers, self.densify = terms, layers, densify
        self.scale = float(model.scene_scale)
        self.needs_motion = any(k in terms for k in ("pmf", "nmf"))
        self.prefetch = Prefetcher(scene, self.tcfg.workers, self.needs_motion) \
            if self.tcfg.workers > 0 else None
        self.sampler = FrameSampler(frames, self.tcfg.seed, self._upcoming)
        self.set_opts = {n: set_optimizers(model.sets[n], self.tcfg, self.scale,
                                           self.lr_scale[n]) for n in layers}
        nets = [{"params": [*model.time[n].parameters(), *model.deform[n].parameters()],
                 "layer": n, "lr": self._net_lr(n)}
                for n in layers if n in NON_STATIC]
        if model.appearance is not None and "static" in layers:
            nets.append({"params": list(model.appearance.parameters()), "layer": "static",
                         "lr": self._net_lr("static")})
        self.net_opt = torch.optim.Adam(nets) if nets else None
        self.densifiers = {
            n: SetDensifier(self.tcfg, self.scale, self.tcfg.max_gaussians[n],
                            reset_opacity=(n == "static"))
            for n in layers
        }
        self.iters = self.tcfg.iters
        self.settings = LoopSettings(self.tcfg.log_every, self.tcfg.checkpoint_every,
                                     self.tcfg.max_seconds)
        self.step = 0
        self.elapsed = 0.0  # seconds spent in the loop, over resumes

    def _upcoming(self, order: list[int]) -> None:
        if self.prefetch is not None:
            self.prefetch.schedule(order)

    # -- one iteration ------------------------------------------------------------------------

    def _schedule(self) -> None:
        frac = self.step / max(self.tcfg.iters, 1)
        for n in self.layers:
            for g in self.set_opts[n]["means"].param_groups:
                g["lr"] = self.tcfg.lr_means * self.scale * self.lr_scale[n] * 0.01**frac
        if self.net_opt is not None:
            for g in self.net_opt.param_groups:
                g["lr"] = self._net_lr(g["layer"]) * 0.1**frac

    def _net_lr(self, layer: str) -> float:
        """Initial learning rate of a layer's networks (the static layer's: its colour
        transform)."""
        lr = self.tcfg.lr_appearance if layer == "static" else self.tcfg.lr_networks
        return lr * self.lr_scale[layer]

    def _max_opacity(self, layer: str) -> Callable[[], torch.Tensor]:
        """Opacity used for pruning: the static base opacity; for the non-static sets the
        highest opacity each Gaussian had while visible in a training render (never seen:
        kept)."""

        def fn() -> torch.Tensor:
            p = self.model.sets[layer]
            if layer == "static":
                return torch.sigmoid(p["opacities"])
            seen = self.densifiers[layer].state.get("max_opacity")
            if seen is None or seen.shape[0] != p["opacities"].shape[0]:
                return torch.full_like(p["opacities"], torch.inf)
            return torch.where(seen < 0, torch.inf, seen)

        return fn

    def iteration(self) -> dict[str, Tensor]:
        """One optimisation step on ``batch_size`` sampled frames."""
        self._schedule()
        idx = [self.sampler.next() for _ in range(self.tcfg.batch_size)]
        batch = make_batch(self.scene, self.cams, idx, motion=self.needs_motion,
                           fetch=None if self.prefetch is None else self.prefetch.get)
        layers = self.tcfg.warmup_layers if self.step < self.tcfg.warmup else LAYERS
        # the fusion terms' isolated masks only for a batch with a 2D motion mask to fuse
        isolate = () if batch.motion is None else isolated_masks(self.terms, self.layers, layers)
        render = self.model.render(batch.t, batch.w2c, batch.K, self.cams.width,
                                   self.cams.height, self.cfg.render.backend, layers,
                                   isolate=isolate)
        ctx = GaussianRenderContext(model=self.model, batch=batch, render=render,
                                    backend=self.cfg.render.backend, trainable=self.layers,
                                    layers=layers)
        loss, logs = total_loss(self.terms, ctx)
        for opts in self.set_opts.values():
            for o in opts.values():
                o.zero_grad(set_to_none=True)
        if self.net_opt is not None:
            self.net_opt.zero_grad(set_to_none=True)
        loss.backward()
        for n in self.layers:
            sl = render.set_slice(n)
            if self.densify and render.means2d.grad is not None and n in layers:
                self.densifiers[n].accumulate(render.means2d.grad[:, sl], render.radii[:, sl],
                                              self.cams.width, self.cams.height,
                                              render.opacities[:, sl].detach())
            for o in self.set_opts[n].values():
                o.step()
        if self.net_opt is not None:
            self.net_opt.step()
        self.step += 1
        if self.densify:
            for n in self.layers:
                self.densifiers[n].step(self.step, self.model.sets[n], self.set_opts[n],
                                        self._max_opacity(n))
        logs["loss"] = loss.detach()
        logs["psnr"] = psnr(render.rgb.detach(), batch.image)
        return logs

    # -- checkpoints --------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "elapsed": self.elapsed,
            "model": self.model.state_dict(),
            "set_opts": {n: {k: o.state_dict() for k, o in opts.items()}
                         for n, opts in self.set_opts.items()},
            "net_opt": None if self.net_opt is None else self.net_opt.state_dict(),
            "densify": {n: d.state for n, d in self.densifiers.items()},
            "sampler": self.sampler.state(),
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore optimisers/schedules (the model must already hold ``state["model"]``)."""
        self.step = state["step"]
        self.elapsed = state.get("elapsed", 0.0)
        for n, opts in self.set_opts.items():
            for k, o in opts.items():
                o.load_state_dict(state["set_opts"][n][k])
        if self.net_opt is not None:
            self.net_opt.load_state_dict(state["net_opt"])
        for n, d in self.densifiers.items():
            d.state = state["densify"][n]
        self.sampler.load(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
