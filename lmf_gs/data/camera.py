"""Camera conventions: COLMAP/OpenCV intrinsics with OPENCV distortion, and quaternions.

Conventions (EPIC Fields = COLMAP = OpenCV = gsplat):
- world-to-camera poses, ``x_cam = R(q) @ X_world + t``, quaternion scalar first;
- camera looks down +z, x right, y down;
- the centre of pixel (col i, row j) is at (i + 0.5, j + 0.5), so resizing an image by a factor s
  scales fx, fy, cx, cy by s.

Undistortion is explicit and done once per image: frames and motion masks are resampled onto the
pinhole camera with the same K (`Remap.undistort`), models render pinhole images, and predictions
are resampled back onto the original distorted pixel grid (`Remap.redistort`) before they are
scored against ground truth. Both mappings use the OpenCV model below (tested against cv2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lmf_gs.errors import DataError

QUAT_UNIT_TOL = 1e-3


@dataclass(frozen=True)
class Intrinsics:
    """OPENCV camera: focal lengths, principal point (pixels) and distortion (k1, k2, p1, p2)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    dist: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    @property
    def K(self) -> np.ndarray:
        """3x3 pinhole matrix."""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], dtype=np.float64)

    @property
    def has_distortion(self) -> bool:
        return any(d != 0.0 for d in self.dist)

    def pinhole(self) -> Intrinsics:
        """The same camera without distortion."""
        return replace(self, dist=(0.0, 0.0, 0.0, 0.0))

    def downscaled(self, factor: int) -> Intrinsics:
        """The camera of the image box-downscaled by an integer ``factor`` (remainder cropped)."""
        s = 1.0 / factor
        return replace(
            self, width=self.width // factor, height=self.height // factor,
            fx=self.fx * s, fy=self.fy * s, cx=self.cx * s, cy=self.cy * s,
        )


def intrinsics_from_colmap(model: str, width: int, height: int, params: list[float]) -> Intrinsics:
    """Build `Intrinsics` from a COLMAP camera model name and its parameter list."""
    p = [float(v) for v in params]
    layouts = {
        "OPENCV": 8, "PINHOLE": 4, "SIMPLE_PINHOLE": 3, "SIMPLE_RADIAL": 4, "RADIAL": 5,
    }
    if model not in layouts:
        raise ValueError(f"unsupported camera model {model!r} (expected one of {sorted(layouts)})")
    if len(p) != layouts[model]:
        raise ValueError(f"camera model {model} needs {layouts[model]} params, got {len(p)}")
    if model == "OPENCV":
        fx, fy, cx, cy, k1, k2, p1, p2 = p
    elif model == "PINHOLE":
        (fx, fy, cx, cy), (k1, k2, p1, p2) = p, (0.0, 0.0, 0.0, 0.0)
    else:
        f, cx, cy, *radial = p
        fx = fy = f
        k1, k2 = ([*radial, 0.0, 0.0])[:2]
        p1 = p2 = 0.0
    return Intrinsics(int(width), int(height), fx, fy, cx, cy, (k1, k2, p1, p2))


def distort(xy: np.ndarray, dist: tuple[float, float, float, float]) -> np.ndarray:
    """OpenCV distortion of normalised image coordinates ``[..., 2]`` (cv2.projectPoints model)."""
    k1, k2, p1, p2 = dist
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = 1.0 + k1 * r2 + k2 * r2 * r2
    xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    return np.stack([xd, yd], axis=-1)


def undistort(
    xy_d: np.ndarray, dist: tuple[float, float, float, float], iters: int = 20
) -> np.ndarray:
    """Inverse of `distort` by fixed-point iteration (as cv2.undistortPoints). ``[..., 2]``."""
    k1, k2, p1, p2 = dist
    xy = xy_d.copy()
    for _ in range(iters):
        x, y = xy[..., 0], xy[..., 1]
        r2 = x * x + y * y
        radial = 1.0 + k1 * r2 + k2 * r2 * r2
        dx = 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
        dy = p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
        xy = np.stack([(xy_d[..., 0] - dx) / radial, (xy_d[..., 1] - dy) / radial], axis=-1)
    return xy


def pixel_grid(width: int, height: int) -> np.ndarray:
    """Pixel-centre coordinates ``[H, W, 2]`` (u, v) with centres at +0.5."""
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    return np.stack([u, v], axis=-1)


