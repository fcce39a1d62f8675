"""Collect the metrics files of a video's runs into one table."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from lmf_gs.backends import BACKENDS
from lmf_gs.config import MOTION_TYPES
from lmf_gs.errors import LmfError
from lmf_gs.experiments.evaluate import COLUMNS
from lmf_gs.experiments.tables import fmt, rich_table

METHODS = ("mg", *BACKENDS)
HEADER = ["run", *(f"mAP {COLUMNS[m]}" for m in MOTION_TYPES), "frames", "settings",
          "held-out PSNR", "s / refined frame"]


def scenes_with_results(out: Path) -> list[str]:
    """Every video folder of ``out`` that holds a metrics file."""
    return sorted(p.name for p in out.iterdir() if p.is_dir() and any(
        any((p / m).glob("metrics*.json")) or any((p / m).glob("refine-*/metrics.json"))
        for m in METHODS)) if out.is_dir() else []


def collect(out: Path, vid: str) -> list[tuple[str, dict]]:
    """``(label, metrics)`` for OUT/VID/{mg,gs,nerf}/metrics*.json and their refine-* runs."""
    base = out / vid
    found = []
    for method in METHODS:
        for path in sorted((base / method).glob("metrics*.json")):
            found.append((f"{method}{path.stem[len('metrics'):]}", json.loads(path.read_text())))
        for ref in sorted((base / method).glob("refine-*/metrics.json"),
                          key=lambda p: p.stat().st_mtime):
            found.append((f"{method}/{ref.parent.name}", json.loads(ref.read_text())))
    if not found:
        raise LmfError(f"{base}: no metrics.json found (run `lmf-gs evaluate` or `refine` first)")
    return found


def _settings(doc: dict) -> str:
    s = doc.get("settings")
    if s is None:  # refinement runs: fusion and neighbours
        return (f"{doc['fusion']}, N={doc['neighbors']}" if "fusion" in doc else "")
    return f"{s['split']}, downscale {s['downscale']}"


def _frames(doc: dict) -> str:
    """Frames scored: refinement runs keep their count in ``frames_scored``."""
    if "frames_scored" in doc:
        return str(doc["frames_scored"])
    f = doc.get("frames")
    return str(max(v["total"] for v in f.values())) if isinstance(f, dict) and f else ""


def report_table(rows: list[tuple[str, dict]], title: str) -> Table:
    cells = []
    for label, doc in rows:
        cells.append([label, *(fmt(doc["map"].get(m)) for m in MOTION_TYPES),
                      _frames(doc), _settings(doc),
                      "" if doc.get("psnr_heldout") is None else fmt(doc["psnr_heldout"]),
                      "" if doc.get("seconds_per_frame") is None
                      else fmt(doc["seconds_per_frame"])])
    return rich_table(HEADER, cells, title)
