"""The typer app, its console, and helpers shared by the command modules."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cli.options import make_config
from lmf_gs.config import Config

app = typer.Typer(
    help="Layered Motion Fusion on Gaussian splatting for egocentric videos (EPIC Fields / UDOS).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()


def run_config(
    run_dir: Path, config: str | None, overrides: list[str] | None, data_root: Path
) -> Config:
    """The config a trained run was made with (its config.yaml), unless ``--config`` names
    another, with this call's overrides on top."""
    from lmf_gs.core.runs import load_checkpoint

    base = config if config is not None else run_dir / "config.yaml"
    if config is None and not (run_dir / "config.yaml").is_file():
        load_checkpoint(run_dir)  # one-line error: no trained run here
    return make_config(base, overrides, data_root)


def default_config(backend: str) -> str:
    """The backend's paper-scale config on a CUDA machine, its ``_cpu`` variant elsewhere."""
    import torch

    from lmf_gs.backends import get_backend

    name = get_backend(backend).config
    return name if torch.cuda.is_available() else f"{name}_cpu"
