"""Motion masks of a whole video: flow to the neighbouring registered frames, minus the flow
that the camera motion explains, scored robustly per frame and averaged over the neighbours."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lmf_gs.data.motion.flow import (
    dense_flow,
    fb_error,
    leaves_frame,
    photometric_error,
    to_gray,
)
from lmf_gs.data.motion.rigid import (
    epipolar_distance,
    epipolar_lines,
    fundamental,
    relative_pose,
    rigid_flow,
    rotation_flow,
    sfm_depth,
)
from lmf_gs.data.motion.score import combine, robust_scale, squash
from lmf_gs.data.scene import Scene
from lmf_gs.errors import DataError

RESIDUALS = ("depth", "epipolar")
# depth of frame i [h, w] at the scene's working resolution (pinhole), or None; pixels that are
# not finite or <= 0 are filled from the SfM depth
DepthFn = Callable[[int], np.ndarray | None]


@dataclass(frozen=True)
class MotionOptions:
    """How motion is measured (defaults: the best measured on real and synthetic video).

    residual: ``depth`` = |flow - rigid flow of the depth map|; ``epipolar`` = distance of the
    flow's target to its epipolar line (no depth; the camera's rotation alone is removed for
    the photometric check). A frame without any depth is scored with ``epipolar``.
    """

    residual: str = "depth"
    offsets: tuple[int, ...] = (-1, 1)  # neighbours, in positions among the registered frames
    k: float = 3.0  # robust scale = median + k * MAD of the reliable pixels' residual
    power: float = 2.0  # score = x^p / (1 + x^p) of x = residual / robust scale
    fb_abs: float = 1.0  # reliable: forward-backward error < fb_abs + fb_rel * |flow| (px)
    fb_rel: float = 0.05
    depth_smooth: float = 0.02  # blur of the SfM depth, fraction of the image diagonal
    # photometric check: the score is multiplied by squash(gain / tolerance), gain = how much
    # worse the camera-only correspondence explains a pixel's colour than the flow does, and
    # tolerance = this x the frame's median colour error of the flow (0: no check)
    photometric: float = 1.0

    def __post_init__(self) -> None:
        if self.residual not in RESIDUALS:
            raise ValueError(f"unknown residual {self.residual!r} (expected one of: "
                             f"{', '.join(RESIDUALS)})")
        if not self.offsets or 0 in self.offsets:
            raise ValueError(f"offsets must be non-zero frame offsets, got {self.offsets}")


class MotionEstimator:
    """Soft motion masks of the registered frames of ``scene`` (`frame`); visiting frames in
    order computes each pair's flows once and keeps only the frames still needed."""

    def __init__(self, scene: Scene, options: MotionOptions | None = None,
                 depth: DepthFn | None = None):
        if len(scene) < 2:
            raise DataError(f"{scene.paths.epic_fields}: {len(scene)} registered frame(s); "
                            "motion masks need at least 2")
        self.scene = scene
        self.opts = options or MotionOptions()
        self.depth_fn = depth
        self.K = scene.intrinsics.K
        self.size = (scene.width, scene.height)
        self._images: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # (rgb, grey)
        self._flows: dict[tuple[int, int], np.ndarray] = {}
        self.frames_without_depth = 0

    def neighbours(self, i: int) -> list[int]:
        """Registered-frame positions compared with frame ``i``."""
        return [i + o for o in self.opts.offsets if 0 <= i + o < len(self.scene)]

    def depth(self, i: int) -> np.ndarray | None:
        """Depth ``[h, w]`` of frame ``i``: the callback's where valid, else the SfM points'
        (None without either)."""
        w, h = self.size
        given = None if self.depth_fn is None else self.depth_fn(i)
        if given is not None:
            given = np.asarray(given, dtype=np.float32)
            if given.shape != (h, w):
                raise DataError(f"depth of {self.scene.frames[i]}: shape {given.shape}, "
                                f"expected {(h, w)}")
            bad = ~(np.isfinite(given) & (given > 0))
            if not bad.any():
                return given
        sfm = None
        if len(self.scene.points):
            sfm = sfm_depth(self.scene.points, self.scene.w2c[i], self.K, w, h,
                            self.opts.depth_smooth)
        if given is None or bad.all():
            return sfm
        fill = sfm if sfm is not None else np.median(given[~bad])
        return np.where(bad, fill, given).astype(np.float32)

    def frame(self, i: int) -> np.ndarray:
        """Soft motion mask ``[h, w]`` in [0, 1] of frame ``i`` at the working resolution."""
        self._evict(i)
        depth = None
        if self.opts.residual == "depth":
            depth = self.depth(i)
            self.frames_without_depth += depth is None
        scores, reliable = [], []
        for j in self.neighbours(i):
            s, r = self._score(i, j, depth)
            scores.append(s)
            reliable.append(r)
        return np.clip(combine(scores, reliable), 0.0, 1.0)

    def _score(self, i: int, j: int, depth: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Score ``[h, w]`` of frame ``i`` against neighbour ``j`` and where it is reliable."""
        o = self.opts
        w, h = self.size
        fwd, bwd = self._flow(i, j), self._flow(j, i)
        T = relative_pose(self.scene.w2c[i], self.scene.w2c[j])
        # without depth, the rotation's flow: as good as any for the epipolar distance
        rig = rotation_flow(self.K, T, w, h) if depth is None else rigid_flow(depth, self.K, T)
        behind = ~np.isfinite(rig).all(-1)  # static points that the target camera cannot see
        rig = np.where(behind[..., None], 0.0, rig)
        if depth is None:
            res = epipolar_distance(fwd, rig, epipolar_lines(fundamental(self.K, T), w, h))
        else:
            res = np.linalg.norm(fwd - rig, axis=-1)
        reliable = ((fb_error(fwd, bwd) < o.fb_abs + o.fb_rel * np.linalg.norm(fwd, axis=-1))
                    & ~leaves_frame(fwd) & ~behind)
        score = squash(res / robust_scale(res, reliable, o.k), o.power)
        if o.photometric > 0:
            (img_i, _), (img_j, _) = self._image(i), self._image(j)
            e_flow = photometric_error(img_i, img_j, fwd)
            gain = photometric_error(img_i, img_j, rig) - e_flow
            valid = reliable if reliable.any() else np.ones_like(reliable)
            tol = max(o.photometric * float(np.median(e_flow[valid])), 1e-4)
            score = score * squash(gain / tol, o.power)
        return score, reliable

    def _image(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i not in self._images:
            rgb = self.scene.image(i)
            self._images[i] = rgb, to_gray(rgb)
        return self._images[i]

    def _flow(self, i: int, j: int) -> np.ndarray:
        if (i, j) not in self._flows:
            self._flows[(i, j)] = dense_flow(self._image(i)[1], self._image(j)[1])
        return self._flows[(i, j)]

    def _evict(self, i: int) -> None:
        """Drop images and flows that no later frame needs (frames are visited in order)."""
        lo = i - max(abs(o) for o in self.opts.offsets)
        self._images = {k: v for k, v in self._images.items() if k >= lo}
        self._flows = {k: v for k, v in self._flows.items() if min(k) >= lo}
