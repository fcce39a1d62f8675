"""One writer for every results table: Markdown for files, rich for the terminal."""

from __future__ import annotations

import math

from rich.table import Table


def fmt(v: float | None, spec: str = ".2f") -> str:
    """A number, or "n/a" for None/NaN."""
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (no trailing newline)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def rich_table(header: list[str], rows: list[list[str]], title: str) -> Table:
    """The same table for the terminal: first column left-aligned and unwrapped, numbers
    right-aligned."""
    table = Table(title=title)
    for k, h in enumerate(header):
        table.add_column(h, justify="left" if k == 0 else "right", no_wrap=k == 0)
    for r in rows:
        table.add_row(*r)
    return table
