"""`lmf-gs refine`: test-time refinement with Layered Motion Fusion, then the layer masks.

A refinement run lives in ``OUT/VID/BACKEND/refine-FUSION-nN[-k]/``. An unfinished one (stopped
by Ctrl-C, SIGTERM or an error after its first checkpoint) is resumed by the same command with
the same settings; a finished one is never replaced.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console

from lmf_gs.backends import LayeredBackend
from lmf_gs.config import Config, save_config
from lmf_gs.core.batch import FrameRender
from lmf_gs.core.frames import parse_frames, split_or_empty, with_neighbors
from lmf_gs.core.loop import run_loop
from lmf_gs.core.runs import (
    CHECKPOINT,
    REQUEST,
    load_checkpoint,
    resumable_dir,
    save_checkpoint,
)
from lmf_gs.data.scene import Scene
from lmf_gs.data.validate import validate_frames
from lmf_gs.eval.udos_metric import VideoResult, layered_prediction, score_video

REFINED = "refined.pt"


@dataclass
class RefineResult:
    run_dir: Path
    metrics: VideoResult
    seconds: float
    seconds_per_frame: float
    frames: list[str]
    refined_frames: int


def gt_grid_masks(scene: Scene, r: FrameRender) -> tuple[np.ndarray, np.ndarray]:
    """Soft (dynamic, semi-static) masks of a render on the original GT grid ``[H, W]`` each."""
    masks = r.masks.float().cpu().numpy()
    return scene.to_gt_grid(masks[..., 2]), scene.to_gt_grid(masks[..., 1])


def save_masks(backend: LayeredBackend, frames: list[str], out: Path
               ) -> dict[str, dict[str, np.ndarray]]:
    """Write each frame's soft (dynamic, semi-static) masks at GT resolution as PNG (x255) and
    .npy (float32); returns the official predictions."""
    out.mkdir(parents=True, exist_ok=True)
    scene, preds = backend.scene, {}
    for f in frames:
        dyn, ss = gt_grid_masks(scene, backend.render(scene.index(f)))
        stem = f.rsplit(".", 1)[0]
        for name, m in (("dynamic", dyn), ("semistatic", ss)):
            np.save(out / f"{stem}_{name}.npy", m.astype(np.float32))
            Image.fromarray(np.round(np.clip(m, 0, 1) * 255).astype(np.uint8)).save(
                out / f"{stem}_{name}.png")
        preds[f] = layered_prediction(dyn, ss)
    return preds


def refine_backend(backend: LayeredBackend, frames: list[int], fusion: str,
                   run_dir: Path | None = None, resume_state: dict | None = None) -> float:
    """TR of ``backend``'s non-static layers in place on the positions ``frames`` (static layer
    frozen); checkpoints to ``run_dir/ckpt.pt`` when given. Returns the seconds spent, summed
    over resumes."""
    opt = backend.refinement(frames, fusion)
    if resume_state is not None:
        opt.load_state_dict(resume_state)
    save = None if run_dir is None else (
        lambda st: save_checkpoint(run_dir, st, backend.cfg))
    with backend.frozen_static():
        run_loop(opt, run_dir, save, f"refine {backend.name} ({fusion})")
    return opt.elapsed


def _request(cfg: Config, frames: list[str]) -> dict:
    return {"frames": frames, "config": cfg.model_dump(mode="json")}


def refine_run(
    kind: type[LayeredBackend], vid: str, cfg: Config, train_dir: Path, frames_spec: str | None,
    fusion: str, neighbors: int, console: Console | None = None,
) -> RefineResult:
    """Refine the trained run in ``train_dir`` on the chosen frames (resuming an unfinished
    refinement with the same settings), save their masks and score those with UDOS GT."""
    console = console or Console()
    scene = Scene(vid, cfg.data)
    validate_frames(scene, progress=console.is_terminal)
    backend, _ = kind.load(train_dir, scene, cfg)
    cfg = backend.cfg
    frames = parse_frames(frames_spec, scene, cfg.eval.split)
    positions = with_neighbors(scene, frames, neighbors)
    request = _request(cfg, frames)
    run_dir = resumable_dir(train_dir / f"refine-{fusion}-n{neighbors}", request, "metrics.json")
    state = None
    if (run_dir / CHECKPOINT).is_file():
        state = load_checkpoint(run_dir)
        backend = kind.from_state(state["model"], scene, cfg)
        console.print(f"resuming the unfinished {run_dir} at step {state['step']}")
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        save_config(cfg, run_dir / "config.yaml")
        (run_dir / REQUEST).write_text(json.dumps(request))
        console.print(f"{vid}: refining {len(frames)} frames (+{neighbors} neighbours each) "
                      f"-> {run_dir}")
        seconds = refine_backend(backend, positions, fusion, run_dir, state)
    except BaseException:
        if created and not (run_dir / CHECKPOINT).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    backend.model.eval()
    preds = save_masks(backend, frames, run_dir / "masks")
    torch.save({"model": backend.state_dict(), "config": cfg.model_dump(mode="json"),
                "frames": frames}, run_dir / REFINED)
    split = set(split_or_empty(scene, cfg.eval.split))
    scored = [f for f in frames if f in split]
    metrics = score_video(vid, f"{kind.name}+tr-{fusion}", cfg.eval.split, scored,
                          lambda motion, frame: scene.gt(motion, frame), preds.__getitem__)
    summary = {"seconds": seconds, "seconds_per_frame": seconds / len(frames),
               "frames": len(frames), "frames_scored": len(scored),
               "refined_frames": len(positions), "fusion": fusion, "neighbors": neighbors}
    (run_dir / "metrics.json").write_text(json.dumps({**metrics.to_json(), **summary}, indent=1))
    (run_dir / CHECKPOINT).unlink(missing_ok=True)  # refined.pt holds the result
    return RefineResult(run_dir, metrics, seconds, seconds / len(frames), frames,
                        len(positions))
