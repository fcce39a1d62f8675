"""Run directories: never overwrite a previous run's results silently."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from lmf_gs.config import Config
from lmf_gs.errors import LmfError
from lmf_gs.model.layered import LayeredGaussians

CHECKPOINT = "ckpt.pt"


def prepare_run_dir(run_dir: Path, resume: bool = False, overwrite: bool = False) -> Path:
    """Create ``run_dir`` for a new run, or accept it for ``resume``; refuse to clobber."""
    if resume and overwrite:
        raise LmfError("--resume and --overwrite exclude each other")
    ckpt = run_dir / CHECKPOINT
    if resume:
        if not ckpt.is_file():
            raise LmfError(f"{ckpt}: nothing to resume (no checkpoint)")
        return run_dir
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise LmfError(
                f"{run_dir} already holds a run; use --resume to continue it or --overwrite "
                "to replace it"
            )
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def new_numbered_dir(base: Path) -> Path:
    """``base`` if free, else ``base-2``, ``base-3``, ... (results are never replaced)."""
    if not base.exists():
        base.mkdir(parents=True)
        return base
    k = 2
    while (p := base.with_name(f"{base.name}-{k}")).exists():
        k += 1
    p.mkdir(parents=True)
    return p


def resolve_device(cfg: Config) -> torch.device:
    """``render.device``: "auto" picks CUDA when available."""
    name = cfg.render.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LmfError(f"render.device={name} but CUDA is not available")
    return torch.device(name)


def load_checkpoint(run_dir: Path) -> dict:
    """The checkpoint of a trained run, with a one-line error when missing or unreadable."""
    path = run_dir / CHECKPOINT
    if not path.is_file():
        raise LmfError(f"{path}: no checkpoint; train first with `lmf-gs train`")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for corrupt files
        raise LmfError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from None


def load_model(run_dir: Path, device: torch.device) -> tuple[LayeredGaussians, Config, dict]:
    """The trained model of a run, the config it was trained with, and the raw checkpoint."""
    ckpt = load_checkpoint(run_dir)
    trained_cfg = Config.model_validate(ckpt["config"])
    model = LayeredGaussians.from_state_dict(trained_cfg.model, ckpt["model"]).to(device)
    model.eval()
    return model, trained_cfg, ckpt