class Remap:
    """Bilinear resampling of images between the distorted and the pinhole pixel grid."""

    def __init__(self, src_uv: np.ndarray, src_size: tuple[int, int]):
        """``src_uv[H, W, 2]``: where each output pixel samples the source (pixel coords, +0.5)."""
        w, h = src_size
        # continuous coords -> array indices, clamped (edge replication, as cv2 BORDER_REPLICATE)
        x = np.clip(src_uv[..., 0] - 0.5, 0, w - 1)
        y = np.clip(src_uv[..., 1] - 0.5, 0, h - 1)
        x0 = np.minimum(np.floor(x).astype(np.int64), w - 2 if w > 1 else 0)
        y0 = np.minimum(np.floor(y).astype(np.int64), h - 2 if h > 1 else 0)
        self._fx = (x - x0).astype(np.float32)[..., None]
        self._fy = (y - y0).astype(np.float32)[..., None]
        x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
        self._idx = (y0, x0, y1, x1)
        self.out_size = (src_uv.shape[1], src_uv.shape[0])

    @classmethod
    def undistort(cls, intr: Intrinsics) -> Remap:
        """Resample an image of camera ``intr`` onto the pinhole camera with the same K."""
        xy = (pixel_grid(intr.width, intr.height) - [intr.cx, intr.cy]) / [intr.fx, intr.fy]
        uv = distort(xy, intr.dist) * [intr.fx, intr.fy] + [intr.cx, intr.cy]
        return cls(uv, (intr.width, intr.height))

    @classmethod
    def redistort(cls, intr: Intrinsics) -> Remap:
        """Resample a pinhole image (same K) back onto the distorted grid of camera ``intr``."""
        xy_d = (pixel_grid(intr.width, intr.height) - [intr.cx, intr.cy]) / [intr.fx, intr.fy]
        uv = undistort(xy_d, intr.dist) * [intr.fx, intr.fy] + [intr.cx, intr.cy]
        return cls(uv, (intr.width, intr.height))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Resample ``[H, W]`` or ``[H, W, C]`` float image; returns float32 of the same layout."""
        img = image.astype(np.float32, copy=False)
        squeeze = img.ndim == 2
        if squeeze:
            img = img[..., None]
        y0, x0, y1, x1 = self._idx
        top = img[y0, x0] * (1 - self._fx) + img[y0, x1] * self._fx
        bottom = img[y1, x0] * (1 - self._fx) + img[y1, x1] * self._fx
        out = top * (1 - self._fy) + bottom * self._fy
        return out[..., 0] if squeeze else out


def quat_to_rotmat(q: np.ndarray) -> np.ndarray:
    """Scalar-first unit quaternions ``[..., 4]`` (qw, qx, qy, qz) to rotations ``[..., 3, 3]``."""
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack([
        1 - 2 * y * y - 2 * z * z, 2 * x * y - 2 * w * z, 2 * z * x + 2 * w * y,
        2 * x * y + 2 * w * z, 1 - 2 * x * x - 2 * z * z, 2 * y * z - 2 * w * x,
        2 * z * x - 2 * w * y, 2 * y * z + 2 * w * x, 1 - 2 * x * x - 2 * y * y,
    ], axis=-1).reshape(*q.shape[:-1], 3, 3)


def w2c_matrices(qvecs: np.ndarray, tvecs: np.ndarray, names: list[str], source: str) -> np.ndarray:
    """World-to-camera 4x4 matrices ``[N, 4, 4]`` from COLMAP qvecs ``[N, 4]`` and tvecs ``[N, 3]``.

    Raises `DataError` naming ``source`` and the frame when a quaternion is not unit length.
    """
    norms = np.linalg.norm(qvecs, axis=1)
    bad = np.flatnonzero(np.abs(norms - 1.0) > QUAT_UNIT_TOL)
    if bad.size:
        i = bad[0]
        raise DataError(
            f"{source}: non-unit quaternion for {names[i]} (|q| = {norms[i]:.6f}); "
            f"{bad.size} pose(s) affected"
        )
    w2c = np.tile(np.eye(4), (len(names), 1, 1))
    w2c[:, :3, :3] = quat_to_rotmat(qvecs / norms[:, None])
    w2c[:, :3, 3] = tvecs
    return w2c


def camera_centers(w2c: np.ndarray) -> np.ndarray:
    """Camera centres ``C = -R^T t`` ``[N, 3]`` from world-to-camera matrices ``[N, 4, 4]``."""
    R, t = w2c[:, :3, :3], w2c[:, :3, 3]
    return -np.einsum("nji,nj->ni", R, t)
