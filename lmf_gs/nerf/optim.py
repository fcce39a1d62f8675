"""The NeuralDiff backend's optimiser on random ray batches (training, TR, fine-tuning)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from lmf_gs.config import Config, NerfConfig
from lmf_gs.core.batch import Batch
from lmf_gs.core.layers import LAYERS
from lmf_gs.core.loop import LoopSettings
from lmf_gs.core.losses import LossTerm, psnr, total_loss
from lmf_gs.data.scene import Scene
from lmf_gs.nerf.losses import NerfRender, NerfRenderContext
from lmf_gs.nerf.model import NeuralDiff
from lmf_gs.nerf.rays import RayCameras, Rays
from lmf_gs.nerf.render import render_rays


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
        self, model: NeuralDiff, scene: Scene, cams: RayCameras, cfg: Config,
        terms: dict[str, LossTerm], frames: list[int], iters: int, lr: float,
        layers: tuple[str, ...] = LAYERS, max_seconds: float | None = None,
    ):
        self.model, self.cfg, self.ncfg, self.terms = model, cfg, model.cfg, terms
        self.iters, self.lr, self.layers = iters, lr, layers
        self.settings = LoopSettings(self.ncfg.log_every, self.ncfg.checkpoint_every, max_seconds)
        self.cams = cams
        needs_motion = any(k in terms for k in ("pmf", "nmf"))
        self.pixels = PixelData(scene, frames, needs_motion, self.cams.K.device)
        self.opt = torch.optim.Adam(model.layer_parameters(layers), lr=lr, eps=1e-8)
        self.step = 0
        self.elapsed = 0.0  # seconds spent in the loop, over resumes

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

    def iteration(self) -> dict[str, Tensor]:
        """One optimisation step on one ray batch."""
        for g in self.opt.param_groups:
            g["lr"] = 0.5 * self.lr * (1.0 + math.cos(math.pi * self.step / max(self.iters, 1)))
        batch, rays = self.batch()
        render = NerfRender.of(render_rays(self.model, rays, self.ncfg, train=True))
        ctx = NerfRenderContext(model=self.model, batch=batch, render=render,
                                trainable=self.layers)
        loss, logs = total_loss(self.terms, ctx)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        logs["loss"] = loss.detach()
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
