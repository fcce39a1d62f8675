"""3DGS PLY files (the layout of the 3DGS repository, read by common splat viewers) and back.

Per Gaussian: ``x y z nx ny nz f_dc_0..2 f_rest_* opacity scale_0..2 rot_0..3`` as float32, with
``f_rest`` channel-major (all R coefficients, then G, then B), opacity as a logit, log scales and
wxyz quaternions; optionally a ``layer`` (uint8, index in LAYERS) property.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData, PlyElement, PlyParseError
from torch import nn

from lmf_gs.core.layers import LAYERS
from lmf_gs.errors import DataError, LmfError
from lmf_gs.export.snapshot import LayerSnapshot

LAYER_PROPERTY = "layer"
_BASE = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
_TAIL = ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]


def property_names(n_sh: int) -> list[str]:
    """Float properties of a file with ``n_sh`` SH coefficients per channel, in file order."""
    return [*_BASE, *(f"f_rest_{i}" for i in range(3 * (n_sh - 1))), *_TAIL]


def write_ply(
    path: Path, parts: dict[str, LayerSnapshot], with_layer: bool = False,
    comments: tuple[str, ...] = (),
) -> None:
    """Write the Gaussians of ``parts`` (layer -> snapshot, concatenated in LAYERS order) as one
    3DGS PLY; ``with_layer`` adds the ``layer`` property."""
    names = [n for n in LAYERS if n in parts]
    g = LayerSnapshot.cat([parts[n] for n in names])
    n_sh = g.sh.shape[1]
    rest = g.sh[:, 1:].transpose(1, 2).reshape(len(g), -1)  # channel-major
    cols = torch.cat([g.means, torch.zeros_like(g.means), g.sh[:, 0], rest, g.opacities[:, None],
                      g.scales, g.quats], dim=1).cpu().numpy().astype(np.float32)
    dtype = [(n, "f4") for n in property_names(n_sh)]
    if with_layer:
        dtype.append((LAYER_PROPERTY, "u1"))
    data = np.empty(len(g), dtype=dtype)
    for k, name in enumerate(property_names(n_sh)):
        data[name] = cols[:, k]
    if with_layer:
        data[LAYER_PROPERTY] = np.concatenate(
            [np.full(len(parts[n]), LAYERS.index(n), np.uint8) for n in names])
    legend = "layer: " + ", ".join(f"{i} {n}" for i, n in enumerate(LAYERS))
    PlyData([PlyElement.describe(data, "vertex")],
            comments=[*comments, *([legend] if with_layer else [])]).write(str(path))


def write_plys(
    parts: dict[str, LayerSnapshot], folder: Path, min_opacity: float = 0.0,
    comments: tuple[str, ...] = (),
) -> dict[str, int]:
    """``LAYER.ply`` per layer, their union ``combined.ply`` and ``combined_layered.ply`` (with
    the ``layer`` property), of the Gaussians of opacity >= ``min_opacity``; returns the
    Gaussians per file name."""
    kept = {n: g.select(g.alpha >= min_opacity) for n, g in parts.items()}
    files = {**{n: ({n: g}, False) for n, g in kept.items()},
             "combined": (kept, False), "combined_layered": (kept, True)}
    for name, (sel, with_layer) in files.items():
        write_ply(folder / f"{name}.ply", sel, with_layer, comments)
    return {name: sum(len(g) for g in sel.values()) for name, (sel, _) in files.items()}


def load_ply(path: Path, layer: str | None = None) -> nn.ParameterDict:
    """A 3DGS PLY as a static set in the model's layout (``means [N, 3]``, log ``scales``,
    wxyz ``quats``, logit ``opacities [N]``, ``sh0 [N, 1, 3]``, ``shN [N, K-1, 3]`` when the file
    has ``f_rest``); with ``layer``, only the Gaussians of that layer (needs the ``layer``
    property)."""
    try:
        vertex = PlyData.read(str(path))["vertex"]
    except (OSError, PlyParseError, KeyError) as e:
        raise DataError(f"{path}: cannot read a 3DGS PLY ({type(e).__name__}: {e})") from None
    present = vertex.data.dtype.names
    n_rest = sum(1 for n in present if n.startswith("f_rest_"))
    n_sh = n_rest // 3 + 1
    if n_rest % 3 or math.isqrt(n_sh) ** 2 != n_sh:
        raise DataError(f"{path}: {n_rest} f_rest properties is no SH layout")
    missing = [n for n in property_names(n_sh) if n not in present]
    if missing:
        raise DataError(f"{path}: not a 3DGS PLY (no property {missing[0]!r})")
    keep = np.ones(len(vertex.data), bool)
    if layer is not None:
        if LAYER_PROPERTY not in present:
            raise DataError(f"{path}: no {LAYER_PROPERTY!r} property to select {layer!r} by")
        if layer not in LAYERS:
            raise LmfError(f"unknown layer {layer!r} (expected one of: {', '.join(LAYERS)})")
        keep = vertex.data[LAYER_PROPERTY] == LAYERS.index(layer)

    def cols(names: list[str]) -> torch.Tensor:
        return torch.from_numpy(np.stack([vertex.data[n][keep] for n in names], axis=1)
                                .astype(np.float32))

    n = int(keep.sum())
    params = {
        "means": cols(["x", "y", "z"]),
        "scales": cols(["scale_0", "scale_1", "scale_2"]),
        "quats": cols(["rot_0", "rot_1", "rot_2", "rot_3"]),
        "opacities": cols(["opacity"])[:, 0],
        "sh0": cols(["f_dc_0", "f_dc_1", "f_dc_2"])[:, None, :],
    }
    if n_sh > 1:
        rest = cols([f"f_rest_{i}" for i in range(n_rest)])
        params["shN"] = rest.reshape(n, 3, n_sh - 1).transpose(1, 2)
    return nn.ParameterDict({k: nn.Parameter(v.contiguous()) for k, v in params.items()})
