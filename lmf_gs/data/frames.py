"""EPIC-KITCHENS frames from a folder or straight out of an EK100 tar (no unpacking)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from lmf_gs.errors import DataError


def decode_rgb(data: bytes, source: str) -> np.ndarray:
    """Decode an encoded image to ``uint8 [H, W, 3]``; `DataError` naming ``source`` if corrupt."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return np.asarray(img.convert("RGB"))
    except UnidentifiedImageError:
        raise DataError(f"{source}: cannot decode (not an image file)") from None
    except (OSError, SyntaxError) as e:
        raise DataError(f"{source}: cannot decode ({e})") from None


class FrameStore:
    """Reads ``frame_XXXXXXXXXX.jpg`` by name from ``location`` (a folder or a ``.tar``).

    A folder path that does not exist falls back to the same path with ``.tar`` appended, the
    EK100 ``rgb_frames/{vid}.tar`` layout (members ``./frame_XXXXXXXXXX.jpg``). Reads are safe
    from any number of threads: a tar's member table is read once, then every read is one
    positional ``os.pread`` of the member's bytes, which shares no file position between threads
    (unlike a shared ``TarFile``, whose ``extractfile`` seeks one handle).
    """

    def __init__(self, location: Path):
        self._fd: int | None = None
        if location.is_dir():
            self.path = location
            self._files = {p.name: p for p in location.glob("frame_*.jpg")}
            return
        tar_path = location if location.suffix == ".tar" else Path(f"{location}.tar")
        if not tar_path.is_file():
            raise DataError(f"{location}: frames not found (neither a folder nor {tar_path.name})")
        try:
            with tarfile.open(tar_path, "r:") as tar:
                members = tar.getmembers()
        except tarfile.TarError as e:
            raise DataError(f"{tar_path}: not a readable uncompressed tar ({e})") from None
        self.path = tar_path
        # name -> (offset of the data in the archive, size): a regular member's data is contiguous
        self._spans = {Path(m.name).name: (m.offset_data, m.size) for m in members
                       if m.isreg() and Path(m.name).name.startswith("frame_")}
        self._fd = os.open(tar_path, os.O_RDONLY)

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)

    def __contains__(self, name: str) -> bool:
        return name in (self._files if self._fd is None else self._spans)

    def missing(self, names: list[str]) -> list[str]:
        """The names among ``names`` that the store does not hold."""
        return [n for n in names if n not in self]

    def source(self, name: str) -> str:
        """Where frame ``name`` is read from, for messages: ``DIR/NAME`` or ``ARCHIVE.tar:NAME``."""
        return str(self.path / name) if self._fd is None else f"{self.path}:{name}"

    def read_bytes(self, name: str) -> bytes:
        """The encoded bytes of one frame."""
        if name not in self:
            raise DataError(f"{self.path}: missing frame {name}")
        if self._fd is None:
            return self._files[name].read_bytes()
        offset, size = self._spans[name]
        data = os.pread(self._fd, size, offset)
        if len(data) != size:
            raise DataError(f"{self.source(name)}: archive truncated ({len(data)} of {size} bytes)")
        return data

    def read(self, name: str) -> np.ndarray:
        """Decode one frame to ``uint8 [H, W, 3]``."""
        return decode_rgb(self.read_bytes(name), self.source(name))
