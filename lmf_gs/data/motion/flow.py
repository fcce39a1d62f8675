"""Dense optical flow between two frames (OpenCV DIS), its forward-backward consistency, and
how well a flow explains the colours.

Flow convention: ``flow[y, x] = (du, dv)`` maps pixel ``(x, y)`` of the source frame to
``(x + du, y + dv)`` in the target frame.
"""

from __future__ import annotations

import cv2
import numpy as np


def to_gray(image: np.ndarray) -> np.ndarray:
    """RGB float ``[H, W, 3]`` in [0, 1] -> uint8 grey ``[H, W]`` (OpenCV's flow input)."""
    rgb = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def dense_flow(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Flow ``[H, W, 2]`` float32 from grey uint8 ``src [H, W]`` to ``dst [H, W]``: OpenCV DIS,
    preset MEDIUM (8 px patches down to half resolution, then variational refinement)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(src, dst, None).astype(np.float32)


def sample(field: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``field`` ``[H, W, C]`` (or ``[H, W]``) bilinearly sampled at ``x + flow(x)``, edges
    replicated."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(field.astype(np.float32), gx + flow[..., 0], gy + flow[..., 1],
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def fb_error(fwd: np.ndarray, bwd: np.ndarray) -> np.ndarray:
    """Forward-backward error ``|fwd(x) + bwd(x + fwd(x))|`` ``[H, W]`` in pixels: near 0 where
    the two flows agree, large where ``x`` is occluded in the target or the flow is wrong."""
    return np.linalg.norm(fwd + sample(bwd, fwd), axis=-1)


def leaves_frame(flow: np.ndarray) -> np.ndarray:
    """Boolean ``[H, W]``: pixels whose flow target falls outside the frame."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w), np.arange(h))
    x, y = gx + flow[..., 0], gy + flow[..., 1]
    return (x < 0) | (x > w - 1) | (y < 0) | (y > h - 1)


def photometric_error(src: np.ndarray, dst: np.ndarray, flow: np.ndarray,
                      window: int = 5) -> np.ndarray:
    """Mean absolute colour difference ``[H, W]`` between ``src [H, W, C]`` and ``dst`` sampled
    at ``x + flow(x)``, averaged over channels and a ``window`` x ``window`` box (a NaN flow
    counts as the largest error, 1)."""
    ok = np.isfinite(flow).all(-1)
    warped = sample(dst, np.where(ok[..., None], flow, 0.0))
    err = np.abs(src.astype(np.float32) - warped)
    err = err.mean(-1) if err.ndim == 3 else err
    return cv2.blur(np.where(ok, err, 1.0).astype(np.float32), (window, window))
