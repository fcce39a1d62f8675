"""Camera conventions against OpenCV and scipy."""

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from lmf_gs.data.camera import (
    Intrinsics,
    Remap,
    camera_centers,
    distort,
    intrinsics_from_colmap,
    quat_to_rotmat,
    undistort,
    w2c_matrices,
)
from lmf_gs.errors import DataError

DIST = (-0.05, 0.01, 0.002, -0.003)  # stronger than EPIC's, so errors would show
INTR = Intrinsics(96, 64, 60.0, 58.0, 48.0, 32.0, DIST)


def test_distort_matches_cv2_project_points():
    rng = np.random.default_rng(0)
    xy = rng.uniform(-0.8, 0.8, size=(200, 2))
    pts = np.concatenate([xy, np.ones((200, 1))], axis=1)
    uv_cv, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), INTR.K, np.array(DIST))
    uv = distort(xy, DIST) * [INTR.fx, INTR.fy] + [INTR.cx, INTR.cy]
    np.testing.assert_allclose(uv, uv_cv[:, 0], atol=1e-9)


def test_undistort_matches_cv2_undistort_points_and_inverts_distort():
    rng = np.random.default_rng(1)
    xy = rng.uniform(-0.7, 0.7, size=(200, 2))
    xy_d = distort(xy, DIST)
    np.testing.assert_allclose(undistort(xy_d, DIST), xy, atol=1e-8)
    uv_d = xy_d * [INTR.fx, INTR.fy] + [INTR.cx, INTR.cy]
    cv = cv2.undistortPoints(uv_d[:, None], INTR.K, np.array(DIST))[:, 0]
    np.testing.assert_allclose(undistort(xy_d, DIST), cv, atol=1e-4)


def test_undistort_image_matches_cv2_with_half_pixel_convention():
    """Our pixel centres sit at +0.5 (COLMAP); OpenCV's at integers, so its cx, cy are 0.5 less."""
    rng = np.random.default_rng(2)
    img = cv2.GaussianBlur(rng.uniform(0, 1, size=(64, 96)).astype(np.float32), (7, 7), 2)
    ours = Remap.undistort(INTR)(img)
    K_cv = INTR.K.copy()
    K_cv[0, 2] -= 0.5
    K_cv[1, 2] -= 0.5
    mx, my = cv2.initUndistortRectifyMap(K_cv, np.array(DIST), None, K_cv, (96, 64), cv2.CV_32FC1)
    theirs = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    np.testing.assert_allclose(ours[2:-2, 2:-2], theirs[2:-2, 2:-2], atol=2e-3)


def test_redistort_inverts_undistort_on_smooth_images():
    u, v = np.meshgrid(np.linspace(0, 1, 96), np.linspace(0, 1, 64))
    img = np.sin(4 * u) * np.cos(3 * v)
    back = Remap.redistort(INTR)(Remap.undistort(INTR)(img))
    np.testing.assert_allclose(back[4:-4, 4:-4], img[4:-4, 4:-4], atol=2e-3)


def test_quaternion_is_scalar_first_like_colmap():
    rng = np.random.default_rng(3)
    r = Rotation.random(10, random_state=4)
    xyzw = r.as_quat()
    wxyz = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], axis=1)
    np.testing.assert_allclose(quat_to_rotmat(wxyz), r.as_matrix(), atol=1e-12)
    t = rng.normal(size=(10, 3))
    w2c = w2c_matrices(wxyz, t, [f"f{i}" for i in range(10)], "x.json")
    X = rng.normal(size=3)
    np.testing.assert_allclose(w2c[0, :3, :3] @ X + t[0], r[0].apply(X) + t[0], atol=1e-12)
    # camera centre maps to the camera origin
    C = camera_centers(w2c)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", w2c[:, :3, :3], C) + t, 0, atol=1e-12)


def test_non_unit_quaternion_is_a_one_line_error():
    q = np.array([[1.0, 0, 0, 0], [0.9, 0.0, 0.0, 0.0]])
    with pytest.raises(DataError, match=r"cam\.json: non-unit quaternion for b"):
        w2c_matrices(q, np.zeros((2, 3)), ["a", "b"], "cam.json")


def test_downscaled_intrinsics_keep_projections_consistent():
    """A point projects to (u, v) at full size and (u/2, v/2) at half size (centres at +0.5)."""
    half = INTR.downscaled(2)
    assert (half.width, half.height) == (48, 32)
    X = np.array([0.3, -0.2, 2.0])
    uv = (INTR.K @ X)[:2] / X[2]
    uv_half = (half.K @ X)[:2] / X[2]
    np.testing.assert_allclose(uv_half, uv / 2)


def test_colmap_models():
    assert intrinsics_from_colmap("PINHOLE", 4, 2, [1, 2, 3, 4]).dist == (0, 0, 0, 0)
    s = intrinsics_from_colmap("SIMPLE_RADIAL", 4, 2, [5, 2, 1, 0.1])
    assert (s.fx, s.fy, s.cx, s.cy, s.dist) == (5, 5, 2, 1, (0.1, 0, 0, 0))
    with pytest.raises(ValueError, match="needs 8 params"):
        intrinsics_from_colmap("OPENCV", 4, 2, [1, 2, 3])
    with pytest.raises(ValueError, match="unsupported camera model"):
        intrinsics_from_colmap("FISHEYE", 4, 2, [1])
