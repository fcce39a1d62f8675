"""One viewer image: the model at the slider's time, from the browser's camera, in a display
mode, with the hidden layers left out of the rasterisation."""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from lmf_gs.viewer.camera import ViewCamera, intrinsics
from lmf_gs.viewer.source import (
    LAYER_COLORS,
    LayeredGaussians,
    LayerImages,
    render_layers,
    scene_scale,
)
from lmf_gs.viewer.state import MODES, Recording, ViewerState

OVERLAY = 0.7  # opacity of the layer colours over the RGB render in "layer masks" mode
FAR = 160.0  # depth sent where nothing is drawn (viser's depth encoding stops at ~167.8)
EMPTY = 0.05  # accumulated opacity below which a pixel counts as empty


@dataclass
class ViewImage:
    """What the browser shows, and the render it came from."""

    image: np.ndarray  # [H, W, 3] uint8
    depth: np.ndarray  # [H, W] float32 camera z for viser's depth compositing (FAR where empty)
    layers: LayerImages
    ms: float  # wall time of render + composition


def compose(raw: LayerImages, mode: str, depth_range: float) -> np.ndarray:
    """Display image ``[H, W, 3]`` float in [0, 1]: the RGB render, the RGB render under the
    semi-static/dynamic masks in the panel colours, or depth (turbo colour map over
    ``[0, depth_range]``, faded by the accumulated opacity)."""
    if mode == MODES[0]:
        return np.clip(raw.rgb, 0.0, 1.0)
    if mode == MODES[1]:
        ss, dy = raw.masks[..., 1:2], raw.masks[..., 2:3]
        tint = (ss * np.float32(LAYER_COLORS["semistatic"])
                + dy * np.float32(LAYER_COLORS["dynamic"]))
        return np.clip(raw.rgb * (1.0 - OVERLAY * (ss + dy)) + OVERLAY * tint, 0.0, 1.0)
    if mode == MODES[2]:
        level = np.clip(raw.depth / depth_range, 0.0, 1.0) * 255.0
        turbo = cv2.applyColorMap(level.astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
        return turbo.astype(np.float32) / 255.0 * np.clip(raw.alpha, 0.0, 1.0)[..., None]
    raise ValueError(f"unknown display mode {mode!r}")


def render_view(
    model: LayeredGaussians, rec: Recording, state: ViewerState, cam: ViewCamera, width: int,
    height: int, backend: str,
) -> ViewImage:
    """Render ``state`` from ``cam`` at ``width`` x ``height`` (the camera's fov, its canvas
    aspect); the dynamic layer sits where the slider frame's camera recorded it."""
    start = time.perf_counter()
    K = intrinsics(cam.fov, width, height)
    raw = render_layers(model, state.time(rec), cam.w2c(), rec.c2w[state.frame], K, width,
                        height, state.shown_layers(), backend)
    img = compose(raw, state.mode, 2.0 * scene_scale(model))
    depth = np.where(raw.alpha > EMPTY, raw.depth, FAR).astype(np.float32)
    image = np.round(img * 255.0).astype(np.uint8)
    return ViewImage(image, depth, raw, (time.perf_counter() - start) * 1e3)
