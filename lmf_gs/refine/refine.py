"""`lmf-gs refine`: test-time refinement with Layered Motion Fusion, then the layer masks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console

from lmf_gs.config import Config, save_config
from lmf_gs.data.scene import Scene
from lmf_gs.errors import DataError
from lmf_gs.eval.layered_eval import render_masks
from lmf_gs.eval.udos_metric import VideoResult, layered_prediction, score_video
from lmf_gs.fusion import fusion_terms
from lmf_gs.model.layered import NON_STATIC, LayeredGaussians
from lmf_gs.refine.frames import parse_frames, with_neighbors
from lmf_gs.runs import load_model, new_numbered_dir, resolve_device
from lmf_gs.train.losses import rgb_loss, sparsity_loss
from lmf_gs.train.trainer import Optimisation
from lmf_gs.train.views import Cameras

LR_FIELDS = ("lr_means", "lr_scales", "lr_quats", "lr_opacities", "lr_colors", "lr_betas",
             "lr_features", "lr_readout", "lr_networks")


@dataclass
class RefineResult:
    run_dir: Path
    metrics: VideoResult
    seconds: float
    seconds_per_frame: float
    frames: list[str]
    refined_frames: int


def refine_model(
    model: LayeredGaussians, scene: Scene, cams: Cameras, cfg: Config, frames: list[str],
    fusion: str, neighbors: int, run_dir: Path | None = None,
) -> float:
    """Optimise the non-static sets of ``model`` in place on T_N; returns the seconds taken.

    The static set is frozen: its tensors get no gradient and no optimiser.
    """
    rc = cfg.refine
    idx = with_neighbors(scene, frames, neighbors)
    iters = max(rc.min_iters, rc.iters_per_frame * len(idx))
    tcfg = cfg.train.model_copy(update={
        "iters": iters,
        **{k: getattr(cfg.train, k) * rc.lr_scale for k in LR_FIELDS},
        "densify_from": 0, "densify_until": iters if rc.densify else 0,
        "checkpoint_every": iters + 1, "warmup": 0,
    })
    for p in model.sets["static"].parameters():
        p.requires_grad_(False)
    terms = {"rgb": rgb_loss, **fusion_terms(fusion, cfg.fusion)}
    if rc.sparsity > 0:
        terms["sparsity"] = sparsity_loss(rc.sparsity)
    opt = Optimisation(model, scene, cams, cfg, terms, idx, layers=NON_STATIC,
                       densify=rc.densify, train_cfg=tcfg,
                       lr_scale={"semistatic": rc.semistatic_lr_scale})
    start = time.perf_counter()
    opt.run(iters, run_dir, description=f"refine ({fusion}, N={neighbors})")
    return time.perf_counter() - start


def save_masks(
    masks: Callable[[str], tuple[np.ndarray, np.ndarray]], frames: list[str], out: Path,
) -> dict[str, dict[str, np.ndarray]]:
    """Write each frame's soft (dynamic, semi-static) masks from ``masks(frame)``, at GT
    resolution, as PNG (x255) and .npy (float32); returns the official predictions."""
    out.mkdir(parents=True, exist_ok=True)
    preds = {}
    for f in frames:
        dyn, ss = masks(f)
        stem = f.rsplit(".", 1)[0]
        for name, m in (("dynamic", dyn), ("semistatic", ss)):
            np.save(out / f"{stem}_{name}.npy", m.astype(np.float32))
            Image.fromarray(np.round(np.clip(m, 0, 1) * 255).astype(np.uint8)).save(
                out / f"{stem}_{name}.png")
        preds[f] = layered_prediction(dyn, ss)
    return preds


def split_or_empty(scene: Scene, split: str) -> list[str]:
    """The UDOS split frames of the scene, or none when it has no annotations."""
    try:
        return scene.split_frames(split)
    except DataError:
        return []


def refine_run(
    vid: str, cfg: Config, train_dir: Path, frames_spec: str | None, fusion: str, neighbors: int,
    console: Console | None = None,
) -> RefineResult:
    """Load the trained run, refine on the chosen frames, save their masks and score those with
    UDOS annotations."""
    console = console or Console()
    device = resolve_device(cfg)
    model, trained_cfg, _ = load_model(train_dir, device)
    cfg = cfg.model_copy(update={"model": trained_cfg.model})
    scene = Scene(vid, cfg.data)
    cams = Cameras.of(scene, device)
    frames = parse_frames(frames_spec, scene, cfg.eval.split)
    run_dir = new_numbered_dir(train_dir / f"refine-{fusion}-n{neighbors}")
    save_config(cfg, run_dir / "config.yaml")
    console.print(f"{vid}: refining {len(frames)} frames (+{neighbors} neighbours each) "
                  f"-> {run_dir}")
    seconds = refine_model(model, scene, cams, cfg, frames, fusion, neighbors, run_dir)
    preds = save_masks(lambda f: render_masks(model, scene, cams, f, cfg.render.backend), frames,
                       run_dir / "masks")
    torch.save({"model": model.state_dict(), "config": cfg.model_dump(mode="json"),
                "frames": frames}, run_dir / "refined.pt")
    scored = [f for f in frames if f in set(split_or_empty(scene, cfg.eval.split))]
    metrics = score_video(vid, f"gs+tr-{fusion}", cfg.eval.split, scored,
                          lambda motion, frame: scene.gt(motion, frame), preds.__getitem__)
    summary = {"seconds": seconds, "seconds_per_frame": seconds / len(frames),
               "frames": len(frames), "frames_scored": len(scored),
               "refined_frames": len(with_neighbors(scene, frames, neighbors)),
               "fusion": fusion, "neighbors": neighbors}
    (run_dir / "metrics.json").write_text(json.dumps({**metrics.to_json(), **summary}, indent=1))
    return RefineResult(run_dir, metrics, seconds, seconds / len(frames), frames,
                        summary["refined_frames"])
