"""What to export (a trained run or one of its refinement runs) and where to write it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lmf_gs.backends import LayeredBackend
from lmf_gs.config import Config
from lmf_gs.core.runs import new_numbered_dir
from lmf_gs.data.scene import Scene
from lmf_gs.errors import LmfError
from lmf_gs.experiments.refine import REFINED


@dataclass
class ModelSource:
    """A model and the run it came from."""

    backend: LayeredBackend
    label: str  # the backend's name for the trained run, else the refinement run's folder name
    refined: bool

    def folder(self, base: str) -> str:
        """An output folder name: ``base`` for the trained run, else ``base-LABEL``."""
        return f"{base}-{self.label}" if self.refined else base


def load_source(kind: type[LayeredBackend], train_dir: Path, refined: Path | None, scene: Scene,
                cfg: Config) -> ModelSource:
    """The trained model of ``train_dir``, or the refined model of ``refined`` (a refinement run
    folder, absolute or relative to ``train_dir``)."""
    if refined is None:
        return ModelSource(kind.load(train_dir, scene, cfg)[0], kind.name, False)
    run_dir = refined if refined.is_dir() or refined.is_absolute() else train_dir / refined
    path = run_dir / REFINED
    if not path.is_file():
        raise LmfError(f"{path}: no refined model; run `lmf-gs refine` first")
    return ModelSource(kind.load(path, scene, cfg)[0], run_dir.name, True)


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn an OS error while writing under ``path`` into a one-line `LmfError`; on any error
    an output folder left empty is removed (no stub folders)."""
    try:
        yield
    except BaseException as e:
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        if isinstance(e, OSError):
            raise LmfError(f"{path}: cannot write ({e.strerror or e})") from None
        raise


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
