"""Scoring a trained NeuralDiff run: whole-frame renders, layer masks on the GT grid, PSNR."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from lmf_gs.config import Config, NerfConfig
from lmf_gs.data.paths import ScenePaths
from lmf_gs.data.scene import Scene
from lmf_gs.eval.udos_metric import Predictor, layered_prediction
from lmf_gs.nerf.model import ARCHITECTURE, NeuralDiff
from lmf_gs.nerf.rays import RayCameras
from lmf_gs.nerf.render import render_frame
from lmf_gs.runs import load_checkpoint, resolve_device
from lmf_gs.train.losses import psnr


def load_nerf(run_dir: Path, cfg: Config) -> tuple[NeuralDiff, Config, dict]:
    """The trained model of a NeRF run on ``cfg``'s device, ``cfg`` with the run's architecture
    (`ARCHITECTURE` fields of ``nerf``; the model's own ``cfg``), and the checkpoint."""
    ckpt = load_checkpoint(run_dir)
    trained = Config.model_validate(ckpt["config"]).nerf
    ncfg = cfg.nerf.model_copy(update={k: getattr(trained, k) for k in ARCHITECTURE})
    model = NeuralDiff.from_state_dict(ncfg, ckpt["model"]).to(resolve_device(cfg))
    model.eval()
    return model, cfg.model_copy(update={"nerf": ncfg}), ckpt


def cameras(scene: Scene, model: NeuralDiff) -> RayCameras:
    """The scene's cameras in the model's units, on the model's device."""
    return RayCameras.of(scene, *model.normalisation(), model.scale.device)


def heldout_psnr(model: NeuralDiff, scene: Scene, cams: RayCameras, frames: list[int],
                 cfg: NerfConfig) -> float:
    """Mean PSNR of whole-frame renders over ``frames`` (NaN without any)."""
    values = [psnr(render_frame(model, cams, i, cfg).rgb,
                   torch.as_tensor(scene.image(i), device=cams.K.device)) for i in frames]
    return float(np.mean(values)) if values else math.nan


def render_masks(model: NeuralDiff, scene: Scene, cams: RayCameras, frame: str,
                 cfg: NerfConfig) -> tuple[np.ndarray, np.ndarray]:
    """Soft (dynamic, semi-static) masks of ``frame`` on the original GT grid ``[H, W]`` each."""
    masks = render_frame(model, cams, scene.index(frame), cfg).masks.float().cpu().numpy()
    return scene.to_gt_grid(masks[..., 2]), scene.to_gt_grid(masks[..., 1])


def model_predictor(model: NeuralDiff, scene: Scene, cams: RayCameras,
                    cfg: NerfConfig) -> Predictor:
    """Official mapping: dynamic <- dynamic layer; (dynamic_)semistatic <- semi-static + dynamic."""

    def predict(frame: str) -> dict[str, np.ndarray]:
        return layered_prediction(*render_masks(model, scene, cams, frame, cfg))

    return predict


def nerf_predictor(
    run_dir: Path, vid: str, cfg: Config
) -> tuple[Callable[[ScenePaths], Predictor], dict]:
    """``evaluate --method nerf``: predictor of a NeRF run's layer masks, and its held-out PSNR
    for metrics.json (the counterpart of `lmf_gs.eval.evaluate.trained_predictor`)."""
    model, cfg, ckpt = load_nerf(run_dir, cfg)
    scene = Scene(vid, cfg.data)
    cams = cameras(scene, model)
    held = [scene.index(f) for f in ckpt.get("heldout_frames", [])]
    value = heldout_psnr(model, scene, cams, held, cfg.nerf)
    extra = {"psnr_heldout": None if math.isnan(value) else value, "heldout_frames": len(held),
             "checkpoint_step": ckpt["step"]}
    return (lambda paths: model_predictor(model, scene, cams, cfg.nerf)), extra
