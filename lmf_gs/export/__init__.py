"""Exports: layered point clouds, 3DGS PLY, the official UDOS cache, panel renders."""

from lmf_gs.export.ply import load_ply, write_ply
from lmf_gs.export.pointclouds import to_open3d
from lmf_gs.export.snapshot import LayerSnapshot, frame_snapshot, snapshot
from lmf_gs.export.udos_cache import write_udos_cache

__all__ = ["LayerSnapshot", "frame_snapshot", "load_ply", "snapshot", "to_open3d", "write_ply",
           "write_udos_cache"]
