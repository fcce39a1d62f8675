"""The layered Gaussian backend (``gs``): `LayeredGaussians`, rasterised by gsplat on CUDA and
by the pure-PyTorch rasteriser elsewhere."""

from __future__ import annotations

from typing import Self

import torch
from torch import nn

from lmf_gs.backends.base import LayeredBackend
from lmf_gs.config import Config
from lmf_gs.core.batch import FrameRender
from lmf_gs.core.fusion import fusion_terms
from lmf_gs.core.layers import NON_STATIC
from lmf_gs.core.losses import LossTerm, rgb_loss
from lmf_gs.data.scene import Scene
from lmf_gs.model.layered import LayeredGaussians
from lmf_gs.train.losses import sparsity_loss
from lmf_gs.train.trainer import SCHEDULE, Optimisation
from lmf_gs.train.views import Cameras, scene_geometry

# TrainConfig learning rates that refine.lr_scale multiplies
LR_FIELDS = ("lr_means", "lr_scales", "lr_quats", "lr_opacities", "lr_colors", "lr_betas",
             "lr_features", "lr_readout", "lr_networks", "lr_appearance")


class GaussianBackend(LayeredBackend):
    name = "gs"
    label = "GS"
    config = "gs"
    model: LayeredGaussians

    def __init__(self, model: LayeredGaussians, scene: Scene, cfg: Config):
        super().__init__(model, scene, cfg)
        self.model = model.to(self.device)
        self.cams = Cameras.of(scene, self.device)

    @classmethod
    def initialise(cls, scene: Scene, cfg: Config, train_idx: list[int]) -> Self:
        seed = cfg.train.seed
        return cls(LayeredGaussians.initialise(cfg.model, scene_geometry(scene), seed), scene, cfg)

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], scene: Scene, cfg: Config) -> Self:
        return cls(LayeredGaussians.from_state_dict(cfg.model, state), scene, cfg)

    @classmethod
    def with_architecture(cls, cfg: Config, trained: Config) -> Config:
        return cfg.model_copy(update={"model": trained.model})

    @classmethod
    def budgeted(cls, cfg: Config, iters: int, max_seconds: float | None = None) -> Config:
        t = cfg.train
        ratio = iters / max(t.iters, 1)
        update: dict[str, object] = {  # iteration counts scale, fractions of the run do not
            k: max(1, round(v * ratio)) if isinstance(v, int) and v else v
            for k in SCHEDULE if (v := getattr(t, k)) is not None}
        update |= {"iters": iters, "epochs": None}
        if max_seconds is not None:
            update["max_seconds"] = max_seconds
        return cfg.model_copy(update={"train": t.model_copy(update=update)})

    def describe(self) -> dict[str, object]:
        return {"gaussians": self.model.num_gaussians()}

    def counts(self) -> dict[str, int]:
        return self.model.num_gaussians()

    def train_terms(self, fusion: str | None = None) -> dict[str, LossTerm]:
        """Colour loss (Eq. 4), NeuralDiff's sparsity on the non-static layer masks and the
        terms of ``fusion`` (default: ``train.fusion``)."""
        return {"rgb": rgb_loss, "sparsity": sparsity_loss(self.cfg.train.sparsity),
                **fusion_terms(fusion or self.cfg.train.fusion, self.cfg.fusion)}

    def training(self, frames: list[int]) -> Optimisation:
        return Optimisation(self.model, self.scene, self.cams, self.cfg, self.train_terms(),
                            frames)

    def refinement(self, frames: list[int], fusion: str) -> Optimisation:
        cfg, rc = self.cfg, self.cfg.refine
        iters = max(rc.min_iters, rc.iters_per_frame * len(frames))
        tcfg = cfg.train.model_copy(update={
            "iters": iters, "epochs": None,
            **{k: getattr(cfg.train, k) * rc.lr_scale for k in LR_FIELDS},
            "densify_from": 0, "densify_until": iters if rc.densify else 0,
            "checkpoint_every": rc.checkpoint_every, "warmup": 0,
            "max_seconds": rc.max_seconds,
        })
        terms = {"rgb": rgb_loss, **fusion_terms(fusion, cfg.fusion)}
        if rc.sparsity > 0:
            terms["sparsity"] = sparsity_loss(rc.sparsity)
        return Optimisation(self.model, self.scene, self.cams, cfg, terms, frames,
                            layers=NON_STATIC, densify=rc.densify, train_cfg=tcfg,
                            lr_scale={"semistatic": rc.semistatic_lr_scale})

    def finetuning(self, frames: list[int], fusion: str, iters: int) -> Optimisation:
        tcfg = self.cfg.train.model_copy(update={
            "iters": iters, "epochs": None, "warmup": 0, "densify_until": 0,
            "checkpoint_every": iters + 1})
        terms = self.train_terms(fusion)
        return Optimisation(self.model, self.scene, self.cams, self.cfg, terms, frames,
                            densify=False, train_cfg=tcfg)

    def static_parameters(self) -> list[nn.Parameter]:
        app = self.model.appearance
        return [*self.model.sets["static"].parameters(),
                *(app.parameters() if app is not None else ())]

    @torch.no_grad()
    def render(self, i: int) -> FrameRender:
        c = self.cams
        r = self.model.render(c.t[i:i + 1], c.w2c[i:i + 1], c.K[None], c.width, c.height,
                              self.cfg.render.backend)
        return FrameRender(rgb=r.rgb[0], masks=r.masks[0], depth=r.depth[0])
