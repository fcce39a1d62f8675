"""`lmf-gs evaluate`: score a method's soft maps on UDOS, write metrics.json, print a table."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import track
from rich.table import Table

from lmf_gs.config import MOTION_TYPES, Config, DataConfig, save_config
from lmf_gs.data.masks import MotionMasks
from lmf_gs.data.paths import ScenePaths
from lmf_gs.data.udos import load_gt, load_split, split_frames
from lmf_gs.errors import DataError, LmfError
from lmf_gs.eval.udos_metric import Predictor, VideoResult, mean_over_videos, score_video

COLUMNS = {"dynamic": "Dyn", "semistatic": "SS", "dynamic_semistatic": "Dyn+SS"}


def mg_predictor(paths: ScenePaths) -> Predictor:
    """The 2D baseline: the motion mask (motion_masks/, else the MG cache) for all motion types."""
    masks = MotionMasks(paths)

    def predict(frame: str) -> dict[str, object]:
        mask = masks.read(frame)
        if mask is None:
            raise DataError(
                f"no 2D motion mask for {paths.vid}/{frame} "
                f"(looked in {paths.motion_masks} and {paths.mg_cache})"
            )
        return dict.fromkeys(MOTION_TYPES, mask)

    return predict


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
    vid: str, method: str, cfg: Config, make_predictor: Callable[[ScenePaths], Predictor]
) -> VideoResult:
    """Score one video's split frames with the predictor built for it."""
    paths = ScenePaths.from_config(vid, cfg.data)
    frames = split_frames(paths.udos_split, vid, cfg.eval.split)
    predict = make_predictor(paths)
    return score_video(
        vid, method, cfg.eval.split, frames,
        lambda motion, frame: load_gt(paths, motion, frame),
        predict,
        progress=lambda fs: track(fs, description=f"{vid} {method}", transient=True),
    )


def trained_predictor(
    run_dir: Path, vid: str, cfg: Config
) -> tuple[Callable[[ScenePaths], Predictor], dict]:
    """Predictor of a trained run's layer masks, and its held-out PSNR for metrics.json."""
    from lmf_gs.data.scene import Scene
    from lmf_gs.eval.layered_eval import model_predictor
    from lmf_gs.runs import load_model, resolve_device
    from lmf_gs.train.trainer import heldout_psnr
    from lmf_gs.train.views import Cameras

    device = resolve_device(cfg)
    model, _, ckpt = load_model(run_dir, device)
    scene = Scene(vid, cfg.data)
    cams = Cameras.of(scene, device)
    held = [scene.index(f) for f in ckpt.get("heldout_frames", [])]
    psnr = heldout_psnr(model, scene, cams, held, cfg.render.backend)
    extra = {"psnr_heldout": None if math.isnan(psnr) else psnr, "heldout_frames": len(held),
             "checkpoint_step": ckpt["step"]}
    return (lambda paths: model_predictor(model, scene, cams, cfg.render.backend)), extra


def write_metrics(
    result: VideoResult, out_dir: Path, cfg: Config, console: Console, extra: dict | None = None
) -> Path:
    """Write ``metrics.json`` (plus ``extra`` fields) and the resolved ``eval_config.yaml``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "metrics.json"
    if path.exists():
        console.print(f"[yellow]replacing earlier {path}[/yellow]")
    path.write_text(json.dumps({**result.to_json(), **(extra or {})}, indent=1))
    save_config(cfg, out_dir / "eval_config.yaml")
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
