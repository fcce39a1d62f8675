"""The image motion that the camera motion alone explains: rigid flow from depth and poses,
epipolar geometry (no depth needed), and a dense depth map from the SfM points.

Poses are world-to-camera 4x4 matrices (EPIC Fields / COLMAP / OpenCV axes); pixel centres are
at +0.5, so a pixel ``(x, y)`` of an array sits at camera coordinates ``(x + 0.5, y + 0.5)``.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator
from scipy.spatial import QhullError

from lmf_gs.data.camera import pixel_grid


def relative_pose(w2c_src: np.ndarray, w2c_dst: np.ndarray) -> np.ndarray:
    """The 4x4 transform from the source camera's frame to the target camera's frame."""
    return w2c_dst @ np.linalg.inv(w2c_src)


def rigid_flow(depth: np.ndarray, K: np.ndarray, src_to_dst: np.ndarray) -> np.ndarray:
    """Flow ``[H, W, 2]`` of a static scene with z-depth ``depth [H, W]`` in the source camera,
    seen from the target camera (``src_to_dst`` from `relative_pose`, same intrinsics ``K``).
    Points that end behind the target camera get NaN."""
    h, w = depth.shape
    uv = pixel_grid(w, h)
    rays = np.concatenate([uv, np.ones((h, w, 1))], -1) @ np.linalg.inv(K).T
    X = rays * depth[..., None]
    Xd = X @ src_to_dst[:3, :3].T + src_to_dst[:3, 3]
    z = Xd[..., 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        proj = (Xd @ K.T)[..., :2] / z
    proj[(z[..., 0] <= 1e-9)] = np.nan
    return (proj - uv).astype(np.float32)


def rotation_flow(K: np.ndarray, src_to_dst: np.ndarray, width: int, height: int) -> np.ndarray:
    """Flow ``[H, W, 2]`` of the camera's rotation alone (the rigid flow of infinitely far
    points): what is left of the camera motion when no depth is known."""
    T = np.eye(4)
    T[:3, :3] = src_to_dst[:3, :3]
    return rigid_flow(np.ones((height, width)), K, T)


def fundamental(K: np.ndarray, src_to_dst: np.ndarray) -> np.ndarray:
    """Fundamental matrix ``F`` (3x3) with ``x_dst^T F x_src = 0`` for homogeneous pixels."""
    R, t = src_to_dst[:3, :3], src_to_dst[:3, 3]
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    Kinv = np.linalg.inv(K)
    return Kinv.T @ tx @ R @ Kinv


def epipolar_lines(F: np.ndarray, width: int, height: int) -> np.ndarray:
    """Epipolar line ``(a, b, c)`` in the target image of every source pixel ``[H, W, 3]``,
    scaled so that ``(a, b)`` is a unit normal (zero where undefined: no translation)."""
    uv = pixel_grid(width, height)
    lines = np.concatenate([uv, np.ones((height, width, 1))], -1) @ F.T
    norm = np.linalg.norm(lines[..., :2], axis=-1, keepdims=True)
    return np.where(norm > 1e-12, lines / np.maximum(norm, 1e-12), 0.0)


def epipolar_distance(flow: np.ndarray, rigid: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Distance ``[H, W]`` of each flow target to its epipolar line (`epipolar_lines`), in
    pixels: the part of ``flow - rigid`` across the line. The rigid target lies on the line
    whatever the depth, so this needs no depth; depth errors move the rigid target only
    along it. Where the line is undefined (no translation) the whole residual counts."""
    res = (flow - rigid).astype(np.float64)
    n = lines[..., :2]
    across = np.abs((res * n).sum(-1))
    defined = np.linalg.norm(n, axis=-1) > 0.5
    return np.where(defined, across, np.linalg.norm(res, axis=-1)).astype(np.float32)


def project_points(
    points: np.ndarray, w2c: np.ndarray, K: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """World points ``[P, 3]`` seen by a camera: pixel coordinates ``[M, 2]`` (+0.5 centres)
    and z-depths ``[M]`` of the ``M`` points in front of it and inside the image."""
    X = points @ w2c[:3, :3].T + w2c[:3, 3]
    z = X[:, 2]
    front = z > 1e-9
    uv = (X[front] @ K.T)[:, :2] / z[front, None]
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
    return uv[inside], z[front][inside]


def densify_depth(
    uv: np.ndarray, z: np.ndarray, width: int, height: int, smooth: float = 0.02
) -> np.ndarray | None:
    """Dense z-depth ``[H, W]`` from sparse samples: inverse depth interpolated linearly over
    their Delaunay triangles (exact on planes), nearest sample outside their hull, then a
    Gaussian blur of ``smooth`` x the image diagonal. None with fewer than 3 samples."""
    if len(z) < 3:
        return None
    grid = pixel_grid(width, height).reshape(-1, 2)
    inv = 1.0 / z
    try:
        dense = LinearNDInterpolator(uv, inv)(grid)
    except QhullError:  # collinear samples
        dense = np.full(len(grid), np.nan)
    holes = ~np.isfinite(dense)
    if holes.any():
        dense[holes] = NearestNDInterpolator(uv, inv)(grid[holes])
    dense = dense.reshape(height, width).astype(np.float32)
    if smooth > 0:
        dense = cv2.GaussianBlur(dense, (0, 0), smooth * float(np.hypot(width, height)))
    return 1.0 / np.maximum(dense, 1e-12)


def sfm_depth(
    points: np.ndarray, w2c: np.ndarray, K: np.ndarray, width: int, height: int,
    smooth: float = 0.02,
) -> np.ndarray | None:
    """Dense depth ``[H, W]`` of one camera from the SfM points (`densify_depth`), or None when
    fewer than 3 points fall into the image."""
    uv, z = project_points(points, w2c, K, width, height)
    return densify_depth(uv, z, width, height, smooth)
