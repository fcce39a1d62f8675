"""The NeuralDiff reference backend (``nerf``): the published NeRF architecture under the same
losses, fusion and TR as the Gaussians."""

from __future__ import annotations

from typing import Self

import torch
from torch import nn

from lmf_gs.backends.base import LayeredBackend
from lmf_gs.config import Config
from lmf_gs.core.batch import FrameRender
from lmf_gs.core.fusion import fusion_terms
from lmf_gs.core.layers import LAYERS, NON_STATIC
from lmf_gs.core.losses import LossTerm, rgb_loss
from lmf_gs.data.scene import Scene
from lmf_gs.nerf.losses import density_sparsity, nerf_base_terms
from lmf_gs.nerf.model import ARCHITECTURE, NeuralDiff
from lmf_gs.nerf.optim import NerfOptimisation, nerf_iterations
from lmf_gs.nerf.rays import RayCameras
from lmf_gs.nerf.render import render_frame


class NerfBackend(LayeredBackend):
    name = "nerf"
    label = "NeRF"
    config = "nerf"
    model: NeuralDiff

    def __init__(self, model: NeuralDiff, scene: Scene, cfg: Config):
        super().__init__(model, scene, cfg)
        self.model = model.to(self.device)
        self.cams = RayCameras.of(scene, *model.normalisation(), self.device)

    @classmethod
    def initialise(cls, scene: Scene, cfg: Config, train_idx: list[int]) -> Self:
        return cls(NeuralDiff.initialise(cfg.nerf, scene, train_idx), scene, cfg)

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], scene: Scene, cfg: Config) -> Self:
        return cls(NeuralDiff.from_state_dict(cfg.nerf, state), scene, cfg)

    @classmethod
    def with_architecture(cls, cfg: Config, trained: Config) -> Config:
        update = {k: getattr(trained.nerf, k) for k in ARCHITECTURE}
        return cfg.model_copy(update={"nerf": cfg.nerf.model_copy(update=update)})

    @classmethod
    def budgeted(cls, cfg: Config, iters: int, max_seconds: float | None = None) -> Config:
        update: dict[str, object] = {"iters": iters, "epochs": None}
        if max_seconds is not None:
            update["max_seconds"] = max_seconds
        return cfg.model_copy(update={"nerf": cfg.nerf.model_copy(update=update)})

    def _optimisation(self, terms: dict[str, LossTerm], frames: list[int], iters: int,
                      lr: float, layers: tuple[str, ...] = LAYERS,
                      max_seconds: float | None = None) -> NerfOptimisation:
        return NerfOptimisation(self.model, self.scene, self.cams, self.cfg, terms, frames,
                                iters, lr, layers, max_seconds)

    def training(self, frames: list[int]) -> NerfOptimisation:
        ncfg = self.cfg.nerf
        iters = nerf_iterations(ncfg, len(frames), self.scene.width * self.scene.height)
        return self._optimisation(nerf_base_terms(self.cfg), frames, iters, ncfg.lr,
                                  max_seconds=ncfg.max_seconds)

    def refinement(self, frames: list[int], fusion: str) -> NerfOptimisation:
        rc = self.cfg.refine
        iters = max(rc.min_iters, rc.iters_per_frame * len(frames))
        terms = {"rgb": rgb_loss, **fusion_terms(fusion, self.cfg.fusion)}
        if rc.sparsity > 0:
            terms["sparsity"] = density_sparsity(rc.sparsity)
        return self._optimisation(terms, frames, iters, self.cfg.nerf.lr * rc.lr_scale,
                                  NON_STATIC, rc.max_seconds)

    def finetuning(self, frames: list[int], fusion: str, iters: int) -> NerfOptimisation:
        terms = {**nerf_base_terms(self.cfg), **fusion_terms(fusion, self.cfg.fusion)}
        return self._optimisation(terms, frames, iters, self.cfg.nerf.lr)

    def static_parameters(self) -> list[nn.Parameter]:
        return self.model.layer_parameters(("static",))

    def render(self, i: int) -> FrameRender:
        r = render_frame(self.model, self.cams, i, self.cfg.nerf)
        return FrameRender(rgb=r.rgb, masks=r.masks, depth=r.depth)
