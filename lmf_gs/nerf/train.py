"""Training of the NeuralDiff backend on random ray batches; resumable, time-budgeted."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from torch import Tensor

from lmf_gs.config import Config, NerfConfig, save_config
from lmf_gs.data.scene import Scene
from lmf_gs.model.layered import LAYERS
from lmf_gs.nerf.evaluate import cameras, heldout_psnr
from lmf_gs.nerf.losses import NerfRender, NerfRenderContext, nerf_base_terms
from lmf_gs.nerf.model import NeuralDiff
from lmf_gs.nerf.rays import Rays
from lmf_gs.nerf.render import render_rays
from lmf_gs.runs import load_checkpoint, resolve_device
from lmf_gs.train.loop import LoopSettings, run_loop
from lmf_gs.train.losses import Batch, LossTerm, psnr, total_loss
from lmf_gs.train.trainer import save_checkpoint
from lmf_gs.train.views import train_holdout


def nerf_iterations(cfg: NerfConfig, n_frames: int, pixels_per_frame: int) -> int:
    """``cfg.iters``, or ``epochs`` passes over the training rays when ``cfg.epochs`` is set."""
    if cfg.epochs is None:
        return cfg.iters
    return max(1, math.ceil(cfg.epochs * n_frames * pixels_per_frame / cfg.batch_rays))


class PixelData:
    """Pixels (and 2D motion masks) of some frames in memory, to draw random rays from."""

    def __init__(self, scene: Scene, frames: list[int], motion: bool, device: torch.device):
        self.frames = torch.as_tensor(frames, device=device)
        self.h, self.w = scene.height, scene.width
        self.images = torch.as_tensor(np.stack([scene.image(i) for i in frames]),
                                      dtype=torch.float16, device=device)  # [F, H, W, 3]
        self.motion = self.has_motion = None
        if motion:
            masks = [scene.motion_mask(i) for i in frames]
            self.has_motion = torch.tensor([m is not None for m in masks], device=device)
            zeros = np.zeros((self.h, self.w), np.float32)
            self.motion = torch.as_tensor(np.stack([zeros if m is None else m for m in masks]),
                                          dtype=torch.float16, device=device)  # [F, H, W]

    def sample(self, n: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``n`` pixels uniformly over all frames: (row in `frames`, scene frame, x, y) ``[n]``."""
        flat = torch.randint(0, len(self.frames) * self.h * self.w, (n,),
                             device=self.frames.device)
        f, rest = flat // (self.h * self.w), flat % (self.h * self.w)
        return f, self.frames[f], rest % self.w, rest // self.w



