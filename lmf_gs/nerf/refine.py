"""Test-time refinement (TR) of a NeuralDiff run with Layered Motion Fusion, then its masks."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from rich.console import Console

from lmf_gs.config import Config, save_config
from lmf_gs.data.scene import Scene
from lmf_gs.eval.udos_metric import score_video
from lmf_gs.fusion import fusion_terms
from lmf_gs.model.layered import NON_STATIC
from lmf_gs.nerf.evaluate import cameras, load_nerf, render_masks
from lmf_gs.nerf.losses import density_sparsity
from lmf_gs.nerf.model import NeuralDiff
from lmf_gs.nerf.train import NerfOptimisation
from lmf_gs.refine.frames import parse_frames, with_neighbors
from lmf_gs.refine.refine import RefineResult, save_masks, split_or_empty
from lmf_gs.runs import new_numbered_dir
from lmf_gs.train.losses import rgb_loss


def refine_nerf_model(
    model: NeuralDiff, scene: Scene, cfg: Config, frames: list[str], fusion: str,
    neighbors: int, run_dir: Path | None = None,
) -> float:
    """Optimise the semi-static and dynamic heads and their time latents in place on T_N (paper
    Eq. 13); returns the seconds taken. The static MLPs, the shared trunk and the appearance
    embeddings are frozen (no gradient, no optimiser)."""
    rc = cfg.refine
    idx = with_neighbors(scene, frames, neighbors)
    iters = max(rc.min_iters, rc.iters_per_frame * len(idx))
    for p in model.layer_parameters(("static",)):
        p.requires_grad_(False)
    terms = {"rgb": rgb_loss, **fusion_terms(fusion, cfg.fusion)}
    if rc.sparsity > 0:
        terms["sparsity"] = density_sparsity(rc.sparsity)
    opt = NerfOptimisation(model, scene, cfg, terms, idx, iters, cfg.nerf.lr * rc.lr_scale,
                           layers=NON_STATIC)
    start = time.perf_counter()
    opt.run(run_dir, description=f"refine nerf ({fusion}, N={neighbors})")
    return time.perf_counter() - start


def refine_nerf(
    vid: str, cfg: Config, train_dir: Path, frames_spec: str | None, fusion: str, neighbors: int,
    console: Console | None = None,
) -> RefineResult:
    """Counterpart of `lmf_gs.refine.refine.refine_run` for a NeRF run: refine on the chosen
    frames, save their masks to ``train_dir/refine-FUSION-nN[-k]/`` and score those with UDOS
    annotations."""
    console = console or Console()
    model, cfg, _ = load_nerf(train_dir, cfg)
    scene = Scene(vid, cfg.data)
    frames = parse_frames(frames_spec, scene, cfg.eval.split)
    run_dir = new_numbered_dir(train_dir / f"refine-{fusion}-n{neighbors}")
    save_config(cfg, run_dir / "config.yaml")
    console.print(f"{vid}: refining NeuralDiff on {len(frames)} frames (+{neighbors} neighbours "
                  f"each) -> {run_dir}")
    seconds = refine_nerf_model(model, scene, cfg, frames, fusion, neighbors, run_dir)
    cams = cameras(scene, model)
    preds = save_masks(lambda f: render_masks(model, scene, cams, f, cfg.nerf), frames,
                       run_dir / "masks")
    torch.save({"model": model.state_dict(), "config": cfg.model_dump(mode="json"),
                "frames": frames}, run_dir / "refined.pt")
    scored = [f for f in frames if f in set(split_or_empty(scene, cfg.eval.split))]
    metrics = score_video(vid, f"nerf+tr-{fusion}", cfg.eval.split, scored,
                          lambda motion, frame: scene.gt(motion, frame), preds.__getitem__)
    refined = len(with_neighbors(scene, frames, neighbors))
    summary = {"seconds": seconds, "seconds_per_frame": seconds / len(frames),
               "frames": len(frames), "frames_scored": len(scored), "refined_frames": refined,
               "fusion": fusion, "neighbors": neighbors}
    (run_dir / "metrics.json").write_text(json.dumps({**metrics.to_json(), **summary}, indent=1))
    return RefineResult(run_dir, metrics, seconds, seconds / len(frames), frames, refined)

