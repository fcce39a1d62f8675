"""UDOS benchmark: split frames and ground-truth masks with the official label semantics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmf_gs.config import MOTION_TYPES
from lmf_gs.data.jsonio import read_json
from lmf_gs.data.masks import read_png
from lmf_gs.data.paths import ScenePaths
from lmf_gs.errors import DataError

SPLIT_KEYS = ("within_action", "outside_action", "outside_action_easy")


def load_split(path: Path) -> dict[str, dict[str, list[str]]]:
    """``udos/split/test.json``: ``{vid: {"within_action": [frames], ...}}``."""
    raw = read_json(path, "UDOS split file")
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise DataError(f"{path}: expected {{vid: {{'within_action': [...], ...}}}}")
    return raw


def split_frames(path: Path, vid: str, kind: str = "within_action") -> list[str]:
    """The frames of ``vid`` in split ``kind``; one-line error when absent."""
    split = load_split(path)
    if vid not in split:
        known = ", ".join(sorted(split)) or "none"
        raise DataError(f"{path}: unknown scene {vid!r} (videos in split: {known})")
    if kind not in split[vid]:
        raise DataError(f"{path}: video {vid} has no {kind!r} frames")
    return list(split[vid][kind])


@dataclass
class GroundTruth:
    """A GT mask under the official rules: ``positive`` and ``evaluated`` (not ignored) pixels."""

    positive: np.ndarray  # [H, W] bool
    evaluated: np.ndarray  # [H, W] bool

    @property
    def shape(self) -> tuple[int, int]:
        return self.positive.shape


def gt_from_labels(labels: np.ndarray, motion: str, source: str = "mask") -> GroundTruth:
    """Apply the official UDOS label semantics to a raw GT array (divide by 255 iff max == 255).

    dynamic: positives = mask (0/1), nothing ignored; semistatic: positives = 1, ignored = 2;
    dynamic_semistatic: positives = 1 or 3 (3 = body parts), ignored = 2.
    """
    m = labels.astype(np.float64)
    if m.max(initial=0) == 255:
        m = m / 255.0
    if motion == "dynamic":
        if not np.isin(m, (0.0, 1.0)).all():
            raise DataError(f"{source}: dynamic GT must be binary (0/1 or 0/255)")
        return GroundTruth(m == 1.0, np.ones_like(m, dtype=bool))
    if motion == "semistatic":
        return GroundTruth(m == 1.0, m != 2.0)
    if motion == "dynamic_semistatic":
        return GroundTruth((m == 1.0) | (m == 3.0), m != 2.0)
    raise ValueError(f"unknown motion type {motion!r} (expected one of {MOTION_TYPES})")


def load_gt(paths: ScenePaths, motion: str, frame: str) -> GroundTruth:
    """The GT of ``frame`` for one motion type."""
    path = paths.gt_mask(motion, frame)
    return gt_from_labels(read_png(path), motion, str(path))
