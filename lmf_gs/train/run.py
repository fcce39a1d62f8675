"""`lmf-gs train`: fit the layered Gaussians to a whole video; resumable."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from rich.console import Console

from lmf_gs.config import Config, save_config
from lmf_gs.data.scene import Scene
from lmf_gs.model.layered import LayeredGaussians
from lmf_gs.runs import load_checkpoint, resolve_device
from lmf_gs.train.losses import LossTerm, rgb_loss, sparsity_loss
from lmf_gs.train.trainer import Optimisation, heldout_psnr, save_checkpoint
from lmf_gs.train.views import Cameras, scene_geometry, train_holdout


def base_terms(cfg: Config) -> dict[str, LossTerm]:
    """Colour loss (Eq. 4) and NeuralDiff's sparsity on the non-static layers."""
    return {"rgb": rgb_loss, "sparsity": sparsity_loss(cfg.train.sparsity)}


def train_scene(
    vid: str, cfg: Config, run_dir: Path, resume: bool = False,
    extra_terms: dict[str, LossTerm] | None = None, console: Console | None = None,
) -> dict:
    """Train (or resume) a model of ``vid`` into ``run_dir``; returns the training summary."""
    console = console or Console()
    scene = Scene(vid, cfg.data)
    device = resolve_device(cfg)
    cams = Cameras.of(scene, device)
    train_idx, held = train_holdout(scene, cfg.train.holdout_every)
    if resume:
        ckpt = load_checkpoint(run_dir)
        model = LayeredGaussians.from_state_dict(cfg.model, ckpt["model"]).to(device)
    else:
        torch.manual_seed(cfg.train.seed)  # what the loop draws from torch (resumes restore it)
        model = LayeredGaussians.initialise(cfg.model, scene_geometry(scene), cfg.train.seed)
        model = model.to(device)
    terms = {**base_terms(cfg), **(extra_terms or {})}
    opt = Optimisation(model, scene, cams, cfg, terms, train_idx)
    if resume:
        opt.load_state_dict(ckpt)
        console.print(f"resuming {run_dir} at step {opt.step}")
    save_config(cfg, run_dir / "config.yaml")
    console.print(
        f"{vid}: {len(train_idx)} training / {len(held)} held-out frames at "
        f"{scene.width}x{scene.height}, device {device}, gaussians {model.num_gaussians()}"
    )
    meta = {"vid": vid, "train_frames": [scene.frames[i] for i in train_idx],
            "heldout_frames": [scene.frames[i] for i in held], "loss_terms": sorted(terms)}
    opt.run(cfg.train.iters, run_dir, save=lambda st: save_checkpoint(run_dir, st, cfg, meta))
    summary = {
        "scene": vid,
        "iters": cfg.train.iters,
        "seconds": opt.elapsed,  # the training loop, summed over resumes
        "gaussians": model.num_gaussians(),
        "psnr_heldout": heldout_psnr(model, scene, cams, held, cfg.render.backend),
        "heldout_frames": len(held),
        "loss_terms": sorted(terms),
    }
    (run_dir / "train_summary.json").write_text(json.dumps(summary, indent=1))
    return summary
