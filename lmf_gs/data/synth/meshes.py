"""Triangle-mesh primitives with per-vertex normals, built in each object's local frame (metres)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Mesh:
    """Vertices ``(V, 3)``, triangles ``(T, 3)`` and unit vertex normals ``(V, 3)``."""

    vertices: np.ndarray
    triangles: np.ndarray
    normals: np.ndarray

    def transformed(self, r: np.ndarray, t: np.ndarray) -> Mesh:
        """The mesh moved by the rigid transform ``X -> r @ X + t``."""
        return Mesh(self.vertices @ r.T + t, self.triangles, self.normals @ r.T)


def merge(meshes: list[Mesh]) -> Mesh:
    """Concatenate meshes into one."""
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    return Mesh(
        np.concatenate([m.vertices for m in meshes]),
        np.concatenate([m.triangles + o for m, o in zip(meshes, offsets, strict=True)]),
        np.concatenate([m.normals for m in meshes]),
    )


def box(size: tuple[float, float, float], center: tuple[float, float, float] = (0, 0, 0)) -> Mesh:
    """Axis-aligned box with flat-shaded faces."""
    half = np.asarray(size, dtype=float) / 2.0
    verts, tris, norms = [], [], []
    for axis in range(3):
        u, v = (axis + 1) % 3, (axis + 2) % 3
        for sign in (-1.0, 1.0):
            corners = np.zeros((4, 3))
            corners[:, axis] = sign * half[axis]
            corners[:, u] = np.array([-1, 1, 1, -1]) * half[u]
            corners[:, v] = np.array([-1, -1, 1, 1]) * half[v]
            normal = np.zeros(3)
            normal[axis] = sign
            base = len(verts) * 4
            verts.append(corners)
            norms.append(np.tile(normal, (4, 1)))
            tris.append(np.array([[0, 1, 2], [0, 2, 3]]) + base)
    return Mesh(np.concatenate(verts) + center, np.concatenate(tris), np.concatenate(norms))


def quad(corner: np.ndarray, edge_u: np.ndarray, edge_v: np.ndarray) -> Mesh:
    """Planar rectangle spanned by two edges from a corner (two-sided when shaded)."""
    verts = np.stack([corner, corner + edge_u, corner + edge_u + edge_v, corner + edge_v])
    normal = np.cross(edge_u, edge_v)
    normal = normal / np.linalg.norm(normal)
    return Mesh(verts.astype(float), np.array([[0, 1, 2], [0, 2, 3]]), np.tile(normal, (4, 1)))


def _grid_triangles(rows: int, cols: int, offset: int = 0) -> np.ndarray:
    """Triangles of a ``rows x cols`` vertex grid whose columns wrap around."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols), indexing="ij")
    a = r * cols + c
    b = r * cols + (c + 1) % cols
    d = (r + 1) * cols + c
    e = (r + 1) * cols + (c + 1) % cols
    tris = np.concatenate([np.stack([a, b, e], -1), np.stack([a, e, d], -1)])
    return tris.reshape(-1, 3) + offset


def _disk(radius: float, z: float, segments: int, up: bool) -> Mesh:
    """Flat disk cap at height ``z`` facing +z (``up``) or -z."""
    ang = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    ring = np.stack([radius * np.cos(ang), radius * np.sin(ang), np.full(segments, z)], -1)
    verts = np.concatenate([[[0.0, 0.0, z]], ring])
    idx = np.arange(segments)
    tris = np.stack([np.zeros(segments, int), idx + 1, (idx + 1) % segments + 1], -1)
    if not up:
        tris = tris[:, ::-1]
    normal = np.array([0.0, 0.0, 1.0 if up else -1.0])
    return Mesh(verts, tris, np.tile(normal, (len(verts), 1)))


def cylinder(radius: float, height: float, segments: int = 32, base_z: float = 0.0) -> Mesh:
    """Closed z-aligned cylinder from ``base_z`` to ``base_z + height`` (smooth sides)."""
    ang = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    ring = np.stack([np.cos(ang), np.sin(ang), np.zeros(segments)], -1)
    side_v = np.concatenate([ring * radius + [0, 0, z] for z in (base_z, base_z + height)])
    side = Mesh(side_v, _grid_triangles(2, segments), np.concatenate([ring, ring]))
    return merge(
        [
            side,
            _disk(radius, base_z, segments, up=False),
            _disk(radius, base_z + height, segments, up=True),
        ]
    )


def ellipsoid(radii: tuple[float, float, float], rings: int = 14, segments: int = 24) -> Mesh:
    """Ellipsoid centred at the origin with analytic normals."""
    return capsule(radii, 0.0, rings, segments)


def capsule(
    radii: tuple[float, float, float], length: float, rings: int = 14, segments: int = 24
) -> Mesh:
    """Ellipsoid stretched along z by ``length`` (a capsule when radii are equal), centred at 0."""
    theta = np.linspace(0.0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    unit = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], -1)
    unit = unit.reshape(-1, 3)
    rad = np.asarray(radii, dtype=float)
    poles = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    unit = np.concatenate([unit, poles])
    verts = unit * rad + np.sign(unit[:, 2:3]) * [0.0, 0.0, length / 2.0]
    normals = unit / rad
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    n_ring = len(theta) * segments
    body = _grid_triangles(len(theta), segments)
    idx = np.arange(segments)
    top = np.stack([np.full(segments, n_ring), (idx + 1) % segments, idx], -1)
    last = (len(theta) - 1) * segments
    bottom = np.stack([np.full(segments, n_ring + 1), last + idx, last + (idx + 1) % segments], -1)
    return Mesh(verts, np.concatenate([body, top, bottom]), normals)
