"""`lmf-gs ablate`: the paper's Table 5 (fusion x refinement) and Table 3 (neighbours N) on one
video, from one trained base model of either backend."""

from __future__ import annotations

import copy
import json
import math
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from lmf_gs.config import MOTION_TYPES, Config, save_config
from lmf_gs.data.scene import Scene
from lmf_gs.eval.evaluate import COLUMNS, evaluate_scene, mg_predictor
from lmf_gs.eval.layered_eval import render_masks
from lmf_gs.eval.udos_metric import layered_prediction, score_video
from lmf_gs.fusion import fusion_terms
from lmf_gs.nerf import evaluate as nerf_eval
from lmf_gs.nerf.losses import nerf_base_terms
from lmf_gs.nerf.refine import refine_nerf_model
from lmf_gs.nerf.train import NerfOptimisation
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


class AblationBackend(ABC):
    """A trained run as the ablation sees it: the base model, its scene and config, and what a
    variant does to a copy of the model (TR, fusion fine-tuning) and how its masks are read."""

    label: str  # row prefix, e.g. "GS"

    def __init__(self, base: nn.Module, scene: Scene, cfg: Config):
        self.base, self.scene, self.cfg = base, scene, cfg

    @abstractmethod
    def refine(self, model: nn.Module, frames: list[str], fusion: str, neighbors: int) -> float:
        """TR of ``model`` in place on ``frames`` (+ ``neighbors`` each side); seconds taken."""

    @abstractmethod
    def finetune(self, model: nn.Module, fusion: str, iters: int) -> float:
        """Fusion without TR: train every layer on the training frames; seconds taken."""

    @abstractmethod
    def masks(self, model: nn.Module, frame: str) -> tuple[np.ndarray, np.ndarray]:
        """Soft (dynamic, semi-static) masks of ``frame`` on the GT grid."""

    def score(self, model: nn.Module, frames: list[str], name: str) -> dict[str, float]:
        """UDOS mAP per motion type of ``model``'s masks on ``frames``."""
        scene = self.scene
        with torch.no_grad():
            preds = {f: layered_prediction(*self.masks(model, f)) for f in frames}
        res = score_video(scene.vid, name, self.cfg.eval.split, frames,
                          lambda motion, frame: scene.gt(motion, frame), preds.__getitem__)
        return res.map


class GaussianBackend(AblationBackend):
    label = "GS"

    def __init__(self, vid: str, cfg: Config, train_dir: Path):
        device = resolve_device(cfg)
        base, trained_cfg, _ = load_model(train_dir, device)
        cfg = cfg.model_copy(update={"model": trained_cfg.model})
        super().__init__(base, Scene(vid, cfg.data), cfg)
        self.cams = Cameras.of(self.scene, device)

    def refine(self, model: nn.Module, frames: list[str], fusion: str, neighbors: int) -> float:
        return refine_model(model, self.scene, self.cams, self.cfg, frames, fusion, neighbors)

    def finetune(self, model: nn.Module, fusion: str, iters: int) -> float:
        cfg = self.cfg
        train_idx, _ = train_holdout(self.scene, cfg.train.holdout_every)
        tcfg = cfg.train.model_copy(update={"iters": iters, "warmup": 0, "densify_until": 0,
                                            "checkpoint_every": iters + 1})
        terms = {**base_terms(cfg), **fusion_terms(fusion, cfg.fusion)}
        opt = Optimisation(model, self.scene, self.cams, cfg, terms, train_idx, densify=False,
                           train_cfg=tcfg)
        start = time.perf_counter()
        opt.run(iters, None, description=f"fusion {fusion} (no TR)")
        return time.perf_counter() - start

    def masks(self, model: nn.Module, frame: str) -> tuple[np.ndarray, np.ndarray]:
        return render_masks(model, self.scene, self.cams, frame, self.cfg.render.backend)


class NerfBackend(AblationBackend):
    label = "NeRF"

    def __init__(self, vid: str, cfg: Config, train_dir: Path):
        base, cfg, _ = nerf_eval.load_nerf(train_dir, cfg)
        super().__init__(base, Scene(vid, cfg.data), cfg)
        self.cams = nerf_eval.cameras(self.scene, base)

    def refine(self, model: nn.Module, frames: list[str], fusion: str, neighbors: int) -> float:
        return refine_nerf_model(model, self.scene, self.cfg, frames, fusion, neighbors)

    def finetune(self, model: nn.Module, fusion: str, iters: int) -> float:
        cfg = self.cfg
        train_idx, _ = train_holdout(self.scene, cfg.train.holdout_every)
        terms = {**nerf_base_terms(cfg), **fusion_terms(fusion, cfg.fusion)}
        opt = NerfOptimisation(model, self.scene, cfg, terms, train_idx, iters, cfg.nerf.lr)
        start = time.perf_counter()
        opt.run(None, description=f"fusion {fusion} (no TR)")
        return time.perf_counter() - start

    def masks(self, model: nn.Module, frame: str) -> tuple[np.ndarray, np.ndarray]:
        return nerf_eval.render_masks(model, self.scene, self.cams, frame, self.cfg.nerf)


ABLATION_BACKENDS: dict[str, type[AblationBackend]] = {"gs": GaussianBackend,
                                                       "nerf": NerfBackend}


def ablate_scene(
    vid: str, cfg: Config, train_dir: Path, neighbors: list[int], backend: str = "gs",
    console: Console | None = None,
) -> tuple[list[Row], Path]:
    """Run every variant from the trained base model of ``backend`` (``gs`` or ``nerf``) in
    ``train_dir``; returns the rows and the output folder."""
    console = console or Console()
    run = ABLATION_BACKENDS[backend](vid, cfg, train_dir)
    frames = run.scene.split_frames(run.cfg.eval.split)
    out = new_numbered_dir(train_dir / "ablate")
    save_config(run.cfg, out / "config.yaml")
    rc = run.cfg.refine
    tr_iters = max(rc.min_iters, rc.iters_per_frame * len(frames))

    mg = evaluate_scene(vid, "mg", run.cfg, mg_predictor).map
    rows = [Row("2D motion masks (MG)", mg, 0.0, None),
            Row(run.label, run.score(run.base, frames, backend), 0.0, None)]
    variants = [(f, False, 0) for f in FUSION_ROWS[1:]]
    variants += [(f, True, 0) for f in FUSION_ROWS]
    variants += [("lmf", True, n) for n in neighbors if n != 0]
    for fusion, tr, n in variants:
        model = copy.deepcopy(run.base)
        if tr:
            seconds = run.refine(model, frames, fusion, n)
            name = f"{run.label} + TR{f'-{n}' if n else ''}{LABELS[fusion]}"
            per_frame = seconds / len(frames)
        else:
            seconds = run.finetune(model, fusion, tr_iters)
            name, per_frame = f"{run.label}{LABELS[fusion]}", None
        rows.append(Row(name, run.score(model, frames, name), seconds, per_frame))
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
