"""EPIC-KITCHENS frames from a folder or straight out of an EK100 tar (no unpacking)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from lmf_gs.errors import DataError


class FrameStore:
    """Reads ``frame_XXXXXXXXXX.jpg`` by name from ``location`` (a folder or a ``.tar``).

    A folder path that does not exist falls back to the same path with ``.tar`` appended, the
    EK100 ``rgb_frames/{vid}.tar`` layout (members ``./frame_XXXXXXXXXX.jpg``).
    """

    def __init__(self, location: Path):
        if location.is_dir():
            self.path = location
            self._tar = None
            self._members = {p.name: p for p in location.glob("frame_*.jpg")}
        else:
            tar_path = location if location.suffix == ".tar" else Path(f"{location}.tar")
            if not tar_path.is_file():
                raise DataError(
                    f"{location}: frames not found (neither a folder nor {tar_path.name})"
                )
            try:
                self._tar = tarfile.open(tar_path, "r:")  # noqa: SIM115 (open for the store's life)
            except tarfile.TarError as e:
                raise DataError(f"{tar_path}: not a readable uncompressed tar ({e})") from None
            self.path = tar_path
            self._members = {
                Path(m.name).name: m for m in self._tar.getmembers()
                if m.isfile() and Path(m.name).name.startswith("frame_")
            }

    def __contains__(self, name: str) -> bool:
        return name in self._members

    def missing(self, names: list[str]) -> list[str]:
        """The names among ``names`` that the store does not hold."""
        return [n for n in names if n not in self._members]

    def read(self, name: str) -> np.ndarray:
        """Decode one frame to ``uint8 [H, W, 3]``."""
        if name not in self._members:
            raise DataError(f"{self.path}: missing frame {name}")
        member = self._members[name]
        try:
            if self._tar is None:
                img = Image.open(member)
            else:
                img = Image.open(io.BytesIO(self._tar.extractfile(member).read()))
            return np.asarray(img.convert("RGB"))
        except (OSError, UnidentifiedImageError) as e:
            raise DataError(f"{self.path}: cannot decode {name} ({e})") from None