class NerfOptimisation:
    """Adam with cosine annealing on ray batches drawn from ``frames``. Training optimises every
    layer; TR passes ``layers=NON_STATIC`` and only those heads and time latents get an
    optimiser (the static MLPs, trunk and appearance must be frozen by the caller)."""

    def __init__(
        self, model: NeuralDiff, scene: Scene, cfg: Config, terms: dict[str, LossTerm],
        frames: list[int], iters: int, lr: float, layers: tuple[str, ...] = LAYERS,
    ):
        self.model, self.cfg, self.ncfg, self.terms = model, cfg, model.cfg, terms
        self.iters, self.lr, self.layers = iters, lr, layers
        self.cams = cameras(scene, model)
        needs_motion = any(k in terms for k in ("pmf", "nmf"))
        self.pixels = PixelData(scene, frames, needs_motion, self.cams.K.device)
        self.opt = torch.optim.Adam(model.layer_parameters(layers), lr=lr, eps=1e-8)
        self.step = 0
        self.elapsed = 0.0  # seconds spent in `run`, over resumes

    def batch(self) -> tuple[Batch, Rays]:
        """A random batch of ``batch_rays`` training rays as one-pixel cameras."""
        px = self.pixels
        row, frame, x, y = px.sample(self.ncfg.batch_rays)
        cams = self.cams
        batch = Batch(index=frame, t=cams.t[frame], w2c=cams.w2c[frame],
                      K=cams.K.expand(len(frame), 3, 3),
                      image=px.images[row, y, x].float()[:, None, None])
        if px.motion is not None:
            batch.motion = px.motion[row, y, x].float()[:, None, None]
            batch.has_motion = px.has_motion[row]
        return batch, cams.rays(frame, x.float(), y.float())

    def iteration(self) -> dict[str, float]:
        """One optimisation step on one ray batch."""
        for g in self.opt.param_groups:
            g["lr"] = 0.5 * self.lr * (1.0 + math.cos(math.pi * self.step / max(self.iters, 1)))
        batch, rays = self.batch()
        render = NerfRender.of(render_rays(self.model, rays, self.ncfg, train=True))
        ctx = NerfRenderContext(self.model, batch, render, "nerf", self.layers)
        loss, logs = total_loss(self.terms, ctx)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        logs["loss"] = float(loss.detach())
        logs["psnr"] = psnr(render.rgb.detach(), batch.image)
        return logs

    def state_dict(self) -> dict:
        return {"step": self.step, "elapsed": self.elapsed, "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(), "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict) -> None:
        """Restore the optimiser and step (the model must already hold ``state["model"]``)."""
        self.step = state["step"]
        self.elapsed = state.get("elapsed", 0.0)
        self.opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])

    def run(
        self, run_dir: Path | None, save: Callable[[dict], None] | None = None,
        description: str = "train nerf", max_seconds: float | None = None,
    ) -> list[dict]:
        """Iterate up to ``iters`` (or ``max_seconds``, see `run_loop`)."""
        settings = LoopSettings(self.ncfg.log_every, self.ncfg.checkpoint_every, max_seconds)
        return run_loop(self, self.iters, settings, run_dir, save, description)


def train_nerf(
    vid: str, cfg: Config, run_dir: Path, resume: bool = False,
    extra_terms: dict[str, LossTerm] | None = None, console: Console | None = None,
) -> dict:
    """Train (or resume) NeuralDiff on ``vid`` into ``run_dir`` (counterpart of
    `lmf_gs.train.run.train_scene`); returns the training summary."""
    console = console or Console()
    scene = Scene(vid, cfg.data)
    device = resolve_device(cfg)
    train_idx, held = train_holdout(scene, cfg.train.holdout_every)
    if resume:
        ckpt = load_checkpoint(run_dir)
        model = NeuralDiff.from_state_dict(cfg.nerf, ckpt["model"]).to(device)
    else:
        torch.manual_seed(cfg.train.seed)
        model = NeuralDiff.initialise(cfg.nerf, scene, train_idx).to(device)
    iters = nerf_iterations(cfg.nerf, len(train_idx), scene.width * scene.height)
    terms = {**nerf_base_terms(cfg), **(extra_terms or {})}
    opt = NerfOptimisation(model, scene, cfg, terms, train_idx, iters, cfg.nerf.lr)
    if resume:
        opt.load_state_dict(ckpt)
        console.print(f"resuming {run_dir} at step {opt.step}")
    save_config(cfg, run_dir / "config.yaml")
    n_params = sum(p.numel() for p in model.parameters())
    console.print(
        f"{vid}: NeuralDiff, {len(train_idx)} training / {len(held)} held-out frames at "
        f"{scene.width}x{scene.height}, device {device}, {n_params} parameters, {iters} iters of "
        f"{cfg.nerf.batch_rays} rays"
    )
    meta = {"vid": vid, "train_frames": [scene.frames[i] for i in train_idx],
            "heldout_frames": [scene.frames[i] for i in held], "loss_terms": sorted(terms)}
    opt.run(run_dir, save=lambda st: save_checkpoint(run_dir, st, cfg, meta),
            max_seconds=cfg.nerf.max_seconds)
    summary = {
        "scene": vid,
        "backend": "nerf",
        "iters": iters,
        "steps": opt.step,
        "seconds": opt.elapsed,  # the training loop, summed over resumes
        "parameters": n_params,
        "psnr_heldout": heldout_psnr(model, scene, opt.cams, held, cfg.nerf),
        "heldout_frames": len(held),
        "loss_terms": sorted(terms),
    }
    (run_dir / "train_summary.json").write_text(json.dumps(summary, indent=1))
    return summary
