"""Ray caster (Open3D Embree BVH) with procedural textures and Lambert + ambient shading."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np
import open3d as o3d

from lmf_gs.data.synth.camera import REFERENCE_WIDTH
from lmf_gs.data.synth.scene import KitchenScene

_KEY_LIGHT = np.array([0.55, -0.25, 0.8]) / np.linalg.norm([0.55, -0.25, 0.8])
_FILL_LIGHT = np.array([-0.4, -0.6, 0.5]) / np.linalg.norm([-0.4, -0.6, 0.5])
_TINT = np.array([1.0, 0.97, 0.92])
LENS_BLUR = 0.5  # Gaussian sigma of the optics in reference pixels (softens 1-sample aliasing)


@dataclass(frozen=True)
class Frame:
    """Render buffers of one frame: colour, part index (-1 = nothing hit), hit points."""

    rgb: np.ndarray  # (H, W, 3) float in [0, 1]
    part: np.ndarray  # (H, W) int16
    world: np.ndarray  # (H, W, 3) metric world coordinates of the visible surface
    local: np.ndarray  # (H, W, 3) the same points in their part's local frame
    poses: np.ndarray  # (P, 4, 4) part poses used


class Renderer:
    """Renders registered frames of a :class:`KitchenScene` exactly through its OPENCV camera."""

    def __init__(self, scene: KitchenScene) -> None:
        self.scene = scene
        parts = scene.parts
        counts = [len(p.mesh.vertices) for p in parts]
        offsets = np.cumsum([0, *counts[:-1]])
        self.local_v = np.concatenate([p.mesh.vertices for p in parts])
        self.local_n = np.concatenate([p.mesh.normals for p in parts])
        self.vert_part = np.repeat(np.arange(len(parts)), counts)
        self.tris = np.concatenate(
            [p.mesh.triangles + o for p, o in zip(parts, offsets, strict=True)]
        ).astype(np.uint32)
        rays = scene.intrinsics.pixel_rays().reshape(-1, 3)
        self.rays = rays / np.linalg.norm(rays, axis=1, keepdims=True)
        self.emissive = np.array([p.texture.emissive for p in parts])

    @staticmethod
    def _interpolate(values: np.ndarray, corners: np.ndarray, uv: np.ndarray) -> np.ndarray:
        """Barycentric interpolation of per-vertex ``values`` over the hit triangles."""
        u, v = uv[:, :1], uv[:, 1:]
        a = values[corners[:, 0]]
        return a + u * (values[corners[:, 1]] - a) + v * (values[corners[:, 2]] - a)

    def render(self, k: int) -> Frame:
        """Ray-cast registered frame ``k``."""
        intr = self.scene.intrinsics
        poses = self.scene.part_poses(k)
        rot, trans = poses[:, :3, :3], poses[:, :3, 3]
        vp = self.vert_part
        world_v = np.einsum("vij,vj->vi", rot[vp], self.local_v) + trans[vp]
        rc = o3d.t.geometry.RaycastingScene()
        rc.add_triangles(o3d.core.Tensor(world_v.astype(np.float32)), o3d.core.Tensor(self.tris))
        c2w = self.scene.camera_to_world(k)
        dirs = self.rays @ c2w[:3, :3].T
        origin = np.broadcast_to(c2w[:3, 3], dirs.shape)
        hits = rc.cast_rays(o3d.core.Tensor(np.hstack([origin, dirs]).astype(np.float32)))
        t_hit = hits["t_hit"].numpy()
        ok = np.isfinite(t_hit)
        corners = self.tris[hits["primitive_ids"].numpy()[ok]]
        uv = hits["primitive_uvs"].numpy()[ok].astype(np.float64)
        part = self.vert_part[corners[:, 0]]
        world_n = np.einsum("vij,vj->vi", rot[vp], self.local_n)
        local = self._interpolate(self.local_v, corners, uv)
        normal = self._interpolate(world_n, corners, uv)
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        view = dirs[ok]
        normal *= -np.sign(np.einsum("nd,nd->n", normal, view))[:, None]
        shade = (0.4 + 0.55 * np.clip(normal @ _KEY_LIGHT, 0.0, None)
                 + 0.15 * np.clip(normal @ _FILL_LIGHT, 0.0, None))
        shade = np.where(self.emissive[part], 1.0, shade)[:, None] * _TINT
        color = np.zeros((len(part), 3))
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(len(self.scene.parts) + 1))
        for p, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            if hi > lo:
                idx = order[lo:hi]
                color[idx] = self.scene.parts[p].texture.albedo(local[idx])
        h, w = intr.height, intr.width
        rgb = np.zeros((h * w, 3))
        rgb[ok] = np.clip(color * shade, 0.0, 1.0)
        rgb = cv2.GaussianBlur(rgb.reshape(h, w, 3), (0, 0), LENS_BLUR * w / REFERENCE_WIDTH)
        part_map = np.full(h * w, -1, dtype=np.int16)
        part_map[ok] = part
        world = np.full((h * w, 3), np.nan)
        world[ok] = c2w[:3, 3] + t_hit[ok, None].astype(np.float64) * view
        local_map = np.full((h * w, 3), np.nan)
        local_map[ok] = local
        return Frame(rgb, part_map.reshape(h, w), world.reshape(h, w, 3),
                     local_map.reshape(h, w, 3), poses)
