"""Panel images: input | render | dynamic mask | semi-static mask | 2D motion mask | GT."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from lmf_gs.data.scene import Scene
from lmf_gs.errors import DataError
from lmf_gs.model.layered import LayeredGaussians
from lmf_gs.train.views import Cameras

GT_COLORS = {1: (255, 60, 60), 2: (60, 200, 60), 3: (255, 200, 0)}  # moving/ss, ambiguous, body


def _heat(mask: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    """Soft mask ``[h, w]`` in [0, 1] -> RGB uint8 shaded towards ``color``."""
    m = np.clip(mask, 0, 1)[..., None]
    return (m * np.array(color, np.float32)).astype(np.uint8)


def _gt_tile(scene: Scene, frame: str, size: tuple[int, int]) -> np.ndarray | None:
    """The dynamic_semistatic GT labels coloured (1 red, 2 green, 3 yellow), or None."""
    path = scene.paths.gt_mask("dynamic_semistatic", frame)
    if not path.is_file():
        return None
    labels = np.asarray(Image.open(path).resize(size, Image.Resampling.NEAREST))
    if labels.max() == 255:
        labels = labels // 255
    out = np.zeros((*labels.shape, 3), np.uint8)
    for value, color in GT_COLORS.items():
        out[labels == value] = color
    return out


@torch.no_grad()
def panel(
    model: LayeredGaussians, scene: Scene, cams: Cameras, frame: str, backend: str
) -> Image.Image:
    """One labelled row of tiles at the working resolution."""
    i = scene.index(frame)
    r = model.render(cams.t[i:i + 1], cams.w2c[i:i + 1], cams.K[None], cams.width,
                     cams.height, backend)
    h, w = scene.height, scene.width
    rgb = (np.clip(r.rgb[0].cpu().numpy(), 0, 1) * 255).astype(np.uint8)
    masks = r.masks[0].cpu().numpy()
    motion = scene.motion_mask(frame)
    tiles = [
        ("input", (scene.image(frame) * 255).astype(np.uint8)),
        ("render", rgb),
        ("dynamic", _heat(masks[..., 2], (255, 80, 80))),
        ("semi-static", _heat(masks[..., 1], (80, 160, 255))),
        ("2D motion", _heat(motion, (255, 255, 255)) if motion is not None else None),
        ("GT", _gt_tile(scene, frame, (w, h))),
    ]
    tiles = [(name, t) for name, t in tiles if t is not None]
    img = Image.fromarray(np.concatenate([t for _, t in tiles], axis=1))
    draw = ImageDraw.Draw(img)
    for k, (name, _) in enumerate(tiles):
        draw.text((k * w + 3, 2), name, fill=(255, 255, 0))
    return img


def stack(rows: list[Image.Image]) -> Image.Image:
    """Rows of equal width, top to bottom."""
    if not rows:
        raise DataError("no frames to render")
    out = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)))
    y = 0
    for r in rows:
        out.paste(r, (0, y))
        y += r.height
    return out
