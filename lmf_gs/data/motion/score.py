"""Per-frame robust scores: residual motion in pixels -> soft motion score in [0, 1]."""

from __future__ import annotations

import numpy as np


def robust_scale(values: np.ndarray, valid: np.ndarray, k: float = 3.0) -> float:
    """``median + k * MAD`` of ``values`` over the ``valid`` pixels (all when none is valid):
    the residual that a static pixel of this frame rarely exceeds."""
    v = values[valid] if valid.any() else values.ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 1.0
    med = float(np.median(v))
    mad = float(np.median(np.abs(v - med)))
    return max(med + k * mad, 1e-6)


def squash(x: np.ndarray, power: float = 2.0) -> np.ndarray:
    """``x^p / (1 + x^p)``: 0 at 0, 0.5 at 1 (the robust scale), towards 1 above; monotone
    without saturating, so the ranking that AP measures is kept."""
    xp = np.power(np.maximum(x, 0.0), power)
    return (xp / (1.0 + xp)).astype(np.float32)


def combine(scores: list[np.ndarray], reliable: list[np.ndarray]) -> np.ndarray:
    """One map ``[H, W]`` from the scores of several neighbours, each ``[H, W]`` with a boolean
    ``reliable`` map (forward-backward consistent, target inside the frame): a pixel takes the
    mean over the neighbours where it is reliable, over all of them where it is nowhere."""
    s, r = np.stack(scores), np.stack(reliable)
    w = np.where(r.any(0)[None], r, True).astype(np.float32)
    return (s * w).sum(0) / w.sum(0)
