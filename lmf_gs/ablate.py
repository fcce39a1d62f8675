"""`lmf-gs ablate`: the paper's Table 5 (fusion x refinement) and Table 3 (neighbours N) on one
video, from one trained base model."""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from lmf_gs.config import MOTION_TYPES, Config, save_config
from lmf_gs.data.scene import Scene
from lmf_gs.eval.evaluate import COLUMNS, evaluate_scene, mg_predictor
from lmf_gs.eval.layered_eval import render_masks
from lmf_gs.eval.udos_metric import layered_prediction, score_video
from lmf_gs.fusion import fusion_terms
from lmf_gs.model.layered import LayeredGaussians
from lmf_gs.refine.refine import refine_model
from lmf_gs.runs import load_model, new_numbered_dir, resolve_device
from lmf_gs.train.run import base_terms
from lmf_gs.train.trainer import Optimisation
from lmf_gs.train.views import Cameras, train_holdout

FUSION_ROWS = ("none", "nmf", "pmf", "lmf")
LABELS = {"none": "", "nmf": " + NMF", "pmf": " + PMF", "lmf": " + PMF + NMF"}


@dataclass
class Row:
    method: str
    map: dict[str, float]
    seconds: float  # optimisation time of this variant
    seconds_per_frame: float | None  # refinement seconds per analysed frame (TR rows)


def _score(model: LayeredGaussians, scene: Scene, cams: Cameras, frames: list[str],
           cfg: Config, name: str) -> dict[str, float]:
    preds = {f: layered_prediction(*render_masks(model, scene, cams, f, cfg.render.backend))
             for f in frames}
    res = score_video(scene.vid, name, cfg.eval.split, frames,
                      lambda motion, frame: scene.gt(motion, frame), preds.__getitem__)
    return res.map


def finetune_with_fusion(
    model: LayeredGaussians, scene: Scene, cams: Cameras, cfg: Config, fusion: str, iters: int,
) -> float:
    """Fusion without refinement: continue training all sets on all training frames."""
    train_idx, _ = train_holdout(scene, cfg.train.holdout_every)
    tcfg = cfg.train.model_copy(update={"iters": iters, "warmup": 0, "densify_until": 0,
                                        "checkpoint_every": iters + 1})
    terms = {**base_terms(cfg), **fusion_terms(fusion, cfg.fusion)}
    opt = Optimisation(model, scene, cams, cfg, terms, train_idx, densify=False, train_cfg=tcfg)
    start = time.perf_counter()
    opt.run(iters, None, description=f"fusion {fusion} (no TR)")
    return time.perf_counter() - start


def ablate_scene(
    vid: str, cfg: Config, train_dir: Path, neighbors: list[int], console: Console | None = None,
) -> tuple[list[Row], Path]:
    """Run every variant from the trained base model; returns the rows and the output folder."""
    console = console or Console()
    device = resolve_device(cfg)
    base, trained_cfg, _ = load_model(train_dir, device)
    cfg = cfg.model_copy(update={"model": trained_cfg.model})
    scene = Scene(vid, cfg.data)
    cams = Cameras.of(scene, device)
    frames = scene.split_frames(cfg.eval.split)
    out = new_numbered_dir(train_dir / "ablate")
    save_config(cfg, out / "config.yaml")
    rc = cfg.refine
    tr_iters = max(rc.min_iters, rc.iters_per_frame * len(frames))

    mg = evaluate_scene(vid, "mg", cfg, mg_predictor).map
    rows = [Row("2D motion masks (MG)", mg, 0.0, None),
            Row("GS", _score(base, scene, cams, frames, cfg, "gs"), 0.0, None)]
    variants = [(f, False, 0) for f in FUSION_ROWS[1:]]
    variants += [(f, True, 0) for f in FUSION_ROWS]
    variants += [("lmf", True, n) for n in neighbors if n != 0]
    for fusion, tr, n in variants:
        model = copy.deepcopy(base)
        if tr:
            seconds = refine_model(model, scene, cams, cfg, frames, fusion, n)
            name = f"GS + TR{f'-{n}' if n else ''}{LABELS[fusion]}"
            per_frame = seconds / len(frames)
        else:
            seconds = finetune_with_fusion(model, scene, cams, cfg, fusion, tr_iters)
            name, per_frame = f"GS{LABELS[fusion]}", None
        with torch.no_grad():
            rows.append(Row(name, _score(model, scene, cams, frames, cfg, name), seconds,
                            per_frame))
        console.print(f"{name}: " + ", ".join(f"{COLUMNS[m]} {rows[-1].map[m]:.2f}"
                                                for m in MOTION_TYPES))
    write_tables(rows, out)
    return rows, out


def _rel(v: float, base: float) -> str:
    if math.isnan(v) or math.isnan(base) or base == 0:
        return ""
    return f" ({100 * (v - base) / base:+.1f}%)"


def table_rows(rows: list[Row]) -> list[list[str]]:
    """Cells: method, mAP Dyn / SS / Dyn+SS with the change relative to the base GS row, s/frame."""
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
    header = ["method", *(f"mAP {COLUMNS[m]}" for m in MOTION_TYPES), "s / refined frame"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c) + " |" for c in table_rows(rows)]
    (out / "ablation.md").write_text("\n".join(lines) + "\n")


def rich_table(rows: list[Row], title: str) -> Table:
    table = Table(title=title)
    for h in ["method", *(f"mAP {COLUMNS[m]}" for m in MOTION_TYPES), "s / frame"]:
        table.add_column(h, justify="left" if h == "method" else "right")
    for cells in table_rows(rows):
        table.add_row(*cells)
    return table
