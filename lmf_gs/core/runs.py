"""Run folders and checkpoints: never overwrite a previous run's results silently."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from lmf_gs.config import Config
from lmf_gs.errors import LmfError

CHECKPOINT = "ckpt.pt"


# what a run folder holds before its first checkpoint: such a run can simply be restarted
STARTUP_FILES = {"config.yaml", "train_log.jsonl", CHECKPOINT + ".tmp"}
PREVIOUS = ".previous"


def has_checkpoint(run_dir: Path) -> bool:
    return (run_dir / CHECKPOINT).is_file()


class RunDir:
    """The folder of a training run, claimed only once the input is validated.

    ``resume`` needs a checkpoint. A folder holding only what a run writes before its first
    checkpoint is restarted. ``overwrite`` moves the old run to ``{run_dir}.previous`` (replacing
    an older one there) and moves it back if the new run fails before its first checkpoint.
    """

    def __init__(self, run_dir: Path, resume: bool = False, overwrite: bool = False):
        if resume and overwrite:
            raise LmfError("--resume and --overwrite exclude each other")
        self.path, self.resume, self.overwrite = run_dir, resume, overwrite
        self.previous: Path | None = None
        if resume and not has_checkpoint(run_dir):
            if run_dir.is_dir() and set(p.name for p in run_dir.iterdir()) <= STARTUP_FILES:
                raise LmfError(f"{run_dir}: stopped before its first checkpoint, nothing to "
                               "resume; run the same command without --resume to restart it")
            raise LmfError(f"{run_dir / CHECKPOINT}: nothing to resume (no checkpoint)")
        if not resume and not overwrite and self._holds_results():
            raise LmfError(f"{run_dir} already holds a run; use --resume to continue it or "
                           "--overwrite to replace it (the old run is kept as "
                           f"{run_dir.name}{PREVIOUS})")

    def _holds_results(self) -> bool:
        p = self.path
        return p.is_dir() and any(c.name not in STARTUP_FILES for c in p.iterdir())

    def claim(self) -> Path:
        """Make the folder ready for writing (call after validating the input)."""
        p = self.path
        if self.resume:
            return p
        if self.overwrite and self._holds_results():
            self.previous = p.with_name(p.name + PREVIOUS)
            if self.previous.exists():
                shutil.rmtree(self.previous)
            p.rename(self.previous)
        elif p.is_dir():
            shutil.rmtree(p)  # a run stopped before its first checkpoint: start it again
        p.mkdir(parents=True, exist_ok=True)
        return p

    def failed(self) -> None:
        """Undo `claim` for a new run that has no checkpoint: no stub folder stays behind, and a
        replaced run comes back."""
        p = self.path
        if self.resume or has_checkpoint(p):
            return
        shutil.rmtree(p, ignore_errors=True)
        if self.previous is not None and self.previous.exists():
            self.previous.rename(p)


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


REQUEST = "request.json"


def resumable_dir(base: Path, request: dict, done: str) -> Path:
    """The folder of a run of ``base``'s family (``base``, ``base-2``, ...) that was made for the
    same ``request`` (its ``request.json``) and has no ``done`` file yet, to resume; else the
    next free name. Neither is created here."""
    for d in sorted(base.parent.glob(f"{base.name}*")):
        if d.name != base.name and not d.name[len(base.name) + 1:].isdigit():
            continue
        if not (d / done).exists() and (d / REQUEST).is_file() and json.loads(
                (d / REQUEST).read_text()) == request:
            return d
    k, path = 2, base
    while path.exists():
        path, k = base.with_name(f"{base.name}-{k}"), k + 1
    return path


def resolve_device(cfg: Config) -> torch.device:
    """``render.device``: "auto" picks CUDA when available."""
    name = cfg.render.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LmfError(f"render.device={name} but CUDA is not available")
    return torch.device(name)


def load_checkpoint(path: Path) -> dict:
    """A checkpoint (a run folder's ``ckpt.pt``, or a file such as ``refined.pt``), with a
    one-line error when missing or unreadable."""
    if path.is_dir() or not path.suffix:
        path = path / CHECKPOINT
    if not path.is_file():
        raise LmfError(f"{path}: no checkpoint; train first with `lmf-gs train`")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for corrupt files
        raise LmfError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from None


def save_checkpoint(path: Path, state: dict, cfg: Config, extra: dict | None = None) -> None:
    """Atomically write ``path`` (a run folder's ``ckpt.pt`` when ``path`` is a folder) with the
    optimisation state and the config."""
    if path.is_dir():
        path = path / CHECKPOINT
    tmp = path.with_name(path.name + ".tmp")
    torch.save({**state, "config": cfg.model_dump(mode="json"), **(extra or {})}, tmp)
    tmp.replace(path)
