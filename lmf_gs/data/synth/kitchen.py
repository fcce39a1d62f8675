"""Kitchen layout: room, counters, cupboards, static objects, movable objects and hands (metres)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

import numpy as np

from lmf_gs.data.synth.camera import rigid, rot_z
from lmf_gs.data.synth.meshes import Mesh, box, capsule, cylinder, ellipsoid, merge, quad
from lmf_gs.data.synth.textures import Pattern, Texture

ROOM = (4.2, 3.5, 2.6)
COUNTER_TOP = 0.9
BACK_FRONT_ROW = 3.07
BACK_BACK_ROW = 3.33


class Motion(Enum):
    """How a part moves during the video."""

    STATIC = "static"
    SEMI_STATIC = "semi_static"  # picked up, carried (dynamic), put down elsewhere
    NUDGED = "nudged"  # pushed a few centimetres once: ambiguous in the ground truth
    HAND = "hand"  # hand and forearm, posed in the camera frame


@dataclass(frozen=True)
class Part:
    """A rigid body: local mesh, albedo texture and rest pose (local-to-world 4x4)."""

    name: str
    motion: Motion
    mesh: Mesh
    texture: Texture
    pose: np.ndarray


@dataclass(frozen=True)
class Layout:
    """All parts plus, for each movable part, the index and its destination pose."""

    parts: list[Part]
    moves: list[tuple[int, np.ndarray]]


def _color(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> tuple:
    """Random RGB colour from saturation/value ranges and a random hue."""
    h, s, v = rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val)
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    rgb = v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return tuple(float(c) for c in rgb)


def _pick(rng: np.random.Generator, palette: list[tuple[float, float, float]]) -> tuple:
    """A palette colour with a little random variation."""
    base = np.asarray(palette[rng.integers(len(palette))])
    return tuple(float(c) for c in np.clip(base * rng.uniform(0.92, 1.08, 3), 0.0, 1.0))


_PASTELS = [(0.92, 0.9, 0.84), (0.85, 0.88, 0.9), (0.86, 0.9, 0.82), (0.93, 0.86, 0.8)]
_DOORS = [(0.92, 0.92, 0.9), (0.55, 0.4, 0.27), (0.5, 0.6, 0.52), (0.25, 0.3, 0.42)]
_WOODS = [(0.62, 0.45, 0.3), (0.5, 0.35, 0.22), (0.75, 0.6, 0.42)]
_STONES = [(0.35, 0.35, 0.37), (0.8, 0.8, 0.78), (0.2, 0.2, 0.22)]


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31))


def _texture(rng: np.random.Generator, pattern: Pattern, scale: float) -> Texture:
    """Object texture: a saturated colour and a contrasting lighter one."""
    a = _color(rng, (0.45, 0.85), (0.35, 0.85))
    b = _color(rng, (0.0, 0.3), (0.75, 0.95))
    return Texture(pattern, a, b, scale, _seed(rng))


def _room(rng: np.random.Generator) -> list[Part]:
    """Floor, walls, ceiling, window, counters, cupboards and fridge (all static)."""
    lx, ly, lz = ROOM
    ex, ey, ez = np.eye(3)

    def plane(name: str, corner: tuple, u: np.ndarray, v: np.ndarray, tex: Texture) -> Part:
        return Part(name, Motion.STATIC, quad(np.zeros(3), u, v), tex, rigid(np.eye(3), corner))

    def solid(name: str, size: tuple, center: tuple, tex: Texture) -> Part:
        return Part(name, Motion.STATIC, box(size), tex, rigid(np.eye(3), center))

    light, dark = _pick(rng, _PASTELS), _pick(rng, _STONES)
    floor = Texture(Pattern.CHECKER, light, tuple(0.7 * c for c in dark), 0.3, _seed(rng))
    wall_a = _pick(rng, _PASTELS)
    wall = Texture(Pattern.MARBLE, wall_a, tuple(0.85 * c for c in wall_a), 0.4, _seed(rng))
    tile_a = _pick(rng, _PASTELS)
    tiles = Texture(Pattern.TILES, tile_a, tuple(0.6 * c for c in tile_a), 0.15, _seed(rng),
                    axis=1)
    sky = Texture(Pattern.MARBLE, (0.75, 0.85, 1.0), (1.0, 1.0, 1.0), 0.3, _seed(rng),
                  grain=0.05, emissive=True)
    ceiling = Texture(Pattern.PLAIN, (0.9, 0.9, 0.88), (0.9, 0.9, 0.88), 0.5, _seed(rng),
                      grain=0.04)
    door_a = _pick(rng, _DOORS)
    doors = Texture(Pattern.TILES, door_a, tuple(0.55 * c for c in door_a), 0.5, _seed(rng),
                    axis=1)
    if rng.uniform() < 0.5:
        wood = _pick(rng, _WOODS)
        top = Texture(Pattern.WOOD, wood, tuple(0.75 * c for c in wood), 0.06, _seed(rng))
    else:
        stone = _pick(rng, _STONES)
        top = Texture(Pattern.MARBLE, stone, tuple(min(1.0, 1.4 * c + 0.1) for c in stone),
                      0.05, _seed(rng))
    fridge_c = _pick(rng, [(0.9, 0.9, 0.9), (0.7, 0.72, 0.74)])
    fridge = Texture(Pattern.PLAIN, fridge_c, fridge_c, 0.3, _seed(rng), grain=0.05)
    return [
        plane("floor", (0, 0, 0), lx * ex, ly * ey, floor),
        plane("ceiling", (0, 0, lz), lx * ex, ly * ey, ceiling),
        plane("wall_back", (0, ly, 0), lx * ex, lz * ez, tiles),
        plane("wall_front", (0, 0, 0), lx * ex, lz * ez, wall),
        plane("wall_left", (0, 0, 0), ly * ey, lz * ez, wall),
        plane("wall_right", (lx, 0, 0), ly * ey, lz * ez, wall),
        plane("window", (lx - 0.01, 0.9, 1.1), 1.3 * ey, 0.9 * ez, sky),
        solid("counter_back", (3.8, 0.6, 0.86), (1.9, 3.2, 0.43), doors),
        solid("counter_side", (0.6, 1.9, 0.86), (0.3, 1.95, 0.43), replace(doors, axis=0)),
        solid("top_back", (3.84, 0.66, 0.04), (1.92, 3.17, COUNTER_TOP - 0.02), top),
        solid("top_side", (0.66, 1.9, 0.04), (0.33, 1.95, COUNTER_TOP - 0.02), top),
        solid("cupboard", (2.4, 0.35, 0.7), (2.2, ly - 0.175, 1.85), doors),
        solid("fridge", (0.7, 0.7, 1.9), (lx - 0.35, 0.65, 0.95), fridge),
    ]


def _object_mesh(kind: str, rng: np.random.Generator) -> Mesh:
    """A kitchen object standing on z = 0 in its local frame."""
    s = rng.uniform(0.85, 1.15)
    match kind:
        case "cereal_box":
            return box((0.19 * s, 0.07, 0.28 * s), (0, 0, 0.14 * s))
        case "toaster":
            return box((0.26, 0.16 * s, 0.18 * s), (0, 0, 0.09 * s))
        case "small_box":
            return box((0.11 * s, 0.08, 0.13 * s), (0, 0, 0.065 * s))
        case "jar":
            return merge([cylinder(0.05 * s, 0.14 * s), cylinder(0.053 * s, 0.02, base_z=0.14 * s)])
        case "tin":
            return cylinder(0.04 * s, 0.1 * s)
        case "pot":
            return cylinder(0.11 * s, 0.12 * s, segments=40)
        case "plate":
            return cylinder(0.12 * s, 0.015, segments=40)
        case "board":
            return box((0.26, 0.18, 0.02), (0, 0, 0.01))
        case "kettle":
            h = 0.17 * s
            handle = capsule((0.012, 0.012, 0.012), 0.1).transformed(
                np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]]), np.array([0.0, 0.0, h + 0.06]))
            return merge([cylinder(0.08, h), ellipsoid((0.08, 0.08, 0.04)).transformed(
                np.eye(3), np.array([0.0, 0.0, h])), handle])
        case "cup":
            handle = capsule((0.01, 0.01, 0.01), 0.04).transformed(np.eye(3), np.array(
                [0.045 * s, 0.0, 0.05 * s]))
            return merge([cylinder(0.04 * s, 0.1 * s), handle])
        case "bottle":
            return merge([cylinder(0.035 * s, 0.18 * s), cylinder(0.014, 0.07, base_z=0.18 * s)])
        case "bowl":
            return ellipsoid((0.085 * s, 0.085 * s, 0.045)).transformed(
                np.eye(3), np.array([0.0, 0.0, 0.045]))
    raise ValueError(kind)


_STATIC_KINDS = ("cereal_box", "toaster", "jar", "tin", "pot", "plate", "board", "kettle")
_MOVABLE_KINDS = ("cup", "bottle", "small_box")
_PATTERNS = (Pattern.CHECKER, Pattern.STRIPES, Pattern.MARBLE, Pattern.WOOD)


def _on_counter(rng: np.random.Generator, x: float, y: float) -> np.ndarray:
    """Rest pose on a counter top with a random yaw."""
    return rigid(rot_z(rng.uniform(-np.pi, np.pi)), np.array([x, y, COUNTER_TOP]))


def build_layout(rng: np.random.Generator, n_movable: int) -> Layout:
    """Room plus objects on the counters; ``n_movable`` carried objects and one nudged bowl."""
    parts = _room(rng)
    front = list(np.arange(0.35, 3.5, 0.3))
    rng.shuffle(front)
    moves: list[tuple[int, np.ndarray]] = []
    for kind in rng.permutation(_MOVABLE_KINDS)[:n_movable]:
        x0 = front.pop()
        dist = rng.uniform(0.3, 0.9)
        dest = min(front, key=lambda x, x0=x0, dist=dist: abs(abs(x - x0) - dist))
        front.remove(dest)
        tex = _texture(rng, _PATTERNS[rng.integers(len(_PATTERNS))], rng.uniform(0.025, 0.05))
        parts.append(Part(str(kind), Motion.SEMI_STATIC, _object_mesh(str(kind), rng), tex,
                          _on_counter(rng, x0, BACK_FRONT_ROW)))
        moves.append((len(parts) - 1, _on_counter(rng, dest, BACK_FRONT_ROW)))
    bowl = _on_counter(rng, front.pop(), BACK_FRONT_ROW)
    nudge = bowl.copy()
    nudge[:3, :3] = rot_z(rng.uniform(-0.15, 0.15)) @ bowl[:3, :3]
    angle = rng.uniform(0.0, 2 * np.pi)
    nudge[:2, 3] += rng.uniform(0.025, 0.045) * np.array([np.cos(angle), np.sin(angle)])
    parts.append(Part("bowl", Motion.NUDGED, _object_mesh("bowl", rng),
                      _texture(rng, Pattern.STRIPES, 0.03), bowl))
    moves.append((len(parts) - 1, nudge))
    spots = [(x, BACK_FRONT_ROW) for x in front[: rng.integers(2, 4)]]
    spots += [(x, BACK_BACK_ROW) for x in rng.choice(np.arange(0.35, 3.5, 0.3), 4, replace=False)]
    spots += [(x, y) for x, y in zip(rng.choice([0.2, 0.4], 3), rng.choice(
        np.arange(1.25, 2.7, 0.35), 3, replace=False), strict=True)]
    kinds = ["kettle", "cereal_box", "jar", *rng.choice(_STATIC_KINDS, len(spots) - 3)]
    for i, (x, y) in enumerate(spots):
        kind = str(kinds.pop(rng.integers(len(kinds))))
        tex = _texture(rng, _PATTERNS[rng.integers(len(_PATTERNS))], rng.uniform(0.025, 0.06))
        parts.append(Part(f"{kind}_{i}", Motion.STATIC, _object_mesh(kind, rng), tex,
                          _on_counter(rng, x, y)))
    return Layout(parts, moves)


def hand_mesh(side: int) -> Mesh:
    """Forearm, palm, fingers and thumb in the hand frame (z along the arm, palm facing +y).

    ``side`` is -1 for the left hand and +1 for the right hand (mirrored in x).
    """
    c, s = np.cos(0.4), np.sin(0.4)
    tilt = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    c, s = np.cos(0.9), -side * np.sin(0.9)
    thumb_r = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return merge([
        capsule((0.031, 0.027, 0.031), 0.22).transformed(np.eye(3), np.array([0.0, 0.0, -0.17])),
        ellipsoid((0.043, 0.017, 0.05)),
        ellipsoid((0.04, 0.012, 0.042)).transformed(tilt, np.array([0.0, 0.012, 0.075])),
        capsule((0.011, 0.011, 0.011), 0.035).transformed(
            thumb_r, np.array([-side * 0.045, 0.006, 0.025])),
    ])


def hand_parts(rng: np.random.Generator) -> list[Part]:
    """Left and right hands with a shared random skin tone."""
    tone = rng.uniform(0.0, 1.0)
    light = (0.93 - 0.35 * tone, 0.76 - 0.33 * tone, 0.64 - 0.3 * tone)
    dark = tuple(0.8 * c for c in light)
    tex = Texture(Pattern.SKIN, light, dark, 0.02, _seed(rng), grain=0.06)
    return [Part(name, Motion.HAND, hand_mesh(side), tex, np.eye(4))
            for name, side in (("hand_left", -1), ("hand_right", 1))]
