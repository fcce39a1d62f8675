"""The interface every layered model implements: one trained (or fresh) model of one video.

A backend builds its model from a scene or from a saved state, hands out optimisers for training,
test-time refinement and fusion fine-tuning (each driven by `lmf_gs.core.loop.run_loop`), and
renders whole frames. Everything else (run folders, frame selection, fusion losses, scoring,
tables) is shared and lives in `lmf_gs.core` and `lmf_gs.experiments`.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, Self

import torch
from torch import nn

from lmf_gs.config import Config
from lmf_gs.core.batch import FrameRender
from lmf_gs.core.loop import Steps
from lmf_gs.core.runs import load_checkpoint, resolve_device
from lmf_gs.data.scene import Scene


class LayeredBackend(ABC):
    """A layered model of ``scene`` under ``cfg`` on ``cfg``'s device."""

    name: ClassVar[str]  # registry key, run folder (OUT/VID/{name}) and --backend value
    label: ClassVar[str]  # row label in tables, e.g. "GS"
    config: ClassVar[str]  # paper-scale config name; "{config}_cpu" without CUDA

    def __init__(self, model: nn.Module, scene: Scene, cfg: Config):
        self.model, self.scene, self.cfg = model, scene, cfg
        self.device = resolve_device(cfg)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    @abstractmethod
    def initialise(cls, scene: Scene, cfg: Config, train_idx: list[int]) -> Self:
        """A fresh model of ``scene`` (deterministic per ``cfg.train.seed``)."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict[str, torch.Tensor], scene: Scene, cfg: Config) -> Self:
        """The model saved as ``state`` (its `state_dict`); ``cfg`` must hold its architecture."""

    @classmethod
    @abstractmethod
    def with_architecture(cls, cfg: Config, trained: Config) -> Config:
        """``cfg`` with the fields that shape the model taken from the run's ``trained``."""

    @classmethod
    def load(cls, path: Path, scene: Scene, cfg: Config) -> tuple[Self, dict]:
        """The model of a run folder (its ``ckpt.pt``) or of a saved model file (``refined.pt``),
        in eval mode, and the raw checkpoint."""
        ckpt = load_checkpoint(path)
        cfg = cls.with_architecture(cfg, Config.model_validate(ckpt["config"]))
        backend = cls.from_state(ckpt["model"], scene, cfg)
        backend.model.eval()
        return backend, ckpt

    @classmethod
    @abstractmethod
    def budgeted(cls, cfg: Config, iters: int, max_seconds: float | None = None) -> Config:
        """``cfg`` training for ``iters`` iterations (schedules scaled alike) and, when given,
        stopping at ``max_seconds`` of training in any case."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def copy(self) -> Self:
        """An independent copy (the ablation's variants start from one base model)."""
        return type(self)(copy.deepcopy(self.model), self.scene, self.cfg)

    def describe(self) -> dict[str, object]:
        """Sizes for summaries and logs, e.g. ``{"gaussians": {...}}``."""
        return {"parameters": sum(p.numel() for p in self.model.parameters())}

    # -- optimisation ---------------------------------------------------------------------------

    @abstractmethod
    def training(self, frames: list[int]) -> Steps:
        """Training of every layer on the frames at positions ``frames`` (``cfg.train``)."""

    @abstractmethod
    def refinement(self, frames: list[int], fusion: str) -> Steps:
        """Test-time refinement of the non-static layers on ``frames`` (``cfg.refine``): the
        rgb loss plus the ``fusion`` terms (paper Eq. 13); the static layer gets no optimiser."""

    @abstractmethod
    def finetuning(self, frames: list[int], fusion: str, iters: int) -> Steps:
        """Fusion without TR: every layer, the training loss plus the ``fusion`` terms."""

    @abstractmethod
    def static_parameters(self) -> list[nn.Parameter]:
        """What TR keeps frozen."""

    @contextmanager
    def frozen_static(self) -> Iterator[None]:
        """No gradient to the static layer inside the block (restored after)."""
        params = self.static_parameters()
        before = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p, flag in zip(params, before, strict=True):
                p.requires_grad_(flag)

    def counts(self) -> dict[str, int] | None:
        """Per-layer sizes to log during optimisation (None: nothing to log)."""
        return None

    # -- reading ---------------------------------------------------------------------------------

    @abstractmethod
    def render(self, i: int) -> FrameRender:
        """Registered frame ``i`` (a position in the scene) at the working resolution, without
        gradients."""
