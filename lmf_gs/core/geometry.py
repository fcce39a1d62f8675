"""Scene scale shared by the backends' initialisation."""

from __future__ import annotations

import numpy as np

from lmf_gs.data.scene import Scene
from lmf_gs.errors import DataError


def median_point_depth(scene: Scene) -> float:
    """Median depth of the SfM points in front of ~50 cameras spread over the video."""
    if len(scene.points) == 0:
        raise DataError(f"{scene.paths.epic_fields}: no 'points' to initialise the model from")
    depths = [np.median(z[z > 0]) for z in
              (scene.points @ m[2, :3] + m[2, 3] for m in scene.w2c[:: max(1, len(scene) // 50)])
              if (z > 0).any()]
    return float(np.median(depths))
