"""`lmf-gs evaluate`: score the 2D masks or a trained model on UDOS, write metrics.json, print a
table. A re-evaluation under other settings is written beside the first, never over it."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import track
from rich.table import Table

from lmf_gs.backends import LayeredBackend, get_backend
from lmf_gs.config import MOTION_TYPES, Config, DataConfig, save_config
from lmf_gs.core.losses import psnr
from lmf_gs.data.masks import MotionMasks
from lmf_gs.data.paths import ScenePaths
from lmf_gs.data.scene import Scene
from lmf_gs.data.udos import load_gt, load_split, split_frames
from lmf_gs.errors import DataError, LmfError
from lmf_gs.eval.udos_metric import (
    Predictor,
    VideoResult,
    layered_prediction,
    mean_over_videos,
    score_video,
)
from lmf_gs.experiments.refine import gt_grid_masks

COLUMNS = {"dynamic": "Dyn", "semistatic": "SS", "dynamic_semistatic": "Dyn+SS"}


def mg_predictor(scene: Scene) -> Predictor:
    """The 2D baseline: the motion mask (motion_masks/, else the MG cache) for all motion types;
    a mask of another size than the camera's is refused, as training and refinement do."""
    masks, raw = MotionMasks(scene.paths), scene.raw_intrinsics

    def predict(frame: str) -> dict[str, object]:
        mask = masks.read(frame)
        if mask is None:
            raise DataError(
                f"no 2D motion mask for {scene.vid}/{frame} "
                f"(looked in {scene.paths.motion_masks} and {scene.paths.mg_cache})"
            )
        if mask.shape != (raw.height, raw.width):
            raise DataError(f"{masks.path(frame)}: size {mask.shape[1]}x{mask.shape[0]} does not "
                            f"match the camera ({raw.width}x{raw.height})")
        return dict.fromkeys(MOTION_TYPES, mask)

    return predict


def heldout_psnr(backend: LayeredBackend, frames: list[int]) -> float:
    """Mean PSNR of whole-frame renders over the positions ``frames`` (NaN without any)."""
    values = [float(psnr(backend.render(i).rgb,
                         torch.as_tensor(backend.scene.image(i), device=backend.device)))
              for i in frames]
    return float(np.mean(values)) if values else math.nan


def model_predictor(backend: LayeredBackend) -> Predictor:
    """Official mapping of a layered model's masks (see `layered_prediction`)."""
    scene = backend.scene
    return lambda frame: layered_prediction(*gt_grid_masks(scene, backend.render(
        scene.index(frame))))


def trained_predictor(
    kind: type[LayeredBackend], run_dir: Path, scene: Scene, cfg: Config
) -> tuple[Predictor, dict]:
    """Predictor of a trained run's layer masks, and its held-out PSNR for metrics.json."""
    backend, ckpt = kind.load(run_dir, scene, cfg)
    held = [scene.index(f) for f in ckpt.get("heldout_frames", [])]
    value = heldout_psnr(backend, held)
    extra = {"psnr_heldout": None if math.isnan(value) else value, "heldout_frames": len(held),
             "checkpoint_step": ckpt["step"]}
    return model_predictor(backend), extra


def all_scenes(cfg: DataConfig) -> list[str]:
    """Every video of the UDOS split file."""
    if "{vid}" in cfg.udos_split or "{pid}" in cfg.udos_split:
        raise LmfError("--scene all needs a data.udos_split path without {vid}/{pid}")
    path = ScenePaths.from_config("", cfg).udos_split
    return sorted(load_split(path))


def expand_scenes(scenes: list[str], cfg: DataConfig) -> list[str]:
    """``["all"]`` -> every video in the split; otherwise the given ids, de-duplicated in order."""
    if scenes == ["all"]:
        return all_scenes(cfg)
    if "all" in scenes:
        raise LmfError("--scene all cannot be combined with other scene ids")
    return list(dict.fromkeys(scenes))


