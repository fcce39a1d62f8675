"""``lmf-gs`` entry point (see ``lmf-gs --help``)."""

from __future__ import annotations

import sys

from rich.console import Console

import cli.commands  # noqa: F401  (registers the commands)
import cli.nerf_commands as _nerf_commands  # noqa: F401  (registers compare)
from cli import export_commands  # noqa: F401  (registers export, render, view)
from cli.app import app
from lmf_gs.errors import LmfError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: bad input ends in one line on stderr and exit code 2."""
    try:
        app()
    except LmfError as e:
        Console(stderr=True).print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
