"""The batch's result: the paper's Table 1 (mean over videos of MG, the trained model and
TR + LMF; Dyn / SS / Dyn+SS) from the per-video metrics files, with the official mean (a NaN
counts as 0), and the per-video rows as CSV and JSON."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from lmf_gs.config import MOTION_TYPES
from lmf_gs.eval.udos_metric import mean_over_videos
from lmf_gs.experiments.evaluate import COLUMNS
from lmf_gs.experiments.tables import fmt, markdown, rich_table

ROWS = ("mg", "trained", "refined")  # the order of Table 1


@dataclass(frozen=True)
class VideoRow:
    """One video's scores for one row of the table, read from its metrics file."""

    scene: str
    key: str
    method: str
    map: dict[str, float]  # motion type -> mAP (NaN where no frame was scored)
    frames: int
    path: str


@dataclass(frozen=True)
class MeanRow:
    key: str
    method: str
    map: dict[str, float]
    videos: int


def row_label(key: str, backend_label: str, doc: dict) -> str:
    """Table 1's names: MG, the trained model, and its refinement (TR[-N] + FUSION)."""
    if key == "mg":
        return "MG (2D motion masks)"
    if key == "trained":
        return backend_label
    n, fusion = doc.get("neighbors", 0), doc.get("fusion", "lmf")
    tr = f"TR-{n}" if n else "TR"
    return f"{backend_label} + {tr}" + ("" if fusion == "none" else f" + {fusion.upper()}")


def read_row(scene: str, key: str, path: str, backend_label: str) -> VideoRow:
    doc = json.loads(Path(path).read_text())
    maps = {m: math.nan if doc["map"][m] is None else float(doc["map"][m]) for m in MOTION_TYPES}
    frames = doc.get("frames_scored", doc.get("frames"))
    if isinstance(frames, dict):  # evaluate's metrics: frames per motion type
        frames = max(v["total"] for v in frames.values())
    return VideoRow(scene, key, row_label(key, backend_label, doc), maps, int(frames), path)


def collect(results: dict[str, dict[str, str]], backend_label: str) -> list[VideoRow]:
    """Per-video rows of every video's metrics files (``results[vid][key] = path``), in video
    order then table order."""
    return [read_row(vid, key, paths[key], backend_label)
            for vid, paths in results.items() for key in ROWS if key in paths]


def means(rows: list[VideoRow], scenes: list[str]) -> list[MeanRow]:
    """The official mean over ``scenes`` of every row key that all of them have."""
    out = []
    for key in ROWS:
        mine = {r.scene: r for r in rows if r.key == key}
        if not scenes or set(scenes) - set(mine):
            continue
        out.append(MeanRow(key, mine[scenes[0]].method, {
            m: mean_over_videos(mine[s].map[m] for s in scenes) for m in MOTION_TYPES},
            len(scenes)))
    return out


HEADER = ["method", *(COLUMNS[m] for m in MOTION_TYPES)]


def _cells(r: MeanRow) -> list[str]:
    return [r.method, *(fmt(r.map[m]) for m in MOTION_TYPES)]


def title(scenes: list[str], failed: list[str]) -> str:
    text = f"UDOS mAP, mean over {len(scenes)} video{'s' * (len(scenes) != 1)} (NaN counts as 0)"
    return text + (f"; failed, left out: {', '.join(failed)}" if failed else "")


def table1(rows: list[MeanRow], heading: str) -> Table:
    return rich_table(HEADER, [_cells(r) for r in rows], heading)


def _json_map(m: dict[str, float]) -> dict[str, float | None]:
    return {k: None if math.isnan(v) else v for k, v in m.items()}


def write_results(folder: Path, rows: list[VideoRow], mean_rows: list[MeanRow],
                  scenes: list[str], failed: dict[str, dict[str, str]]) -> list[Path]:
    """``per_video.csv``, ``results.json`` and ``table.md`` in ``folder``; returns their paths."""
    csv_path, json_path, md_path = (folder / n for n in ("per_video.csv", "results.json",
                                                         "table.md"))
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["scene", "method", "key", *MOTION_TYPES, "frames", "metrics"])
        for r in rows:
            w.writerow([r.scene, r.method, r.key, *(fmt(r.map[m], ".4f") for m in MOTION_TYPES),
                        r.frames, r.path])
    doc = {
        "scenes": scenes,
        "failed": failed,
        "mean": [{"key": r.key, "method": r.method, "map": _json_map(r.map), "videos": r.videos}
                 for r in mean_rows],
        "per_video": [{"scene": r.scene, "key": r.key, "method": r.method,
                       "map": _json_map(r.map), "frames": r.frames, "metrics": r.path}
                      for r in rows],
    }
    json_path.write_text(json.dumps(doc, indent=1))
    md_path.write_text(f"{title(scenes, list(failed))}\n\n"
                       f"{markdown(HEADER, [_cells(r) for r in mean_rows])}\n")
    return [csv_path, json_path, md_path]
