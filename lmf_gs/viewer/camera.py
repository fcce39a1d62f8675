"""Browser (viser) cameras <-> the project's world-to-camera poses.

viser reports a camera as ``wxyz`` + ``position`` with ``P_world = R(wxyz) p_cam + position``
and OpenCV axes (look +Z, up -Y, right +X), i.e. exactly camera-to-world in the project's
convention: no axis flips. ``fov`` is vertical, in radians; pixels are square and the principal
point is the image centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import viser.transforms as vtf


@dataclass(frozen=True)
class ViewCamera:
    """A browser camera: orientation, position (world), vertical fov and canvas size."""

    wxyz: tuple[float, float, float, float]
    position: tuple[float, float, float]
    fov: float
    width: int
    height: int

    def c2w(self) -> np.ndarray:
        """Camera-to-world ``[4, 4]`` (float64)."""
        m = np.eye(4)
        m[:3, :3] = vtf.SO3(np.asarray(self.wxyz, np.float64)).as_matrix()
        m[:3, 3] = self.position
        return m

    def w2c(self) -> np.ndarray:
        """World-to-camera ``[4, 4]`` (float64)."""
        return np.linalg.inv(self.c2w())


def pose_of(w2c: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """World-to-camera ``[4, 4]`` -> viser ``(wxyz, position)``."""
    c2w = np.linalg.inv(w2c)
    wxyz = vtf.SO3.from_matrix(c2w[:3, :3]).wxyz
    return tuple(float(v) for v in wxyz), tuple(float(v) for v in c2w[:3, 3])


def vertical_fov(K: np.ndarray, height: int) -> float:
    """Vertical field of view (radians) of intrinsics ``K [3, 3]`` for an image ``height``."""
    return 2.0 * math.atan(height / (2.0 * float(K[1, 1])))


def intrinsics(fov: float, width: int, height: int) -> np.ndarray:
    """Pinhole ``K [3, 3]`` of a ``width`` x ``height`` image with vertical ``fov``, square
    pixels and the principal point at the centre (pixel centres at +0.5)."""
    f = height / (2.0 * math.tan(fov / 2.0))
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def render_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """``width`` x ``height`` scaled down (never up) so that its longer side is at most
    ``max_side``, keeping the aspect ratio; at least 1 x 1."""
    s = min(1.0, max_side / max(width, height, 1))
    return max(1, round(width * s)), max(1, round(height * s))
