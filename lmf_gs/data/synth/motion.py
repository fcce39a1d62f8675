"""Time-dependent motion: frame numbering, pick-and-place events, head trajectory and hands.

All motion is a function of the scene's clock, in the unit of its `Pace`:

- `Pace.normalised` (the default): ``tau = (f - f_first) / (f_last - f_first)`` for EPIC frame
  number ``f``, so every video contains the same story whatever its length;
- `Pace.real_time` (EPIC's time base): seconds, ``(f - f_first) / fps``; hands and head move at
  real speed (a reach takes 1-2 s) and objects are moved a few times over the video.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

from lmf_gs.data.synth.camera import look_rotation, rigid, rot_z
from lmf_gs.data.synth.kitchen import COUNTER_TOP, Layout, Motion

GRASP_HEIGHT = 0.06  # grasp point above an object's base (m)
MAX_WALK = 0.8  # metres walked between two handled objects


def smoother(x: np.ndarray | float) -> np.ndarray:
    """C2 smooth step from 0 (x <= 0) to 1 (x >= 1)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6.0 * x - 15.0) + 10.0)


def frame_numbers(n: int, rng: np.random.Generator) -> np.ndarray:
    """Increasing, non-contiguous EPIC frame numbers: steps of 1-4 plus a few larger gaps."""
    steps = rng.choice([1, 2, 3, 4], size=n - 1, p=[0.2, 0.35, 0.3, 0.15])
    gaps = rng.choice(n - 1, size=min(n - 1, 1 + (n - 1) // 40), replace=False)
    steps[gaps] = rng.integers(10, 40, len(gaps))
    return int(rng.integers(30, 5000)) + np.concatenate([[0], np.cumsum(steps)])


def strided_frame_numbers(n: int, stride: int, rng: np.random.Generator) -> np.ndarray:
    """EPIC Fields-like registered frame numbers: steps of ``stride`` +- 25% (mean ``stride``),
    so ``n`` frames span about ``(n - 1) * stride`` frame numbers."""
    jitter = stride // 4
    steps = stride + rng.integers(-jitter, jitter + 1, size=n - 1)
    return int(rng.integers(30, 5000)) + np.concatenate([[0], np.cumsum(steps)])


Range = tuple[float, float]


@dataclass(frozen=True)
class Pace:
    """Time constants of the motion, in the unit of the scene's clock (ranges are drawn
    uniformly; frequencies are cycles per unit)."""

    duration: float  # the video, first to last registered frame
    moves_per_object: int = 1  # carried objects go back and forth; the nudged bowl moves once
    # event durations in the clock's unit, each capped to its share of the event's slot; None:
    # shares of the slot (carry 0.25-0.35, push 0.08-0.12, reach 0.2)
    carry: Range | None = None
    push: Range | None = None
    reach: Range | None = None
    glance_gap: Range = (0.09, 0.15)  # between two things the head looks at
    glance_margin: float = 0.06  # no glance this close before/after handling an object
    yaw_freqs: tuple[Range, Range] = ((2, 5), (6, 10))  # two head oscillations
    pitch_freq: Range = (3, 6)
    roll_freq: Range = (2, 5)
    bob_freq: Range = (8, 14)
    hand_freq: Range = (1, 4)  # idle hand sway
    hand_drop_freq: Range = (1, 2.5)  # a hand now and then drops out of view

    @classmethod
    def normalised(cls) -> Pace:
        """The story stretched over the whole video, whatever its length (clock: tau in [0, 1])."""
        return cls(duration=1.0)

    @classmethod
    def real_time(cls, duration_s: float) -> Pace:
        """Real speed (clock: seconds): reaches of 1-2 s, carries of 2-4 s, a glance every
        1.5-4 s, hands swaying at 0.1-0.4 Hz; each carried object moved once per started
        100 s, at most 3 times."""
        return cls(
            duration=duration_s, moves_per_object=int(min(3, 1 + duration_s // 100)),
            carry=(2.0, 4.0), push=(0.5, 1.0), reach=(1.0, 2.0),
            glance_gap=(1.5, 4.0), glance_margin=1.0,
            yaw_freqs=((0.05, 0.12), (0.2, 0.35)), pitch_freq=(0.08, 0.2), roll_freq=(0.05, 0.15),
            bob_freq=(0.3, 0.6), hand_freq=(0.1, 0.4), hand_drop_freq=(0.01, 0.03),
        )


@dataclass(frozen=True)
class Event:
    """A hand grasps ``part`` at ``t_grasp``, moves it from ``start`` to ``end``, lets go."""

    part: int
    hand: int  # 0 = left, 1 = right
    start: np.ndarray
    end: np.ndarray
    t_grasp: float
    t_release: float
    reach: float  # duration of the hand's approach / retreat
    lift: float  # height of the carrying arc (0 for a push)

    def pose(self, tau: float) -> np.ndarray:
        """Local-to-world pose of the object at time ``tau``."""
        s = float(smoother((tau - self.t_grasp) / (self.t_release - self.t_grasp)))
        rel = self.start[:3, :3].T @ self.end[:3, :3]
        yaw = np.arctan2(rel[1, 0], rel[0, 0])
        pos = (1 - s) * self.start[:3, 3] + s * self.end[:3, 3]
        pos[2] += self.lift * np.sin(np.pi * s)
        return rigid(self.start[:3, :3] @ rot_z(s * yaw), pos)

    def carried(self, tau: float) -> bool:
        """Whether the object is in motion at ``tau``."""
        return self.t_grasp < tau < self.t_release

    def hand_weight(self, tau: float) -> float:
        """How far the hand is engaged with the object: 0 idle, 1 holding it."""
        up = smoother((tau - self.t_grasp + self.reach) / self.reach)
        down = smoother((self.t_release + self.reach - tau) / self.reach)
        return float(min(up, down))


def schedule_events(layout: Layout, rng: np.random.Generator, pace: Pace) -> list[Event]:
    """Every movable part moved ``pace.moves_per_object`` times (the nudged bowl once), back
    and forth between its two places, in random order, one per slot spread over the video."""
    n = len(layout.moves)
    order = [(m, rep) for rep in range(pace.moves_per_object) for m in rng.permutation(n)
             if rep == 0 or layout.parts[layout.moves[m][0]].motion is not Motion.NUDGED]
    slot = 0.9 * pace.duration / len(order)
    events = []
    for i, (m, rep) in enumerate(order):
        part, dest = layout.moves[m]
        start, end = (layout.parts[part].pose, dest)[:: 1 if rep % 2 == 0 else -1]
        push = layout.parts[part].motion is Motion.NUDGED
        t_grasp = 0.05 * pace.duration + (i + rng.uniform(0.35, 0.45)) * slot
        share = rng.uniform(0.08, 0.12) if push else rng.uniform(0.25, 0.35)
        if pace.carry is None:
            duration, reach = share * slot, 0.2 * slot
        else:
            duration = min(rng.uniform(*(pace.push if push else pace.carry)), share * slot)
            reach = min(rng.uniform(*pace.reach), 0.2 * slot)
        events.append(Event(
            part=part, hand=int(rng.uniform() < 0.75), start=start, end=end,
            t_grasp=t_grasp, t_release=t_grasp + duration, reach=reach,
            lift=0.0 if push else rng.uniform(0.08, 0.18),
        ))
    return events


def _yaw_pitch(eye: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    d = target - eye
    return float(np.arctan2(d[1], d[0])), float(np.arctan2(d[2], np.hypot(d[0], d[1])))


def _wrap(a: np.ndarray | float) -> np.ndarray:
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


class CameraPath:
    """Head trajectory: stands at the counter in front of each handled object, walks between
    such stations, glances around in between; plus head oscillations and walking bob."""

    def __init__(self, rng: np.random.Generator, events: list[Event], pace: Pace) -> None:
        self.events = sorted(events, key=lambda e: e.t_grasp)
        end, margin = pace.duration, pace.glance_margin
        eye_keys: list[tuple[float, np.ndarray]] = []
        look_keys: list[tuple[float, np.ndarray | None]] = []
        x = 0.5 * (self.events[0].start[0, 3] + self.events[0].end[0, 3])
        for ev in self.events:
            goal = 0.5 * (ev.start[0, 3] + ev.end[0, 3]) + rng.uniform(-0.12, 0.12)
            x += np.clip(goal - x, -MAX_WALK, MAX_WALK)
            station = self._station(rng, x)
            t0, t1 = ev.t_grasp - 1.2 * ev.reach, ev.t_release + 0.5 * ev.reach
            eye_keys += [(t0, station), (t1, station + rng.normal(0, 0.03, 3) * [1, 1, 0.3])]
            look_keys += [(t0, self._grasp_point(ev.start)), (t1, self._grasp_point(ev.end))]
        first, last = eye_keys[0][1], eye_keys[-1][1]
        eye_keys = [(0.0, self._station(rng, first[0] + rng.uniform(-0.4, 0.4))), *eye_keys,
                    (end, self._station(rng, last[0] + rng.uniform(-0.4, 0.4)))]
        self._eye = PchipInterpolator([k[0] for k in eye_keys], [k[1] for k in eye_keys])
        glances: list[tuple[float, np.ndarray | None]] = []
        bounds = [0.0, *[k[0] for k in look_keys], end]
        for ta, tb in itertools.pairwise(bounds):
            t = ta + (0.0 if ta == 0.0 else margin)
            while t <= tb - (0.0 if tb == end else margin):
                glances.append((t, None))
                t += rng.uniform(*pace.glance_gap)
        keys = sorted(glances + look_keys, key=lambda k: k[0])
        times = np.array([k[0] for k in keys])
        angles = np.array([
            _yaw_pitch(self._eye(t), self._glance(rng, self._eye(t)) if f is None else f)
            for t, f in keys
        ])
        angles[:, 0] = np.unwrap(angles[:, 0])
        self._angles = PchipInterpolator(times, angles)
        (f1, f2) = pace.yaw_freqs
        self._osc = [(rng.uniform(0.03, 0.06), rng.uniform(*f1), rng.uniform(0, 2 * np.pi)),
                     (rng.uniform(0.01, 0.02), rng.uniform(*f2), rng.uniform(0, 2 * np.pi))]
        self._pitch_osc = (rng.uniform(0.02, 0.04), rng.uniform(*pace.pitch_freq),
                           rng.uniform(0, 2 * np.pi))
        self._roll_osc = (rng.uniform(0.01, 0.03), rng.uniform(*pace.roll_freq),
                          rng.uniform(0, 2 * np.pi))
        self._bob = (rng.uniform(0.004, 0.01), rng.uniform(*pace.bob_freq),
                     rng.uniform(0, 2 * np.pi))

    @staticmethod
    def _station(rng: np.random.Generator, x: float) -> np.ndarray:
        """Standing position in front of the back counter (eye height)."""
        return np.array([np.clip(x, 0.9, 3.3), rng.uniform(2.42, 2.58), rng.uniform(1.5, 1.62)])

    @staticmethod
    def _glance(rng: np.random.Generator, eye: np.ndarray) -> np.ndarray:
        """Something to look at from ``eye``: the counter, the cupboard, side counter, window."""
        u = rng.uniform()
        if eye[0] < 1.7 and u < 0.25:
            return np.array([rng.uniform(0.1, 0.5), rng.uniform(1.5, 2.6), COUNTER_TOP + 0.05])
        if eye[0] > 2.5 and u < 0.15:
            return np.array([4.2, rng.uniform(1.2, 2.0), rng.uniform(1.3, 1.8)])
        z = 1.7 if u > 0.88 else COUNTER_TOP + rng.uniform(0.0, 0.15)
        return np.array([eye[0] + rng.uniform(-0.7, 0.7), rng.uniform(3.0, 3.35), z])

    @staticmethod
    def _grasp_point(pose: np.ndarray) -> np.ndarray:
        """Where the head looks while handling an object: a little behind and above it."""
        return pose[:3, 3] + [0.0, 0.15, 0.05]

    def camera_to_world(self, tau: float) -> np.ndarray:
        """Camera-to-world 4x4 pose at clock time ``tau`` (independent of whether objects
        really move)."""
        eye = self._eye(tau)
        yaw, pitch = self._angles(tau)
        for ev in self.events:
            w = ev.hand_weight(tau)
            if w > 0.0:
                ey, ep = _yaw_pitch(eye, self._grasp_point(ev.pose(tau)))
                yaw += w * _wrap(ey - yaw)
                pitch += w * (ep - pitch)
        yaw += sum(a * np.sin(2 * np.pi * f * tau + p) for a, f, p in self._osc)
        a, f, p = self._pitch_osc
        pitch += a * np.sin(2 * np.pi * f * tau + p)
        a, f, p = self._roll_osc
        roll = a * np.sin(2 * np.pi * f * tau + p)
        a, f, p = self._bob
        eye = eye + np.array([0.0, 0.0, a * np.sin(2 * np.pi * f * tau + p)])
        return rigid(look_rotation(yaw, pitch, roll), eye)


class HandPath:
    """Idle hand motion near the bottom of the view, blended towards grasped objects."""

    def __init__(self, rng: np.random.Generator, side: int, pace: Pace) -> None:
        self.side = side
        self.base = np.array([side * rng.uniform(0.11, 0.16), rng.uniform(0.16, 0.2),
                              rng.uniform(0.38, 0.45)])
        self.anchor = np.array([side * 0.22, 0.42, -0.15])  # shoulder, in the camera frame
        self.amp = rng.uniform(0.6, 1.0, (2, 3)) * [0.035, 0.03, 0.05]
        self.freq = rng.uniform(*pace.hand_freq, (2, 3))
        self.phase = rng.uniform(0, 2 * np.pi, (2, 3))
        self.drop = (rng.uniform(*pace.hand_drop_freq), rng.uniform(0, 2 * np.pi))

    def camera_pose(self, tau: float, targets: list[tuple[float, np.ndarray]]) -> np.ndarray:
        """Hand-to-camera 4x4 pose; ``targets`` are (weight, camera-frame grasp point) pairs."""
        wave = self.amp * np.sin(2 * np.pi * self.freq * tau + self.phase)
        palm = self.base + wave.sum(axis=0)
        palm[1] += 0.1 * max(0.0, np.sin(2 * np.pi * self.drop[0] * tau + self.drop[1])) ** 4
        for w, target in targets:
            grip = target - 0.05 * target / np.linalg.norm(target) + [0.0, -0.015, 0.0]
            palm = (1 - w) * palm + w * grip
        z = palm - self.anchor
        z /= np.linalg.norm(z)
        x = np.cross([0.0, 1.0, 0.0], z)
        x /= np.linalg.norm(x)
        roll = self.side * (0.3 + 0.15 * np.sin(2 * np.pi * self.freq[0, 0] * tau))
        x = np.cos(roll) * x + np.sin(roll) * np.cross(z, x)
        return rigid(np.stack([x, np.cross(z, x), z], axis=1), palm)
