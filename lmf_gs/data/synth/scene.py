"""The full synthetic kitchen video: parts, registered frames, camera and part poses over time."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lmf_gs.data.synth.camera import Intrinsics, Similarity, epic_like_intrinsics
from lmf_gs.data.synth.kitchen import Motion, Part, build_layout, hand_parts
from lmf_gs.data.synth.motion import (
    GRASP_HEIGHT,
    CameraPath,
    Event,
    HandPath,
    Pace,
    frame_numbers,
    schedule_events,
    strided_frame_numbers,
)


class KitchenScene:
    """Deterministic egocentric kitchen video (metric world frame, z up).

    Without a ``stride`` the frame numbers advance by 1-4 (plus a few gaps) and the story is
    stretched over the whole video (`Pace.normalised`); with one, they advance by ``stride``
    +- 25% at ``fps`` frames per second and everything moves at real speed (`Pace.real_time`).
    With ``motion=False`` the same room and camera path are kept but nothing moves and there
    are no hands. :attr:`similarity` maps the metric frame to the frame the files are written in.
    """

    def __init__(self, seed: int, n_frames: int, width: int, height: int, motion: bool,
                 stride: int | None = None, fps: float = 50.0) -> None:
        rng = np.random.default_rng(seed)
        self.intrinsics: Intrinsics = epic_like_intrinsics(width, height, rng)
        # `taus`: each registered frame on the motion's clock (tau in [0, 1], or seconds)
        if stride is None:
            self.frame_numbers = frame_numbers(n_frames, rng)
            span = self.frame_numbers[-1] - self.frame_numbers[0]
            self.taus = (self.frame_numbers - self.frame_numbers[0]) / span
            pace = Pace.normalised()
        else:
            self.frame_numbers = strided_frame_numbers(n_frames, stride, rng)
            self.taus = (self.frame_numbers - self.frame_numbers[0]) / fps
            pace = Pace.real_time(float(self.taus[-1]))
        self.fps = fps
        self.duration_s = float(self.frame_numbers[-1] - self.frame_numbers[0]) / fps
        layout = build_layout(rng, n_movable=int(rng.integers(2, 4)))
        hands = hand_parts(rng)
        events = schedule_events(layout, rng, pace)
        self.camera = CameraPath(rng, events, pace)
        self.hand_paths = [HandPath(rng, side, pace) for side in (-1, 1)]
        self.similarity = Similarity.random(rng)
        if motion:
            self.parts: list[Part] = layout.parts + hands
            self.events: list[Event] = events
        else:
            self.parts = [replace(p, motion=Motion.STATIC) for p in layout.parts]
            self.events = []
        self.hand_ids = [i for i, p in enumerate(self.parts) if p.motion is Motion.HAND]
        self.transitions = self._transition_frames()

    @property
    def frame_names(self) -> list[str]:
        """EPIC frame names of the registered frames, in time order."""
        return [f"frame_{n:010d}.jpg" for n in self.frame_numbers]

    def camera_to_world(self, k: int) -> np.ndarray:
        """Camera-to-world 4x4 pose of registered frame ``k`` (metric frame)."""
        return self.camera.camera_to_world(float(self.taus[k]))

    def world_to_camera(self, k: int) -> np.ndarray:
        """World-to-camera 4x4 pose of registered frame ``k`` (metric frame)."""
        return np.linalg.inv(self.camera_to_world(k))

    def part_poses(self, k: int) -> np.ndarray:
        """Local-to-world poses ``(P, 4, 4)`` of all parts at registered frame ``k``."""
        tau = float(self.taus[k])
        poses = np.stack([p.pose for p in self.parts])
        for ev in self._current_events(tau):
            poses[ev.part] = ev.pose(tau)
        if self.hand_ids:
            c2w = self.camera_to_world(k)
            w2c = np.linalg.inv(c2w)
            for hand, (idx, path) in enumerate(zip(self.hand_ids, self.hand_paths, strict=True)):
                targets = [
                    (ev.hand_weight(tau), (w2c @ ev.pose(tau) @ [0, 0, GRASP_HEIGHT, 1])[:3])
                    for ev in self.events
                    if ev.hand == hand and ev.hand_weight(tau) > 0.0
                ]
                poses[idx] = c2w @ path.camera_pose(tau, targets)
        return poses

    def _current_events(self, tau: float) -> list[Event]:
        """Per moved part, its latest event grasped by ``tau`` (else its first one)."""
        current: dict[int, Event] = {}
        for ev in sorted(self.events, key=lambda e: e.t_grasp):
            if ev.part not in current or ev.t_grasp <= tau:
                current[ev.part] = ev
        return list(current.values())

    def carried(self, k: int) -> list[int]:
        """Indices of semi-static parts being carried at frame ``k``."""
        tau = float(self.taus[k])
        return [
            ev.part for ev in self.events
            if ev.carried(tau) and self.parts[ev.part].motion is Motion.SEMI_STATIC
        ]

    def _transition_frames(self) -> dict[int, list[int]]:
        """Frame index -> semi-static parts grasped or released at (nearest to) that frame."""
        out: dict[int, list[int]] = {}
        for ev in self.events:
            if self.parts[ev.part].motion is Motion.SEMI_STATIC:
                for t in (ev.t_grasp, ev.t_release):
                    out.setdefault(int(np.argmin(np.abs(self.taus - t))), []).append(ev.part)
        return out