def evaluate_scene(
    vid: str, method: str, cfg: Config, make_predictor: Callable[[], Predictor]
) -> VideoResult:
    """Score one video's split frames (read first: an unknown video fails here) with the
    predictor ``make_predictor()`` builds."""
    paths = ScenePaths.from_config(vid, cfg.data)
    frames = split_frames(paths.udos_split, vid, cfg.eval.split)
    predict = make_predictor()
    return score_video(
        vid, method, cfg.eval.split, frames,
        lambda motion, frame: load_gt(paths, motion, frame),
        predict,
        progress=lambda fs: track(fs, description=f"{vid} {method}", transient=True),
    )


def evaluate_method(method: str, vid: str, cfg: Config, run_dir: Path
                    ) -> tuple[VideoResult, dict]:
    """Score ``method`` (``mg``, or a backend's trained run in ``run_dir``) on ``vid``; returns
    the result and the run's extra metrics (held-out PSNR, checkpoint step)."""
    extra: dict = {}

    def make_predictor() -> Predictor:
        scene = Scene(vid, cfg.data)
        if method == "mg":
            return mg_predictor(scene)
        predict, info = trained_predictor(get_backend(method), run_dir, scene, cfg)
        extra.update(info)
        return predict

    return evaluate_scene(vid, method, cfg, make_predictor), extra


def settings(cfg: Config) -> dict:
    """What an evaluation's numbers depend on besides the model: split, resolution, renderer."""
    return {"split": cfg.eval.split, "downscale": cfg.data.downscale,
            "renderer": cfg.render.backend, "data_root": str(cfg.data.root)}


def metrics_path(out_dir: Path, cfg: Config) -> Path:
    """``metrics.json``, unless it holds numbers made under other settings: then
    ``metrics-<settings hash>.json`` beside it."""
    path = out_dir / "metrics.json"
    mine = settings(cfg)
    if not path.is_file() or json.loads(path.read_text()).get("settings", mine) == mine:
        return path
    key = hashlib.sha1(json.dumps(mine, sort_keys=True).encode()).hexdigest()[:8]
    return out_dir / f"metrics-{key}.json"


def write_metrics(
    result: VideoResult, out_dir: Path, cfg: Config, console: Console, extra: dict | None = None
) -> Path:
    """Write the metrics (plus ``extra`` fields and the settings) and the resolved config."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = metrics_path(out_dir, cfg)
    if path.exists():
        console.print(f"re-evaluated under the same settings: updating {path}")
    elif path.name != "metrics.json":
        console.print(f"[yellow]{out_dir / 'metrics.json'} holds numbers under other settings; "
                      f"writing beside it: {path.name}[/yellow]")
    doc = {**result.to_json(), **(extra or {}), "settings": settings(cfg)}
    path.write_text(json.dumps(doc, indent=1))
    save_config(cfg, path.with_name(path.name.replace("metrics", "eval_config")
                                    ).with_suffix(".yaml"))
    return path


def _fmt(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.2f}"


def results_table(results: list[VideoResult], title: str) -> Table:
    """Per-scene rows of mAP Dyn / SS / Dyn+SS, plus the official mean row for several scenes."""
    table = Table(title=title)
    table.add_column("scene")
    table.add_column("method")
    for m in MOTION_TYPES:
        table.add_column(f"mAP {COLUMNS[m]}", justify="right")
    table.add_column("frames", justify="right")
    for r in results:
        maps = (_fmt(r.map[m]) for m in MOTION_TYPES)
        table.add_row(r.scene, r.method, *maps, str(r.frame_count))
    if len(results) > 1:
        means = [_fmt(mean_over_videos(r.map[m] for r in results)) for m in MOTION_TYPES]
        table.add_row("mean", results[0].method, *means, str(sum(r.frame_count for r in results)),
                      style="bold")
    return table


def summary_json(results: list[VideoResult]) -> dict:
    """Mean over videos (NaN counted as 0) and the per-video mAPs."""
    return {
        "method": results[0].method,
        "split": results[0].split,
        "scenes": [r.scene for r in results],
        "map": {m: mean_over_videos(r.map[m] for r in results) for m in MOTION_TYPES},
        "per_scene": {r.scene: r.to_json()["map"] for r in results},
    }

