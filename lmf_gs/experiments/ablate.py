"""`lmf-gs ablate`: the paper's Table 5 (fusion x refinement) and Table 3 (neighbours N) on one
video, from one trained base model of any backend. Finished variants are kept in the output
folder as they complete: a stopped ablation resumes with the ones still missing."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from lmf_gs.backends import LayeredBackend
from lmf_gs.config import MOTION_TYPES, Config, save_config
from lmf_gs.core.frames import train_holdout, with_neighbors
from lmf_gs.core.loop import run_loop
from lmf_gs.core.runs import REQUEST, resumable_dir
from lmf_gs.data.scene import Scene
from lmf_gs.eval.udos_metric import score_video
from lmf_gs.experiments.evaluate import COLUMNS, evaluate_scene, mg_predictor, model_predictor
from lmf_gs.experiments.refine import refine_backend
from lmf_gs.experiments.tables import markdown, rich_table

FUSION_ROWS = ("none", "nmf", "pmf", "lmf")
LABELS = {"none": "", "nmf": " + NMF", "pmf": " + PMF", "lmf": " + PMF + NMF"}
HEADER = ["method", *(f"mAP {COLUMNS[m]}" for m in MOTION_TYPES), "s / refined frame"]
ROWS = "rows.jsonl"


@dataclass
class Row:
    method: str
    map: dict[str, float]
    seconds: float  # optimisation time of this variant
    seconds_per_frame: float | None  # refinement seconds per analysed frame (TR rows)


def score(backend: LayeredBackend, frames: list[str], name: str) -> dict[str, float]:
    """UDOS mAP per motion type of ``backend``'s masks on ``frames``."""
    scene = backend.scene
    with torch.no_grad():
        res = score_video(scene.vid, name, backend.cfg.eval.split, frames,
                          lambda motion, frame: scene.gt(motion, frame), model_predictor(backend))
    return res.map


def variant(base: LayeredBackend, frames: list[str], fusion: str, tr: bool, n: int,
            tr_iters: int) -> Row:
    """One row: TR (on ``frames`` + ``n`` neighbours) or fusion fine-tuning without TR on the
    training frames, from a copy of ``base``."""
    backend = base.copy()
    if tr:
        seconds = refine_backend(backend, with_neighbors(base.scene, frames, n), fusion)
        name = f"{base.label} + TR{f'-{n}' if n else ''}{LABELS[fusion]}"
        per_frame = seconds / len(frames)
    else:
        train_idx, _ = train_holdout(base.scene, base.cfg.train.holdout_every)
        opt = backend.finetuning(train_idx, fusion, tr_iters)
        run_loop(opt, None, description=f"fusion {fusion} (no TR)")
        seconds, name, per_frame = opt.elapsed, f"{base.label}{LABELS[fusion]}", None
    backend.model.eval()
    return Row(name, score(backend, frames, name), seconds, per_frame)


def ablate_scene(
    kind: type[LayeredBackend], vid: str, cfg: Config, train_dir: Path, neighbors: list[int],
    console: Console | None = None,
) -> tuple[list[Row], Path]:
    """Run every variant from the trained base model in ``train_dir``; returns the rows and the
    output folder ``train_dir/ablate[-k]``."""
    console = console or Console()
    scene = Scene(vid, cfg.data)
    base, _ = kind.load(train_dir, scene, cfg)
    cfg = base.cfg
    frames = scene.split_frames(cfg.eval.split)
    request = {"neighbors": neighbors, "config": cfg.model_dump(mode="json")}
    out = resumable_dir(train_dir / "ablate", request, "ablation.json")
    out.mkdir(parents=True, exist_ok=True)
    (out / REQUEST).write_text(json.dumps(request))
    save_config(cfg, out / "config.yaml")
    rc = cfg.refine
    tr_iters = max(rc.min_iters, rc.iters_per_frame * len(frames))
    done = {}
    if (out / ROWS).is_file():
        lines = (out / ROWS).read_text().splitlines()
        done = {r["method"]: Row(**r) for r in map(json.loads, lines)}
        console.print(f"resuming {out}: {len(done)} variants already done")

    mg = evaluate_scene(vid, "mg", cfg, lambda: mg_predictor(scene)).map
    rows = [Row("2D motion masks (MG)", mg, 0.0, None),
            Row(kind.label, score(base, frames, kind.name), 0.0, None)]
    variants = [(f, False, 0) for f in FUSION_ROWS[1:]]
    variants += [(f, True, 0) for f in FUSION_ROWS]
    variants += [("lmf", True, n) for n in neighbors if n != 0]
    for fusion, tr, n in variants:
        name = (f"{kind.label} + TR{f'-{n}' if n else ''}{LABELS[fusion]}" if tr
                else f"{kind.label}{LABELS[fusion]}")
        if name not in done:
            done[name] = variant(base, frames, fusion, tr, n, tr_iters)
            with (out / ROWS).open("a") as f:
                f.write(json.dumps(asdict(done[name]), separators=(",", ":")) + "\n")
        rows.append(done[name])
        console.print(f"{name}: " + ", ".join(f"{COLUMNS[m]} {rows[-1].map[m]:.2f}"
                                                for m in MOTION_TYPES))
    write_tables(rows, out)
    return rows, out


def _rel(v: float, base: float) -> str:
    if math.isnan(v) or math.isnan(base) or base == 0:
        return ""
    return f" ({100 * (v - base) / base:+.1f}%)"


def table_rows(rows: list[Row]) -> list[list[str]]:
    """Cells: method, mAP Dyn / SS / Dyn+SS with the change relative to the base row, s/frame."""
    base = rows[1].map
    out = []
    for k, r in enumerate(rows):
        cells = [f"{r.map[m]:.2f}" + (_rel(r.map[m], base[m]) if k > 1 else "")
                 for m in MOTION_TYPES]
        spf = "" if r.seconds_per_frame is None else f"{r.seconds_per_frame:.2f}"
        out.append([r.method, *cells, spf])
    return out


def write_tables(rows: list[Row], out: Path) -> None:
    """``ablation.json`` and ``ablation.md`` in ``out``."""
    (out / "ablation.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    (out / "ablation.md").write_text(markdown(HEADER, table_rows(rows)) + "\n")


def ablation_table(rows: list[Row], title: str) -> Table:
    return rich_table(HEADER, table_rows(rows), title)
