"""Everything the viewer takes from the rest of lmf-gs (the one module to follow refactors):
loading a run's trained/refined models and its scene, rendering the layers, the inset images."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lmf_gs.backends.gaussian import GaussianBackend
from lmf_gs.config import Config
from lmf_gs.core.runs import resolve_device
from lmf_gs.data.scene import Scene
from lmf_gs.errors import DataError, LmfError
from lmf_gs.export.panels import _gt_tile as gt_tile
from lmf_gs.export.pointclouds import LAYER_COLORS
from lmf_gs.export.source import REFINED, load_source
from lmf_gs.model.layered import LayeredGaussians
from lmf_gs.render import rasterize
from lmf_gs.viewer.state import INSETS, Recording

__all__ = ["LAYER_COLORS", "LayerImages", "LayeredGaussians", "ViewerSource", "open_run",
           "render_layers", "scene_scale"]

TRAINED = "trained"


@dataclass
class LayerImages:
    """One rendered view (float32 numpy)."""

    rgb: np.ndarray  # [H, W, 3] composited over black
    masks: np.ndarray  # [H, W, 3] soft layer masks (static, semistatic, dynamic)
    depth: np.ndarray  # [H, W] expected camera z
    alpha: np.ndarray  # [H, W] accumulated opacity


@torch.no_grad()
def render_layers(
    model: LayeredGaussians, t: float, w2c: np.ndarray, anchor_c2w: np.ndarray, K: np.ndarray,
    width: int, height: int, layers: tuple[str, ...], backend: str,
) -> LayerImages:
    """Render ``layers`` of ``model`` at time ``t`` from ``w2c [4, 4]`` with ``K [3, 3]``.

    The dynamic set lives in the camera frame of the frame it belongs to: it is placed in the
    world with ``anchor_c2w [4, 4]`` (the recorded camera of the slider's frame), so it stays put
    while the viewer's camera moves. With ``anchor_c2w = inv(w2c)`` this is `model.render`.
    """
    if not layers:
        return LayerImages(np.zeros((height, width, 3), np.float32),
                           np.zeros((height, width, 3), np.float32),
                           np.zeros((height, width), np.float32),
                           np.zeros((height, width), np.float32))
    dev = model.scene_scale.device
    f32 = {"dtype": torch.float32, "device": dev}
    view = torch.as_tensor(w2c, **f32)[None]
    tt = torch.tensor([t], **f32)
    world = tuple(n for n in layers if n != "dynamic")
    parts = [model.gaussians(tt, torch.linalg.inv(view), world)[0]] if world else []
    if "dynamic" in layers:
        parts.append(model.gaussians(tt, torch.as_tensor(anchor_c2w, **f32)[None],
                                     ("dynamic",))[0])
    g = {k: torch.cat([p[k] for p in parts], dim=1) for k in parts[0]}
    out = rasterize(g["means"], g["quats"], g["scales"], g["opacities"], g["colors"], view,
                    torch.as_tensor(K, **f32)[None], width, height, backend=backend)
    feats = out.colors[0].float().cpu().numpy()
    return LayerImages(feats[..., :3], feats[..., 3:6], out.depths[0, ..., 0].float().cpu().numpy(),
                       out.alphas[0, ..., 0].float().cpu().numpy())


def scene_scale(model: LayeredGaussians) -> float:
    """The scene's median depth, the model's length unit."""
    return float(model.scene_scale)


@dataclass
class ViewerSource:
    """The recorded frames, the selectable model states (loaded on first use) and the frame
    images of one run."""

    recording: Recording
    runs: dict[str, Path | None]  # state label -> refinement run folder (None: trained model)
    backend: str
    load: Callable[[Path | None], LayeredGaussians] = field(repr=False)
    scene: Scene | None = None
    device: str = "cpu"
    _models: dict[str, LayeredGaussians] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.runs)

    def model(self, label: str) -> LayeredGaussians:
        """The model of a state (``trained`` or a refinement run's folder name)."""
        with self._lock:
            if label not in self._models:
                self._models[label] = self.load(self.runs[label])
            return self._models[label]

    def inset(self, frame: int, kind: str) -> np.ndarray | None:
        """The input frame, 2D motion mask or GT (red dynamic, blue semi-static, grey ignored)
        of a frame as float ``[h, w, 3]`` in [0, 1], or None where the run has none."""
        if kind not in INSETS:
            raise ValueError(f"unknown inset {kind!r}")
        if self.scene is None:
            return None
        name = self.scene.frames[frame]
        try:
            if kind == INSETS[0]:
                return self.scene.image(frame)
            if kind == INSETS[1]:
                m = self.scene.motion_mask(frame)
                return None if m is None else np.repeat(np.clip(m, 0.0, 1.0)[..., None], 3, -1)
            return gt_tile(self.scene, name)
        except DataError:
            return None


def refinement_runs(train_dir: Path) -> list[Path]:
    """The refinement runs of a trained run that hold a refined model, by name."""
    return sorted(d for d in train_dir.glob("refine-*") if (d / REFINED).is_file())


def open_run(
    train_dir: Path, cfg: Config, vid: str, refined: Path | None = None
) -> tuple[ViewerSource, str]:
    """The viewer source of a trained run (its trained model and every refinement run) and the
    state to show first (``refined`` when given, which must hold a refined model)."""
    scene = Scene(vid, cfg.data)

    def load(run: Path | None) -> LayeredGaussians:
        return load_source(GaussianBackend, train_dir, run, scene, cfg).backend.model

    runs: dict[str, Path | None] = {TRAINED: None}
    runs.update({d.name: d for d in refinement_runs(train_dir)})
    first = TRAINED
    if refined is not None:
        chosen = refined if refined.is_dir() or refined.is_absolute() else train_dir / refined
        if not (chosen / REFINED).is_file():
            raise LmfError(f"{chosen / REFINED}: no refined model; run `lmf-gs refine` first")
        first = chosen.name
        known = runs.get(first)
        if known is not None and known.resolve() != chosen.resolve():
            first = str(chosen)  # same folder name as one of this run's refinements
        runs[first] = chosen
    rec = Recording(tuple(scene.frames), scene.times, scene.w2c.astype(np.float64),
                    scene.intrinsics.K.astype(np.float64), scene.width, scene.height)
    src = ViewerSource(rec, runs, cfg.render.backend, load, scene, str(resolve_device(cfg)))
    src.model(first)  # fail now, with one line, on a missing or unreadable model
    return src, first
