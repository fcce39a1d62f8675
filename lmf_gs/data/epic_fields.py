"""Reader of EPIC Fields per-video camera files (``{vid}.json``, COLMAP conventions)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmf_gs.data.camera import Intrinsics, intrinsics_from_colmap, w2c_matrices
from lmf_gs.data.jsonio import read_json
from lmf_gs.errors import DataError

FRAME_RE = re.compile(r"^frame_(\d+)\.jpg$")


def frame_number(name: str) -> int:
    """``frame_0000000080.jpg`` -> 80."""
    m = FRAME_RE.match(name)
    if m is None:
        raise ValueError(f"not an EPIC frame name: {name!r} (expected frame_XXXXXXXXXX.jpg)")
    return int(m.group(1))


def frame_name(number: int) -> str:
    """80 -> ``frame_0000000080.jpg``."""
    return f"frame_{number:010d}.jpg"


@dataclass
class EpicFields:
    """Cameras of one video: frames sorted by frame number, world-to-camera poses, SfM points."""

    intrinsics: Intrinsics
    frames: list[str]
    w2c: np.ndarray  # [N, 4, 4] float64
    points: np.ndarray  # [P, 3] float64 (P may be 0)
    point_colors: np.ndarray  # [P, 3] uint8
    fps: float | None = None  # optional top-level ``fps`` key: frame rate of the frame numbers


def load_epic_fields(path: Path) -> EpicFields:
    """Read and validate an EPIC Fields JSON; raises `DataError` with a one-line reason."""
    raw = read_json(path, "EPIC Fields camera file")
    if not isinstance(raw, dict) or "camera" not in raw or "images" not in raw:
        raise DataError(f"{path}: expected keys 'camera' and 'images'")
    cam = raw["camera"]
    try:
        intr = intrinsics_from_colmap(
            cam.get("model", "OPENCV"), cam["width"], cam["height"], cam["params"]
        )
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: bad 'camera' entry ({e})") from None

    images = raw["images"]
    if not isinstance(images, dict) or not images:
        raise DataError(f"{path}: 'images' must be a non-empty mapping frame name -> pose")
    try:
        numbered = sorted((frame_number(n), n) for n in images)
    except ValueError as e:
        raise DataError(f"{path}: {e}") from None
    frames = [n for _, n in numbered]
    try:
        poses = np.array([images[n] for n in frames], dtype=np.float64)
    except (TypeError, ValueError):
        poses = None
    if poses is None or poses.ndim != 2 or poses.shape[1] != 7:
        raise DataError(f"{path}: every image pose must be [qw, qx, qy, qz, tx, ty, tz]")
    if not np.isfinite(poses).all():
        raise DataError(f"{path}: non-finite values in image poses")
    w2c = w2c_matrices(poses[:, :4], poses[:, 4:], frames, str(path))

    fps = raw.get("fps")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, int | float)
                            or not np.isfinite(fps) or fps <= 0):
        raise DataError(f"{path}: 'fps' must be a positive number, got {fps!r}")

    pts = np.asarray(raw.get("points") or np.zeros((0, 6)), dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 6:
        raise DataError(f"{path}: 'points' must be a list of [x, y, z, r, g, b]")
    return EpicFields(
        intrinsics=intr,
        frames=frames,
        w2c=w2c,
        points=pts[:, :3].copy(),
        point_colors=np.clip(pts[:, 3:6], 0, 255).astype(np.uint8),
        fps=None if fps is None else float(fps),
    )


def near_far_from_points(
    w2c: np.ndarray, points: np.ndarray, q_near: float = 0.001, q_far: float = 0.999
) -> np.ndarray:
    """Per-frame near/far ``[N, 2]``: depth quantiles of the points in front of each camera.

    As NeuralDiff: 0.1% and 99.9% quantiles of z > 0 over all SfM points.
    """
    out = np.zeros((len(w2c), 2))
    for i, m in enumerate(w2c):
        z = points @ m[2, :3] + m[2, 3]
        z = z[z > 0]
        if z.size == 0:
            raise DataError(f"frame index {i}: no SfM point in front of the camera (near/far)")
        out[i] = np.quantile(z, [q_near, q_far])
    return out
