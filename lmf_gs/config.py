"""Typed configuration: pydantic models loaded from YAML in ``configs/``, with ``--set`` overrides.

Every run writes its resolved config (``config.yaml``) next to its outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from lmf_gs.errors import LmfError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
MOTION_TYPES = ("dynamic", "semistatic", "dynamic_semistatic")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    """Where the data of a video lives. Path templates take ``{root}``, ``{vid}`` and ``{pid}``
    (the participant, e.g. ``P03`` for ``P03_04``); the defaults are the canonical layout."""

    root: Path = Path("data")
    epic_fields: str = "{root}/epic_fields/{vid}.json"
    # a folder of frame_XXXXXXXXXX.jpg, or an EK100 tar; if the folder does not exist, the same path
    # with ".tar" appended is tried (so both canonical forms work with the default)
    frames: str = "{root}/frames/{vid}"
    motion_masks: str = "{root}/motion_masks/{vid}"
    udos_split: str = "{root}/udos/split/test.json"
    udos_annotations: str = "{root}/udos/annotations"
    mg_cache: str = "{root}/udos/cache/task2-2d/test/soft_scores/{vid}"
    # integer downscaling of frames and masks (2: 456x256 -> 228x128), box filter
    downscale: int = 1
    # keep decoded frames in memory
    cache_frames: bool = True

    @field_validator("downscale")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be >= 1")
        return v


class EvalConfig(Section):
    """UDOS evaluation."""

    split: Literal["within_action", "outside_action", "outside_action_easy"] = "within_action"


class Config(Section):
    data: DataConfig = DataConfig()
    eval: EvalConfig = EvalConfig()


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise LmfError(f"--set {dotted}: {k} is not a section")
    node[keys[-1]] = value


def resolve_config_path(name: str | Path) -> Path:
    """A config file path, or a bare name looked up in ``configs/`` (``gs_cpu`` -> gs_cpu.yaml)."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise LmfError(f"config file not found: {path}")
        return path
    candidate = CONFIG_DIR / f"{name}.yaml"
    if not candidate.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
        raise LmfError(f"unknown config {name!r}: no {candidate} (known: {', '.join(known)})")
    return candidate


def load_config(name: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (or the defaults), then apply ``key.sub=value`` overrides (YAML)."""
    tree: dict[str, Any] = {}
    if name is not None:
        path = resolve_config_path(name)
        try:
            tree = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise LmfError(f"{path}: malformed YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(tree, dict):
            raise LmfError(f"{path}: expected a mapping at the top level")
    for item in overrides or []:
        if "=" not in item:
            raise LmfError(f"--set {item!r}: expected key=value, e.g. train.iters=500")
        key, raw = item.split("=", 1)
        _set_path(tree, key.strip(), yaml.safe_load(raw) if raw.strip() else "")
    try:
        return Config.model_validate(tree)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise LmfError(f"config error at {where}: {err['msg']}") from None


def save_config(cfg: Config, path: Path) -> None:
    """Write the resolved config as YAML."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
