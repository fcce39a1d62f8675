"""Exports: layered point clouds, 3DGS PLY, the official UDOS cache, panel renders."""
