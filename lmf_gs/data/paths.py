"""Resolve the data-root path templates of `DataConfig` for one video."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lmf_gs.config import MOTION_TYPES, DataConfig


@dataclass(frozen=True)
class ScenePaths:
    """Every input location of one video."""

    vid: str
    epic_fields: Path
    frames: Path
    motion_masks: Path
    udos_split: Path
    udos_annotations: Path
    mg_cache: Path

    @classmethod
    def from_config(cls, vid: str, cfg: DataConfig) -> ScenePaths:
        fields = {"root": str(cfg.root), "vid": vid, "pid": vid.split("_")[0]}

        def fmt(template: str) -> Path:
            try:
                return Path(template.format(**fields))
            except (KeyError, IndexError) as e:
                raise ValueError(f"bad path template {template!r}: unknown field {e}") from None

        return cls(
            vid=vid,
            epic_fields=fmt(cfg.epic_fields),
            frames=fmt(cfg.frames),
            motion_masks=fmt(cfg.motion_masks),
            udos_split=fmt(cfg.udos_split),
            udos_annotations=fmt(cfg.udos_annotations),
            mg_cache=fmt(cfg.mg_cache),
        )

    def gt_mask(self, motion: str, frame: str) -> Path:
        """GT annotation PNG of ``frame`` (a ``.jpg`` frame name) for a motion type."""
        assert motion in MOTION_TYPES, motion
        return self.udos_annotations / f"test_{motion}" / self.vid / png_name(frame)


def png_name(frame: str) -> str:
    """``frame_0000000080.jpg`` -> ``frame_0000000080.png``."""
    return frame.rsplit(".", 1)[0] + ".png"


def natural_key(name: str) -> tuple:
    """Sort key of a file name that orders digit runs by value: ``2.jpg`` before ``10.jpg``."""
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p.lower())
                 for p in re.split(r"(\d+)", name))
