"""`lmf-gs train`: fit a layered model of any backend to a whole video; resumable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from rich.console import Console

from lmf_gs.backends import LayeredBackend
from lmf_gs.config import Config, save_config
from lmf_gs.core.frames import train_holdout
from lmf_gs.core.loop import run_loop
from lmf_gs.core.runs import RunDir, save_checkpoint
from lmf_gs.data.scene import Scene
from lmf_gs.data.validate import validate_frames
from lmf_gs.experiments.evaluate import heldout_psnr


@contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Torch's global RNG seeded with ``seed`` (unless None) inside the block only: the caller's
    random state is the same after it."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if seed is not None:
            torch.manual_seed(seed)
        yield


def train_run(
    kind: type[LayeredBackend], vid: str, cfg: Config, run: RunDir,
    console: Console | None = None,
) -> dict:
    """Train (or resume) a ``kind`` model of ``vid`` into ``run``; returns the summary written
    to ``train_summary.json``. The input is read and checked before the folder is touched."""
    console = console or Console()
    scene = Scene(vid, cfg.data)
    validate_frames(scene, progress=console.is_terminal)
    train_idx, held = train_holdout(scene, cfg.train.holdout_every)
    backend, ckpt = kind.load(run.path, scene, cfg) if run.resume else (None, {})
    run_dir = run.claim()
    meta = {"vid": vid, "train_frames": [scene.frames[i] for i in train_idx],
            "heldout_frames": [scene.frames[i] for i in held]}
    try:
        with seeded(None if run.resume else cfg.train.seed, torch.device("cpu")):
            if backend is None:
                backend = kind.initialise(scene, cfg, train_idx)
            backend.model.train()
            opt = backend.training(train_idx)
            if run.resume:
                opt.load_state_dict(ckpt)
                console.print(f"resuming {run_dir} at step {opt.step}")
            save_config(cfg, run_dir / "config.yaml")
            sizes = ", ".join(f"{k} {v}" for k, v in backend.describe().items())
            console.print(f"{vid}: {kind.label}, {len(train_idx)} training / {len(held)} "
                          f"held-out frames at {scene.width}x{scene.height}, device "
                          f"{backend.device}, {sizes}, {opt.iters} iterations")
            fused = [t for t in ("pmf", "nmf") if t in opt.terms]
            if fused:
                masked = sum(scene.masks.path(scene.frames[i]) is not None for i in train_idx)
                console.print(f"fusion ({', '.join(fused)}) on the {masked} training frames with "
                              "a 2D motion mask"
                              + ("; `lmf-gs motion-masks` makes them" if masked == 0 else ""))
            run_loop(opt, run_dir, description=f"train {kind.name}", counts=backend.counts,
                     save=lambda st: save_checkpoint(run_dir, st, cfg,
                                                     {**meta, "loss_terms": sorted(opt.terms)}))
    except BaseException:
        run.failed()
        raise
    backend.model.eval()
    summary = {
        "scene": vid,
        "backend": kind.name,
        "iters": opt.iters,
        "steps": opt.step,
        "seconds": opt.elapsed,  # the training loop, summed over resumes
        **backend.describe(),
        "psnr_heldout": heldout_psnr(backend, held),
        "heldout_frames": len(held),
        "loss_terms": sorted(opt.terms),
    }
    (run_dir / "train_summary.json").write_text(json.dumps(summary, indent=1))
    return summary
