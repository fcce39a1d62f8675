"""Data layer: EPIC Fields cameras, EPIC-KITCHENS frames, motion masks, UDOS annotations."""

from lmf_gs.data.camera import Intrinsics
from lmf_gs.data.paths import ScenePaths
from lmf_gs.data.scene import Scene

__all__ = ["Intrinsics", "Scene", "ScenePaths"]
