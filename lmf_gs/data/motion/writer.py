"""Write one video's motion masks as 8-bit PNGs: into a temporary folder next to the
destination, moved into place only when every frame is written."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType

import numpy as np
from PIL import Image

from lmf_gs.data.paths import png_name
from lmf_gs.errors import LmfError


def mask_to_png(mask: np.ndarray, path: Path) -> None:
    """Write a soft mask ``[H, W]`` in [0, 1] as a single-channel 0-255 PNG."""
    if mask.ndim != 2:
        raise ValueError(f"expected a [H, W] mask, got shape {mask.shape}")
    Image.fromarray(np.round(np.clip(mask, 0.0, 1.0) * 255.0).astype(np.uint8), mode="L").save(path)


class MaskFolderWriter:
    """``with MaskFolderWriter(dest, overwrite) as w: w.write(frame, mask)``.

    Refuses (at construction, before anything on disk changes) a ``dest`` that already holds
    files unless ``overwrite``. Masks go to a hidden temporary sibling folder; on success it
    replaces ``dest``, on an error it is removed and ``dest`` stays as it was.
    """

    def __init__(self, dest: Path, overwrite: bool = False):
        self.dest = dest
        existing = sorted(dest.iterdir()) if dest.is_dir() else []
        if dest.exists() and not dest.is_dir():
            raise LmfError(f"{dest}: exists and is not a folder")
        if existing and not overwrite:
            raise LmfError(f"{dest}: already holds {len(existing)} file(s) (motion masks of an "
                           "earlier run); use --overwrite to replace them")
        self.tmp: Path | None = None
        self.count = 0

    def __enter__(self) -> MaskFolderWriter:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.", suffix=".tmp",
                                         dir=self.dest.parent))
        return self

    def write(self, frame: str, mask: np.ndarray) -> Path:
        """Write the mask of ``frame`` (a ``.jpg`` frame name) as ``frame_XXXXXXXXXX.png``."""
        assert self.tmp is not None, "use MaskFolderWriter as a context manager"
        path = self.tmp / png_name(frame)
        mask_to_png(mask, path)
        self.count += 1
        return self.dest / path.name

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self.tmp is not None
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        old = None
        if self.dest.exists():
            old = self.tmp.with_name(self.tmp.name + ".old")
            self.dest.rename(old)
        self.tmp.rename(self.dest)
        if old is not None:
            shutil.rmtree(old)
