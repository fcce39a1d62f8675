"""MP4 writing (imageio's ffmpeg plugin, H.264 / yuv420p)."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image


def even_size(img: Image.Image) -> np.ndarray:
    """``img`` as RGB uint8 ``[H, W, 3]``, padded with black to even H and W (yuv420p needs
    both even; imageio would otherwise resize to its macro block size)."""
    a = np.asarray(img.convert("RGB"))
    h, w = a.shape[:2]
    return np.pad(a, ((0, h % 2), (0, w % 2), (0, 0)))


class Mp4Writer:
    """Append equally sized images to an MP4; use as a context manager."""

    def __init__(self, path: Path, fps: float):
        self.path = path
        self._writer = imageio.get_writer(path, format="FFMPEG", mode="I", fps=fps,
                                          codec="libx264", macro_block_size=1)

    def append(self, img: Image.Image) -> None:
        self._writer.append_data(even_size(img))

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()
