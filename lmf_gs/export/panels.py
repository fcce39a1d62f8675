"""Panel images: input | render | dynamic mask | semi-static mask | 2D motion mask | GT.

Every tile lies on the original (GT) grid, where the masks are scored, box-downscaled by
``data.downscale``; a tile without data (no motion mask, no GT) is grey and says so, so all
panels of a video have the same size.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from lmf_gs.backends import LayeredBackend
from lmf_gs.data.scene import Scene, box_downscale
from lmf_gs.export.pointclouds import LAYER_COLORS

TILES = ("input", "render", "dynamic", "semi-static", "2D motion", "GT")
MISSING = 0.25  # grey level of a tile without data
IGNORED = (0.45, 0.45, 0.45)  # GT pixels the metric ignores


def _tint(mask: np.ndarray, color: tuple[float, float, float]) -> np.ndarray:
    """Soft mask ``[H, W]`` -> RGB ``[H, W, 3]`` from black to ``color``."""
    return np.clip(mask, 0.0, 1.0)[..., None] * np.asarray(color, np.float32)


def _gt_tile(scene: Scene, frame: str) -> np.ndarray | None:
    """Dynamic GT in the dynamic colour, semi-static GT in the semi-static colour, ignored pixels
    grey; None for a frame without annotations."""
    if not all(scene.paths.gt_mask(m, frame).is_file() for m in ("dynamic", "semistatic")):
        return None
    dyn, ss = scene.gt("dynamic", frame), scene.gt("semistatic", frame)
    out = np.zeros((*dyn.shape, 3), np.float32)
    out[~ss.evaluated] = IGNORED
    out[ss.positive] = LAYER_COLORS["semistatic"]
    out[dyn.positive] = LAYER_COLORS["dynamic"]
    return out


def panel(backend: LayeredBackend, frame: str) -> Image.Image:
    """One labelled row of tiles of ``frame``."""
    scene = backend.scene
    r = backend.render(scene.index(frame))
    rgb = r.rgb.clamp(0.0, 1.0).float().cpu().numpy()
    masks = r.masks.float().cpu().numpy()
    grid = scene.to_gt_grid
    motion = scene.masks.read(frame)
    tiles = [
        scene.frame_store.read(frame).astype(np.float32) / 255.0,
        np.stack([grid(rgb[..., c]) for c in range(3)], axis=-1),
        _tint(grid(masks[..., 2]), LAYER_COLORS["dynamic"]),
        _tint(grid(masks[..., 1]), LAYER_COLORS["semistatic"]),
        None if motion is None else _tint(motion.astype(np.float32), (1.0, 1.0, 1.0)),
        _gt_tile(scene, frame),
    ]
    shape = tiles[0].shape
    small = [box_downscale(np.full(shape, MISSING, np.float32) if t is None else t,
                           scene.cfg.downscale) for t in tiles]
    img = Image.fromarray(np.round(np.clip(np.concatenate(small, axis=1), 0, 1) * 255)
                          .astype(np.uint8))
    w = small[0].shape[1]
    draw = ImageDraw.Draw(img)
    for k, (name, t) in enumerate(zip(TILES, tiles, strict=True)):
        label = name if t is not None else f"no {name}"
        draw.text((k * w + 4, 3), label, fill=(0, 0, 0))
        draw.text((k * w + 3, 2), label, fill=(255, 255, 0))
    return img
