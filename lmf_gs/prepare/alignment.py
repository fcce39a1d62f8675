"""Compare an estimated camera trajectory with reference poses, up to a similarity transform
(SfM fixes neither the world frame nor its scale)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmf_gs.data.camera import camera_centers, w2c_matrices
from lmf_gs.data.epic_fields import frame_number


@dataclass
class TrajectoryError:
    """Per-frame errors after alignment. ``centre_rel``: centre error / the reference
    trajectory's RMS distance from its mean; ``rotation_deg``: orientation error."""

    frames: int
    rotation_deg: np.ndarray  # [N]
    centre_rel: np.ndarray  # [N]
    scale: float  # reference units per estimated unit

    def summary(self) -> dict[str, float]:
        return {"frames": self.frames,
                "rotation_deg_mean": float(self.rotation_deg.mean()),
                "rotation_deg_max": float(self.rotation_deg.max()),
                "centre_rel_mean": float(self.centre_rel.mean()),
                "centre_rel_max": float(self.centre_rel.max())}


def _nearest_rotation(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(m)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    return u @ d @ vt


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity ``dst ~ s R src + t`` of point sets ``[N, 3]`` (least squares, Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = float((sig * np.diag(d)).sum() / (a * a).sum())
    return scale, rot, mu_d - scale * rot @ mu_s


def trajectory_error(est_w2c: np.ndarray, ref_w2c: np.ndarray) -> TrajectoryError:
    """Errors of world-to-camera poses ``[N, 4, 4]`` against references of the same frames.

    Camera centres are aligned with a similarity (Umeyama); orientations with the rotation
    closest to the mean of ``R_ref_i^T R_est_i`` (centres alone leave a near-straight path free
    to spin about itself).
    """
    c_est, c_ref = camera_centers(est_w2c), camera_centers(ref_w2c)
    scale, rot, shift = umeyama(c_est, c_ref)
    aligned = scale * c_est @ rot.T + shift
    spread = np.sqrt(((c_ref - c_ref.mean(0)) ** 2).sum(1).mean())
    r_est, r_ref = est_w2c[:, :3, :3], ref_w2c[:, :3, :3]
    # x_cam = R_est X_est = R_ref X_ref with X_ref = G X_est  =>  R_est = R_ref G
    g = _nearest_rotation(np.einsum("nji,njk->ik", r_ref, r_est))
    rel = np.einsum("nji,njk->nik", r_est, r_ref @ g)
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
    return TrajectoryError(
        frames=len(est_w2c),
        rotation_deg=np.degrees(np.arccos(cos)),
        centre_rel=np.linalg.norm(aligned - c_ref, axis=1) / max(spread, 1e-12),
        scale=scale,
    )


def rotation_jumps(w2c: np.ndarray, numbers: np.ndarray, floor_deg: float = 10.0,
                   factor: float = 8.0) -> list[tuple[int, int, float]]:
    """Consecutive registered frames ``(a, b, degrees)`` between which the camera turns more
    than ``floor_deg`` and ``factor`` times the video's median turn per source frame: in a
    video such jumps are mis-registered poses far more often than real motion.

    ``w2c`` ``[N, 4, 4]`` and ``numbers`` ``[N]`` in frame order.
    """
    if len(w2c) < 3:
        return []
    r = w2c[:, :3, :3]
    rel = np.einsum("nij,nkj->nik", r[1:], r[:-1])
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
    deg = np.degrees(np.arccos(cos))
    gaps = np.diff(numbers).astype(np.float64)
    per_frame = float(np.median(deg / gaps))
    limit = np.maximum(floor_deg, factor * per_frame * gaps)
    return [(int(numbers[i]), int(numbers[i + 1]), float(deg[i]))
            for i in np.flatnonzero(deg > limit)]


def pose_jumps(poses: dict[str, list[float]]) -> list[tuple[int, int, float]]:
    """`rotation_jumps` of EPIC-named world-to-camera poses ``{name: [qw, .., tz]}``."""
    names = sorted(poses, key=frame_number)
    q = np.array([poses[n] for n in names], dtype=np.float64).reshape(-1, 7)
    return rotation_jumps(w2c_matrices(q[:, :4], q[:, 4:], names, "SfM poses"),
                          np.array([frame_number(n) for n in names]))
