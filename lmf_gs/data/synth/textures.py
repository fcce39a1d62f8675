"""Procedural solid textures evaluated on local surface coordinates (multi-view consistent)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import Enum

import numpy as np

_OFFSET = np.array([0.371, 0.613, 0.257])  # keeps cell boundaries off planes at local 0
_PRIMES = (
    np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9)
)
_MIX = np.uint64(0xBF58476D1CE4E5B9)


def value_noise(p: np.ndarray, seed: int) -> np.ndarray:
    """Smooth 3D value noise in [0, 1] at points ``(N, 3)`` (lattice spacing 1)."""
    cell = np.floor(p)
    f = p - cell
    w = f * f * (3.0 - 2.0 * f)
    ci = cell.astype(np.int64).astype(np.uint64)
    salt = np.uint64(seed * 0x27D4EB2F165667C5 % 2**64)
    axes = [(ci[:, a] * _PRIMES[a], (ci[:, a] + np.uint64(1)) * _PRIMES[a]) for a in range(3)]
    corners = np.empty((2, 2, 2, len(p)))
    for dx, dy, dz in itertools.product((0, 1), repeat=3):
        h = axes[0][dx] ^ axes[1][dy] ^ axes[2][dz] ^ salt
        h ^= h >> np.uint64(29)
        h *= _MIX
        h ^= h >> np.uint64(32)
        corners[dx, dy, dz] = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
    for axis in range(3):  # trilinear blend, one axis at a time
        corners = corners[0] + (corners[1] - corners[0]) * w[:, axis]
    return corners


def fbm(p: np.ndarray, seed: int, octaves: int = 3) -> np.ndarray:
    """Fractal sum of value noise, normalised to [0, 1]."""
    total, norm = np.zeros(len(p)), 0.0
    for o in range(octaves):
        amp = 0.5**o
        total += amp * value_noise(p * 2.0**o + 17.0 * o, seed + o)
        norm += amp
    return total / norm


class Pattern(Enum):
    """Texture families."""

    PLAIN = "plain"
    CHECKER = "checker"
    STRIPES = "stripes"
    MARBLE = "marble"
    WOOD = "wood"
    TILES = "tiles"
    SKIN = "skin"


@dataclass(frozen=True)
class Texture:
    """A procedural albedo: pattern, two colours (RGB in [0, 1]), feature size in metres."""

    pattern: Pattern
    color_a: tuple[float, float, float]
    color_b: tuple[float, float, float]
    scale: float
    seed: int
    axis: int = 2
    grain: float = 0.12
    emissive: bool = False

    def albedo(self, local: np.ndarray) -> np.ndarray:
        """Albedo ``(N, 3)`` in [0, 1] at local surface points ``(N, 3)``."""
        p = local / self.scale + _OFFSET
        a, b = np.asarray(self.color_a), np.asarray(self.color_b)
        match self.pattern:
            case Pattern.PLAIN:
                mix = np.zeros(len(p))
            case Pattern.CHECKER:
                mix = (np.floor(p).astype(np.int64).sum(axis=1) % 2).astype(float)
            case Pattern.STRIPES:
                mix = np.clip(2.5 * np.sin(2 * np.pi * p[:, self.axis]) + 0.5, 0.0, 1.0)
            case Pattern.MARBLE:
                mix = np.clip(1.8 * fbm(p, self.seed, 3) - 0.4, 0.0, 1.0)
            case Pattern.WOOD:
                warp = 3.0 * fbm(p * [0.3, 0.3, 0.3], self.seed)
                mix = 0.5 + 0.5 * np.sin(2 * np.pi * (p[:, self.axis] + warp))
            case Pattern.TILES:
                frac = p - np.floor(p)
                edge = np.minimum(frac, 1.0 - frac)
                edge[:, self.axis] = 1.0
                mix = (edge.min(axis=1) < 0.05).astype(float)
            case Pattern.SKIN:
                mix = fbm(p * 1.7, self.seed, 3) ** 2
        color = a + (b - a) * mix[:, None]
        detail = fbm(local / (0.6 * self.scale), self.seed + 101, 2) - 0.5
        return np.clip(color * (1.0 + 2.0 * self.grain * detail[:, None]), 0.0, 1.0)
