"""Camera model and pose conventions: COLMAP OPENCV intrinsics, quaternions, similarity transforms.

Conventions (as in EPIC Fields / COLMAP): poses are world-to-camera, ``x_cam = R @ X + t``; the
camera looks down +z with x right and y down; pixel (col i, row j) has its centre at (i+0.5, j+0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_UNDISTORT_ITERS = 30
REFERENCE_WIDTH = 456  # EPIC frame width: pixel-sized parameters are given at this width


@dataclass(frozen=True)
class Intrinsics:
    """OPENCV camera: focal lengths, principal point and distortion (k1, k2, p1, p2)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    k1: float
    k2: float
    p1: float
    p2: float

    @property
    def params(self) -> list[float]:
        """COLMAP OPENCV parameter list ``[fx, fy, cx, cy, k1, k2, p1, p2]``."""
        return [self.fx, self.fy, self.cx, self.cy, self.k1, self.k2, self.p1, self.p2]

    def distort(self, xy: np.ndarray) -> np.ndarray:
        """Apply the OpenCV distortion to normalised image coordinates ``(..., 2)``."""
        x, y = xy[..., 0], xy[..., 1]
        r2 = x * x + y * y
        radial = 1.0 + self.k1 * r2 + self.k2 * r2 * r2
        xd = x * radial + 2.0 * self.p1 * x * y + self.p2 * (r2 + 2.0 * x * x)
        yd = y * radial + self.p1 * (r2 + 2.0 * y * y) + 2.0 * self.p2 * x * y
        return np.stack([xd, yd], axis=-1)

    def undistort(self, xy_d: np.ndarray) -> np.ndarray:
        """Invert :meth:`distort` by fixed-point iteration (exact for small distortion)."""
        xd, yd = xy_d[..., 0], xy_d[..., 1]
        x, y = xd.copy(), yd.copy()
        for _ in range(_UNDISTORT_ITERS):
            r2 = x * x + y * y
            radial = 1.0 + self.k1 * r2 + self.k2 * r2 * r2
            dx = 2.0 * self.p1 * x * y + self.p2 * (r2 + 2.0 * x * x)
            dy = self.p1 * (r2 + 2.0 * y * y) + 2.0 * self.p2 * x * y
            x = (xd - dx) / radial
            y = (yd - dy) / radial
        return np.stack([x, y], axis=-1)

    def project(self, x_cam: np.ndarray) -> np.ndarray:
        """Camera-frame points ``(..., 3)`` to pixel coordinates ``(..., 2)`` (COLMAP)."""
        z = x_cam[..., 2:3]
        xy = self.distort(x_cam[..., :2] / z)
        return np.stack([self.fx * xy[..., 0] + self.cx, self.fy * xy[..., 1] + self.cy], axis=-1)

    def pixel_rays(self) -> np.ndarray:
        """Camera-frame ray directions ``(H, W, 3)`` with z = 1 through every pixel centre."""
        u, v = np.meshgrid(np.arange(self.width) + 0.5, np.arange(self.height) + 0.5)
        xy_d = np.stack([(u - self.cx) / self.fx, (v - self.cy) / self.fy], axis=-1)
        xy = self.undistort(xy_d)
        return np.concatenate([xy, np.ones_like(xy[..., :1])], axis=-1)


def epic_like_intrinsics(width: int, height: int, rng: np.random.Generator) -> Intrinsics:
    """EPIC-Fields-like intrinsics (fx ≈ 0.525 W, fy ≈ 0.95 H) with small OPENCV distortion."""
    return Intrinsics(
        width=width,
        height=height,
        fx=0.5254 * width * (1.0 + rng.uniform(-0.02, 0.02)),
        fy=0.9496 * height * (1.0 + rng.uniform(-0.02, 0.02)),
        cx=width / 2.0,
        cy=height / 2.0,
        k1=-rng.uniform(0.0008, 0.002),
        k2=rng.uniform(0.00005, 0.0003),
        p1=rng.uniform(0.0004, 0.001) * rng.choice([-1.0, 1.0]),
        p2=rng.uniform(0.0004, 0.001) * rng.choice([-1.0, 1.0]),
    )


def qvec2rotmat(q: np.ndarray) -> np.ndarray:
    """COLMAP ``qvec2rotmat``: scalar-first unit quaternion to a rotation matrix."""
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * y * y - 2 * z * z, 2 * x * y - 2 * w * z, 2 * z * x + 2 * w * y],
            [2 * x * y + 2 * w * z, 1 - 2 * x * x - 2 * z * z, 2 * y * z - 2 * w * x],
            [2 * z * x - 2 * w * y, 2 * y * z + 2 * w * x, 1 - 2 * x * x - 2 * y * y],
        ]
    )


def rotmat2qvec(r: np.ndarray) -> np.ndarray:
    """Rotation matrix to a scalar-first unit quaternion with non-negative w (COLMAP)."""
    rxx, ryx, rzx, rxy, ryy, rzy, rxz, ryz, rzz = r.flat
    k = (
        np.array(
            [
                [rxx - ryy - rzz, 0, 0, 0],
                [ryx + rxy, ryy - rxx - rzz, 0, 0],
                [rzx + rxz, rzy + ryz, rzz - rxx - ryy, 0],
                [ryz - rzy, rzx - rxz, rxy - ryx, rxx + ryy + rzz],
            ]
        )
        / 3.0
    )
    eigvals, eigvecs = np.linalg.eigh(k)
    q = eigvecs[[3, 0, 1, 2], np.argmax(eigvals)]
    return -q if q[0] < 0 else q


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly random rotation matrix."""
    q = rng.normal(size=4)
    return qvec2rotmat(q / np.linalg.norm(q))


def rot_z(angle: float) -> np.ndarray:
    """Rotation about the z axis."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def look_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-to-world rotation (columns = camera x right, y down, z forward) in a z-up world."""
    fwd = np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)])
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    c, s = np.cos(roll), np.sin(roll)
    return np.stack([c * right + s * down, -s * right + c * down, fwd], axis=1)


def rigid(r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """4x4 homogeneous matrix from a rotation and a translation."""
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = t
    return m


@dataclass(frozen=True)
class Similarity:
    """``X_out = scale * R @ X + t``: maps the metric scene frame to the written world frame."""

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    @classmethod
    def random(cls, rng: np.random.Generator) -> Similarity:
        """Random rotation, scale log-uniform in [0.3, 3] and translation of a few units."""
        scale = float(np.exp(rng.uniform(np.log(0.3), np.log(3.0))))
        return cls(scale, random_rotation(rng), rng.normal(0.0, 2.0, 3) * scale)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Transform points ``(..., 3)`` from the metric frame to the written frame."""
        return self.scale * x @ self.rotation.T + self.translation

    def world_to_camera(self, w2c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rewrite a metric world-to-camera 4x4 pose as ``(R, t)`` for the written frame."""
        r = w2c[:3, :3] @ self.rotation.T
        return r, self.scale * w2c[:3, 3] - r @ self.translation
