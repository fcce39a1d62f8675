"""What the viewer shows: the recorded frames and the user's choices (immutable snapshots)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

LAYERS = ("static", "semistatic", "dynamic")
LAYER_LABELS = {"static": "static", "semistatic": "semi-static", "dynamic": "dynamic"}
MODES = ("RGB", "layer masks", "depth")
INSETS = ("input frame", "2D motion mask", "GT")


@dataclass(frozen=True, eq=False)
class Recording:
    """The registered frames of the video, in time order."""

    names: tuple[str, ...]
    times: np.ndarray = field(repr=False)  # [N] normalised time in [-1, 1]
    w2c: np.ndarray = field(repr=False)  # [N, 4, 4] world-to-camera (OpenCV)
    K: np.ndarray = field(repr=False)  # [3, 3] working-resolution pinhole intrinsics
    width: int
    height: int

    def __len__(self) -> int:
        return len(self.names)

    @cached_property
    def c2w(self) -> np.ndarray:
        """Camera-to-world ``[N, 4, 4]``."""
        return np.linalg.inv(self.w2c)

    def up(self) -> np.ndarray:
        """The mean camera up direction (-Y of the cameras) in the world, unit ``[3]``."""
        up = -self.c2w[:, :3, 1].mean(axis=0)
        return up / max(float(np.linalg.norm(up)), 1e-12)


@dataclass(frozen=True)
class ViewerState:
    """One snapshot of the controls; every change makes a new (hashable) snapshot."""

    n_frames: int
    frame: int = 0
    layers: frozenset[str] = frozenset(LAYERS)
    mode: str = "RGB"
    source: str = "trained"
    playing: bool = False
    speed: float = 5.0  # frames per second while playing

    def with_frame(self, frame: int) -> ViewerState:
        """The slider's frame, clamped to the registered frames."""
        return replace(self, frame=int(min(max(frame, 0), self.n_frames - 1)))

    def with_layer(self, layer: str, shown: bool) -> ViewerState:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}")
        return replace(self, layers=self.layers | {layer} if shown else self.layers - {layer})

    def with_mode(self, mode: str) -> ViewerState:
        if mode not in MODES:
            raise ValueError(f"unknown display mode {mode!r}")
        return replace(self, mode=mode)

    def step(self, frames: int = 1) -> ViewerState:
        """``frames`` frames later, wrapping around at the end (play)."""
        return replace(self, frame=(self.frame + frames) % self.n_frames)

    def time(self, rec: Recording) -> float:
        """Normalised time of the slider's frame."""
        return float(rec.times[self.frame])

    def shown_layers(self) -> tuple[str, ...]:
        """The shown layers in model order."""
        return tuple(n for n in LAYERS if n in self.layers)
