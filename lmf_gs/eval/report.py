"""Collect the metrics.json files of a video's runs into one table."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.table import Table

from lmf_gs.config import MOTION_TYPES
from lmf_gs.errors import LmfError
from lmf_gs.eval.evaluate import COLUMNS


def collect(out: Path, vid: str) -> list[tuple[str, dict]]:
    """``(label, metrics)`` for runs/VID/{mg,gs,nerf}/metrics.json and their refine-* runs."""
    base = out / vid
    found = []
    for method in ("mg", "gs", "nerf"):
        path = base / method / "metrics.json"
        if path.is_file():
            found.append((method, json.loads(path.read_text())))
        for ref in sorted((base / method).glob("refine-*/metrics.json"),
                          key=lambda p: p.stat().st_mtime):
            found.append((f"{method}/{ref.parent.name}", json.loads(ref.read_text())))
    if not found:
        raise LmfError(f"{base}: no metrics.json found (run `lmf-gs evaluate` or `refine` first)")
    return found


def report_table(rows: list[tuple[str, dict]], title: str) -> Table:
    table = Table(title=title)
    table.add_column("run", no_wrap=True)
    for m in MOTION_TYPES:
        table.add_column(f"mAP {COLUMNS[m]}", justify="right")
    table.add_column("held-out PSNR", justify="right")
    table.add_column("s / refined frame", justify="right")
    for label, doc in rows:
        maps = [doc["map"].get(m) for m in MOTION_TYPES]
        psnr = doc.get("psnr_heldout")
        spf = doc.get("seconds_per_frame")
        table.add_row(
            label,
            *("n/a" if v is None or math.isnan(v) else f"{v:.2f}" for v in maps),
            "" if psnr is None else f"{psnr:.2f}",
            "" if spf is None else f"{spf:.2f}",
        )
    return table
