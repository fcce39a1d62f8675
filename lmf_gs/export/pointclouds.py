"""Layered point clouds (Open3D): one cloud per layer at a frame, plus their union."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lmf_gs.core.layers import LAYERS
from lmf_gs.data.scene import Scene
from lmf_gs.errors import DataError, LmfError
from lmf_gs.export.snapshot import LayerSnapshot, frame_snapshot
from lmf_gs.model.layered import LayeredGaussians
from lmf_gs.model.sh import C0

if TYPE_CHECKING:
    import open3d as o3d

COLOR_MODES = ("rgb", "view", "layer")
# fixed per-layer colours (RGB in [0, 1]); the panels use the same ones
LAYER_COLORS = {"static": (0.62, 0.62, 0.62), "semistatic": (0.31, 0.63, 1.0),
                "dynamic": (1.0, 0.31, 0.31)}


def point_colors(layer: str, g: LayerSnapshot, mode: str) -> np.ndarray:
    """Colours ``[N, 3]`` in [0, 1]: "rgb" (SH degree 0, plus the frame's offset for
    semi-static/dynamic), "view" (SH evaluated towards the frame's camera) or "layer"."""
    if mode not in COLOR_MODES:
        raise LmfError(f"unknown colour mode {mode!r} (expected one of: {', '.join(COLOR_MODES)})")
    if mode == "layer":
        return np.tile(np.asarray(LAYER_COLORS[layer], np.float64), (len(g), 1))
    rgb = g.base_rgb if mode == "rgb" else g.view_rgb
    return rgb.clamp(0.0, 1.0).cpu().double().numpy()


def clouds(
    parts: dict[str, LayerSnapshot], min_opacity: float = 0.1, color: str = "rgb"
) -> dict[str, o3d.geometry.PointCloud]:
    """One ``open3d.geometry.PointCloud`` per layer of ``parts`` (see `snapshot`): the means of
    the Gaussians of opacity >= ``min_opacity``, coloured by ``color`` (see `point_colors`)."""
    import open3d as o3d

    out = {}
    for layer, g in parts.items():
        g = g.select(g.alpha >= min_opacity)
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(g.means.cpu().double().numpy()))
        pcd.colors = o3d.utility.Vector3dVector(point_colors(layer, g, color))
        out[layer] = pcd
    return out


def to_open3d(
    model: LayeredGaussians, scene: Scene, frame: str | int, layers: tuple[str, ...] = LAYERS,
    min_opacity: float = 0.1, color: str = "rgb",
) -> dict[str, o3d.geometry.PointCloud]:
    """Layer -> ``open3d.geometry.PointCloud`` of ``model`` at a registered ``frame`` (name or
    number): dynamic Gaussians placed in the world for that frame, semi-static ones with that
    frame's opacity."""
    return clouds(frame_snapshot(model, scene, frame, layers), min_opacity, color)


def combine(layered: dict[str, o3d.geometry.PointCloud]) -> o3d.geometry.PointCloud:
    """The union of the clouds of ``layered``."""
    import open3d as o3d

    out = o3d.geometry.PointCloud()
    for pcd in layered.values():
        out += pcd
    return out


def write_cloud(pcd: o3d.geometry.PointCloud, path: Path) -> None:
    """Write ``pcd`` as a binary PLY (float32 xyz, uchar rgb) with the tensor API."""
    import open3d as o3d

    cloud = o3d.t.geometry.PointCloud(
        o3d.core.Tensor(np.asarray(pcd.points, dtype=np.float32)))
    cloud.point.colors = o3d.core.Tensor(
        np.round(np.asarray(pcd.colors) * 255).astype(np.uint8))
    if not o3d.t.io.write_point_cloud(str(path), cloud):
        raise LmfError(f"{path}: Open3D could not write the point cloud")


def write_clouds(
    parts: dict[str, LayerSnapshot], folder: Path, min_opacity: float, color: str
) -> dict[str, int]:
    """``LAYER.ply`` per layer and their union ``combined.ply`` (see `clouds`); returns the points
    per file name, an empty cloud being counted but not written (Open3D refuses)."""
    layered = clouds(parts, min_opacity, color)
    counts = {}
    for name, pcd in {**layered, "combined": combine(layered)}.items():
        counts[name] = len(pcd.points)
        if counts[name]:
            write_cloud(pcd, folder / f"{name}.ply")
    return counts


def read_cloud(path: Path) -> o3d.geometry.PointCloud:
    """A PLY as a coloured cloud: a 3DGS PLY (``f_dc_*`` colours) or any Open3D-readable one."""
    import open3d as o3d
    from plyfile import PlyData, PlyParseError

    try:
        header = PlyData.read(str(path))["vertex"].data
    except (OSError, PlyParseError, KeyError) as e:
        raise DataError(f"{path}: cannot read a PLY cloud ({type(e).__name__}: {e})") from None
    if "f_dc_0" in header.dtype.names:
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(
            np.stack([header[k] for k in "xyz"], axis=1).astype(np.float64)))
        dc = np.stack([header[f"f_dc_{i}"] for i in range(3)], axis=1).astype(np.float64)
        pcd.colors = o3d.utility.Vector3dVector(np.clip(C0 * dc + 0.5, 0.0, 1.0))
        return pcd
    return o3d.io.read_point_cloud(str(path))


def has_display() -> bool:
    """Whether a window can be opened: always off Linux, else with DISPLAY/WAYLAND_DISPLAY."""
    return not sys.platform.startswith("linux") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def show(paths: list[Path]) -> None:
    """Open the PLY files in one Open3D window; one-line error where no window can open."""
    import open3d as o3d

    geometries = [read_cloud(p) for p in paths]
    if not has_display():
        raise LmfError("no display (DISPLAY/WAYLAND_DISPLAY unset): cannot open an Open3D window; "
                       "copy the .ply files to a machine with a display or open them in a viewer")
    vis = o3d.visualization.Visualizer()
    if not vis.create_window(window_name=", ".join(p.name for p in paths)):
        raise LmfError(f"cannot open an Open3D window on display "
                       f"{os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')}")
    for pcd in geometries:
        vis.add_geometry(pcd)
    vis.run()
    vis.destroy_window()

