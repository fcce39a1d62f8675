"""``lmf-gs`` entry point (see ``lmf-gs --help``)."""

from __future__ import annotations

import sys

from rich.console import Console

import cli.commands  # noqa: F401  (registers synth, train, refine, evaluate, report)
import cli.experiment_commands as _experiment_commands  # noqa: F401  (registers ablate, compare)
import cli.prepare_commands as _prepare_commands  # noqa: F401  (registers prepare)
import cli.viewer_commands as _viewer_commands  # noqa: F401  (registers viewer)
from cli import (
    batch_commands,  # noqa: F401  (registers batch)
    export_commands,  # noqa: F401  (registers export, render, view)
    gt_commands,  # noqa: F401  (registers gt-masks)
    motion_commands,  # noqa: F401  (registers motion-masks)
)
from cli.app import app
from lmf_gs.errors import Interrupted, LmfError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: bad input ends in one line on stderr and exit code 2; a run stopped by
    Ctrl-C or SIGTERM says how to resume and exits with code 130."""
    try:
        app()
    except Interrupted as e:
        Console(stderr=True).print(f"[yellow]{e}[/yellow]", highlight=False, soft_wrap=True)
        sys.exit(130)
    except LmfError as e:
        Console(stderr=True).print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
