"""Ground-truth UDOS label maps and Motion-Grouping-like soft motion masks.

The motion masks imitate an unsupervised optical-flow segmenter: they come from the residual
flow (object-induced flow minus the flow the camera motion alone would give), and are then made
precise but incomplete (slow parts, random chunks and whole objects or frames missed, eroded
edges, a few small false blobs).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lmf_gs.data.synth.camera import REFERENCE_WIDTH, Intrinsics
from lmf_gs.data.synth.kitchen import Motion
from lmf_gs.data.synth.motion import smoother
from lmf_gs.data.synth.render import Frame
from lmf_gs.data.synth.scene import KitchenScene

NOMINAL_GAP = 3  # frame-number gap over which the flow magnitude is expressed


@dataclass(frozen=True)
class GroundTruth:
    """UDOS label maps of one frame (uint8, stored as-is in the annotation PNGs)."""

    dynamic: np.ndarray  # 0 / 255: hands and carried objects
    semistatic: np.ndarray  # 0 / 1 resting semi-static / 2 ambiguous
    dynamic_semistatic: np.ndarray  # 0 / 1 carried + resting semi-static / 2 ambiguous / 3 body


def ground_truth(scene: KitchenScene, k: int, part: np.ndarray) -> GroundTruth:
    """Label maps of frame ``k`` from its part-index buffer."""
    motions = [p.motion for p in scene.parts]
    carried = scene.carried(k)
    semi = [i for i, m in enumerate(motions) if m is Motion.SEMI_STATIC and i not in carried]
    nudged = [i for i, m in enumerate(motions) if m is Motion.NUDGED]
    hand = np.isin(part, scene.hand_ids)
    moving = np.isin(part, carried)
    resting = np.isin(part, semi)
    ambiguous = np.isin(part, nudged)
    radius = max(1, round(4 * scene.intrinsics.width / REFERENCE_WIDTH))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    for p in scene.transitions.get(k, []):
        obj = (part == p).astype(np.uint8)
        ambiguous |= (cv2.dilate(obj, kernel) > 0) & (obj == 0) & ~hand & ~resting & ~moving
    semistatic = np.where(resting, 1, np.where(ambiguous, 2, 0)).astype(np.uint8)
    dyn_semi = np.select([hand, moving | resting, ambiguous], [3, 1, 2], 0).astype(np.uint8)
    return GroundTruth((hand | moving).astype(np.uint8) * 255, semistatic, dyn_semi)


def _pixels(intr: Intrinsics, w2c: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Pixel positions of world points in a camera (points behind it clamped to 5 cm depth)."""
    cam = x @ w2c[:3, :3].T + w2c[:3, 3]
    cam[:, 2] = np.maximum(cam[:, 2], 0.05)
    return intr.project(cam)


def residual_flow(scene: KitchenScene, k: int, frame: Frame) -> np.ndarray:
    """Per-pixel residual flow magnitude ``(H, W)`` in pixels per :data:`NOMINAL_GAP` frames at
    :data:`REFERENCE_WIDTH`: the largest over the previous and next registered frames."""
    intr = scene.intrinsics
    moving_parts = [i for i, p in enumerate(scene.parts) if p.motion is not Motion.STATIC]
    sel = np.isin(frame.part, moving_parts)
    out = np.zeros(frame.part.shape)
    if not sel.any():
        return out
    part = frame.part[sel].astype(np.int64)
    local, world = frame.local[sel], frame.world[sel]
    for n in (k - 1, k + 1):
        if not 0 <= n < len(scene.frame_numbers):
            continue
        poses = scene.part_poses(n)
        moved = np.einsum("nij,nj->ni", poses[part, :3, :3], local) + poses[part, :3, 3]
        w2c = scene.world_to_camera(n)
        shift = _pixels(intr, w2c, moved) - _pixels(intr, w2c, world)
        gap = abs(int(scene.frame_numbers[n]) - int(scene.frame_numbers[k]))
        mag = np.linalg.norm(shift, axis=1) * NOMINAL_GAP / gap
        out[sel] = np.maximum(out[sel], mag * REFERENCE_WIDTH / intr.width)
    return out


@dataclass(frozen=True)
class MotionGroupingStyle:
    """How the imitation of Motion Grouping degrades the ideal residual-motion segmentation."""

    flow_low: float = 2.5  # px: below this nothing is detected (slow parts missed)
    flow_high: float = 7.0  # px: full score above this
    p_frame_miss: float = 0.08  # whole frame missed
    p_part_miss: float = 0.08  # one moving part (hand / object) missed
    chunk_quantile: tuple[float, float] = (0.15, 0.35)  # fraction of a smooth field cut away
    chunk_cells: tuple[int, int] = (10, 18)  # rows x columns of the smooth field's coarse grid
    erode_px: tuple[float, float] = (1.0, 3.5)
    blobs_per_frame: float = 0.4  # false detections, in frames where something moves
    blob_radius_px: tuple[float, float] = (3.0, 9.0)
    blur_px: float = 0.8


def motion_mask(
    part: np.ndarray, flow: np.ndarray, rng: np.random.Generator,
    style: MotionGroupingStyle = MotionGroupingStyle(),
) -> np.ndarray:
    """Soft motion score map, uint8 0..255, from a frame's part buffer and residual flow."""
    h, w = flow.shape
    px = w / REFERENCE_WIDTH
    score = smoother((flow - style.flow_low) / (style.flow_high - style.flow_low))
    for p in np.unique(part[score > 0]):
        if rng.uniform() < style.p_part_miss:
            score[part == p] = 0.0
    radius = max(0, round(rng.uniform(*style.erode_px) * px))
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        score *= cv2.erode((score > 0).astype(np.uint8), kernel)
    chunks = _smooth_field(rng, h, w, style.chunk_cells)
    cut = np.quantile(chunks, rng.uniform(*style.chunk_quantile))
    score *= smoother((chunks - cut) / 0.08) * (0.7 + 0.3 * _smooth_field(rng, h, w, (5, 8)))
    if rng.uniform() < style.p_frame_miss:
        score[:] = 0.0
    yy, xx = np.mgrid[0:h, 0:w]
    n_blobs = rng.poisson(style.blobs_per_frame) if flow.max() > style.flow_low else 0
    for _ in range(n_blobs):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(*style.blob_radius_px) * px
        blob = rng.uniform(0.2, 0.7) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        score = np.maximum(score, blob)
    score = cv2.GaussianBlur(score, (0, 0), style.blur_px * px)
    return np.round(255.0 * np.clip(score, 0.0, 1.0)).astype(np.uint8)


def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: tuple[int, int]) -> np.ndarray:
    """Low-frequency random field in [0, 1] (a coarse grid of uniform values, upsampled)."""
    grid = rng.uniform(0.0, 1.0, cells)
    return np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
