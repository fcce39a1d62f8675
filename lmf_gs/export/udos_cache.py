"""The official UDOS evaluator's ``cache.pt`` (epic-fields-nvs-udos, ``evaluate_udos.py``).

The script finds caches as ``{dir_cache}/{vid}-{model}/cache.pt`` with model one of
``neuraldiff``, ``nerf-w``, ``t-nerf`` (any other folder or .pt under ``dir_cache`` stops it),
takes the dynamic prediction from ``mask_pers`` only for ``neuraldiff`` and never resizes: every
entry is at GT resolution, float32 (it scores whatever precision it gets).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from lmf_gs.backends import LayeredBackend
from lmf_gs.experiments.refine import gt_grid_masks

MODEL_NAME = "neuraldiff"  # the one name under which the script reads mask_pers for "dynamic"
CACHE_FILE = "cache.pt"


def cache_folder(vid: str) -> str:
    """The folder name the official script accepts for a layered model."""
    return f"{vid}-{MODEL_NAME}"


def cache_entry(backend: LayeredBackend, frame: str) -> dict[str, object]:
    """One ``out`` entry: the layer masks exactly as `refine`/`evaluate` score them, the rendered
    and the input RGB, all ``[H, W(, 3)]`` float32 tensors on the GT grid."""
    scene = backend.scene
    i = scene.index(frame)
    r = backend.render(i)
    dynamic, semistatic = gt_grid_masks(scene, r)
    rgb = r.rgb.clamp(0.0, 1.0).float().cpu().numpy()
    im_pred = np.stack([scene.to_gt_grid(rgb[..., c]) for c in range(3)], axis=-1)
    im_targ = scene.frame_store.read(frame).astype(np.float32) / 255.0

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    return {
        "sample_id": int(scene.frame_numbers[i]),
        "mask_pred": tensor(semistatic + dynamic),
        "mask_pers": tensor(dynamic),
        "mask_tran": tensor(semistatic),
        "im_pred": tensor(im_pred),
        "im_targ": tensor(im_targ),
    }


def write_udos_cache(
    backend: LayeredBackend, frames: list[str], cache_root: Path,
    progress: Callable[[Iterable[str]], Iterable[str]] = iter,
) -> Path:
    """Write ``cache_root/{vid}-neuraldiff/cache.pt`` with one entry per frame; returns its path."""
    out = [cache_entry(backend, f) for f in progress(frames)]
    folder = cache_root / cache_folder(backend.scene.vid)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CACHE_FILE
    torch.save({"out": out}, path)
    return path
