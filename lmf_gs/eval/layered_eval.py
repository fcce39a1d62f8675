"""Scoring a layered model: render the split frames, map layer masks to the GT grid."""

from __future__ import annotations

import numpy as np
import torch

from lmf_gs.data.scene import Scene
from lmf_gs.eval.udos_metric import Predictor, layered_prediction
from lmf_gs.model.layered import LayeredGaussians
from lmf_gs.train.views import Cameras


@torch.no_grad()
def render_masks(
    model: LayeredGaussians, scene: Scene, cams: Cameras, frame: str, backend: str
) -> tuple[np.ndarray, np.ndarray]:
    """Soft (dynamic, semi-static) masks of ``frame`` on the original GT grid ``[H, W]`` each."""
    i = scene.index(frame)
    r = model.render(cams.t[i:i + 1], cams.w2c[i:i + 1], cams.K[None], cams.width, cams.height,
                     backend)
    masks = r.masks[0].float().cpu().numpy()
    return scene.to_gt_grid(masks[..., 2]), scene.to_gt_grid(masks[..., 1])


def model_predictor(
    model: LayeredGaussians, scene: Scene, cams: Cameras, backend: str
) -> Predictor:
    """Official mapping: dynamic <- dynamic layer; (dynamic_)semistatic <- semi-static + dynamic."""

    def predict(frame: str) -> dict[str, np.ndarray]:
        return layered_prediction(*render_masks(model, scene, cams, frame, backend))

    return predict
