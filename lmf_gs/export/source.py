"""What to export (a trained run or one of its refinement runs) and where to write it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from lmf_gs.config import Config
from lmf_gs.errors import LmfError
from lmf_gs.model.layered import LayeredGaussians
from lmf_gs.runs import load_model, new_numbered_dir

REFINED = "refined.pt"


@dataclass
class ModelSource:
    """A model and the run it came from."""

    model: LayeredGaussians
    label: str  # "gs" for the trained run, else the refinement run's folder name

    def folder(self, base: str) -> str:
        """An output folder name: ``base`` for the trained run, else ``base-LABEL``."""
        return base if self.label == "gs" else f"{base}-{self.label}"


def load_source(train_dir: Path, refined: Path | None, device: torch.device) -> ModelSource:
    """The trained model of ``train_dir``, or the refined model of ``refined`` (a refinement run
    folder, absolute or relative to ``train_dir``)."""
    if refined is None:
        model, _, _ = load_model(train_dir, device)
        return ModelSource(model, "gs")
    run_dir = refined if refined.is_dir() or refined.is_absolute() else train_dir / refined
    path = run_dir / REFINED
    if not path.is_file():
        raise LmfError(f"{path}: no refined model; run `lmf-gs refine` first")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=False)
        cfg = Config.model_validate(doc["config"])
        model = LayeredGaussians.from_state_dict(cfg.model, doc["model"])
    except Exception as e:  # torch/pydantic raise many types for corrupt files
        raise LmfError(f"{path}: cannot read refined model ({type(e).__name__}: {e})") from None
    return ModelSource(model.to(device).eval(), run_dir.name)


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn an OS error while writing under ``path`` into a one-line `LmfError`."""
    try:
        yield
    except OSError as e:
        raise LmfError(f"{path}: cannot write ({e.strerror or e})") from None


def output_dir(dest: Path | None, default: Path) -> Path:
    """``dest`` (created; it must be empty) or a new ``default`` folder (numbered ``-2``, ``-3``
    ... when taken): earlier outputs are never overwritten."""
    target = default if dest is None else dest
    with writing(target):
        if dest is None:
            return new_numbered_dir(default)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise LmfError(f"{dest}: --dest exists and is not an empty folder")
        dest.mkdir(parents=True, exist_ok=True)
        return dest
