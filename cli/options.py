"""Options shared by every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmf_gs.config import Config, load_config

DataRoot = Annotated[
    Path, typer.Option("--data-root", help="Data root in the canonical layout.")
]
Out = Annotated[Path, typer.Option("--out", help="Where runs and results are written.")]
ConfigName = Annotated[
    str | None,
    typer.Option("--config", "-c", help="A YAML file, or a name in configs/ (e.g. gs_cpu)."),
]
Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config value, e.g. data.downscale=2 (repeatable)."),
]
Scenes = Annotated[
    list[str],
    typer.Option("--scene", "-s", help="Video id (repeatable), or 'all' for the whole split."),
]


def make_config(
    config: str | Path | None, overrides: list[str] | None, data_root: Path
) -> Config:
    """Config from file + ``--set`` overrides, with ``--data-root`` applied last."""
    return load_config(config, [*(overrides or []), f"data.root={data_root}"])

Backend = Annotated[
    str, typer.Option("--backend", "-b", help="gs (Gaussian splatting) or nerf (NeuralDiff).")
]
