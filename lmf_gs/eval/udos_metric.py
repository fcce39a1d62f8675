"""The official UDOS metric: per-frame AP over non-ignored pixels, mean over frames, then videos."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import average_precision_score

from lmf_gs.config import MOTION_TYPES
from lmf_gs.data.scene import resize_bilinear
from lmf_gs.data.udos import GroundTruth
from lmf_gs.errors import DataError

# predict(frame) -> {motion type: soft map [h, w]}; maps are resized to the GT size when they differ
Predictor = Callable[[str], dict[str, np.ndarray]]


def frame_ap(gt: GroundTruth, pred: np.ndarray, source: str = "prediction") -> float | None:
    """100 * average precision of ``pred`` on the evaluated pixels; None if the frame has no
    positive pixel (the official evaluator skips such frames)."""
    if not gt.positive.any():
        return None
    h, w = gt.shape
    if pred.shape != (h, w):
        if pred.ndim != 2:
            raise DataError(f"{source}: expected a single-channel map, got shape {pred.shape}")
        pred = resize_bilinear(pred, w, h)
    if not np.isfinite(pred).all():
        raise DataError(f"{source}: prediction contains NaN or inf")
    m = gt.evaluated
    return 100.0 * float(average_precision_score(gt.positive[m], pred[m]))


def layered_prediction(dynamic: np.ndarray, semistatic: np.ndarray) -> dict[str, np.ndarray]:
    """Official mapping for a layered model: dynamic <- dynamic layer; semistatic and
    dynamic_semistatic <- semi-static + dynamic layers."""
    both = semistatic + dynamic
    return {"dynamic": dynamic, "semistatic": both, "dynamic_semistatic": both}


def mean_or_nan(values: Iterable[float]) -> float:
    vals = list(values)
    return float(np.mean(vals)) if vals else math.nan


def mean_over_videos(maps: Iterable[float]) -> float:
    """Unweighted mean of video mAPs, a NaN counting as 0 (official)."""
    return mean_or_nan(0.0 if math.isnan(v) else v for v in maps)


@dataclass
class VideoResult:
    """UDOS scores of one video for one method."""

    scene: str
    method: str
    split: str
    per_frame: dict[str, dict[str, float]] = field(default_factory=dict)
    frame_count: int = 0

    @property
    def map(self) -> dict[str, float]:
        return {m: mean_or_nan(self.per_frame.get(m, {}).values()) for m in MOTION_TYPES}

    def to_json(self) -> dict:
        """The ``metrics.json`` document (NaN written as null)."""
        return {
            "scene": self.scene,
            "method": self.method,
            "split": self.split,
            "map": {m: None if math.isnan(v) else v for m, v in self.map.items()},
            "frames": {
                m: {
                    "total": self.frame_count,
                    "scored": len(self.per_frame.get(m, {})),
                    "skipped_no_positive": self.frame_count - len(self.per_frame.get(m, {})),
                }
                for m in MOTION_TYPES
            },
            "per_frame": self.per_frame,
        }


def score_video(
    scene: str,
    method: str,
    split: str,
    frames: list[str],
    load_gt: Callable[[str, str], GroundTruth],
    predict: Predictor,
    progress: Callable[[Iterable[str]], Iterable[str]] = iter,
) -> VideoResult:
    """Score ``predict`` on ``frames`` against ``load_gt(motion, frame)`` for all motion types."""
    result = VideoResult(scene, method, split, {m: {} for m in MOTION_TYPES}, len(frames))
    for frame in progress(frames):
        preds = predict(frame)
        for motion in MOTION_TYPES:
            gt = load_gt(motion, frame)
            ap = frame_ap(gt, preds[motion], f"{scene}/{frame} ({method}, {motion})")
            if ap is not None:
                result.per_frame[motion][frame] = ap
    return result
