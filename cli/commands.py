"""Core commands: synth, train, refine, evaluate, report."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, console, default_config, run_config
from cli.options import Backend, ConfigName, DataRoot, Out, Overrides, Scenes, make_config
from lmf_gs.errors import LmfError

MIN_SYNTH_FRAMES = 10  # enough for a train/held-out split and a UDOS split

@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Data root to write (canonical layout).")],
    vid: Annotated[str, typer.Option(help="Video id of the synthetic scene.")] = "SYN_01",
    frames: Annotated[int, typer.Option(help="Number of registered frames.")] = 120,
    seed: Annotated[int, typer.Option(help="Random seed (output is deterministic per seed).")] = 0,
    width: Annotated[int, typer.Option(help="Frame width.")] = 456,
    height: Annotated[int, typer.Option(help="Frame height.")] = 256,
    static: Annotated[bool, typer.Option(help="No hands and no moved objects.")] = False,
    tar: Annotated[bool, typer.Option(help="Write frames as an EK100-style tar.")] = False,
    stride: Annotated[int | None, typer.Option(
        help="EPIC's time base: frame numbers about STRIDE apart at --fps, motion in seconds "
        "(--frames 600 --stride 25 spans 5 minutes); default: the short synthetic clip.")] = None,
    fps: Annotated[float, typer.Option(help="Frame rate of the frame numbers.")] = 50.0,
) -> None:
    """Generate a synthetic egocentric kitchen video and score its 2D motion masks (MG row)."""
    from lmf_gs.config import load_config
    from lmf_gs.data.scene import Scene
    from lmf_gs.data.synthetic import generate_scene
    from lmf_gs.experiments.evaluate import evaluate_scene, mg_predictor, results_table

    if frames < MIN_SYNTH_FRAMES:
        raise LmfError(f"--frames {frames}: a synthetic video needs at least {MIN_SYNTH_FRAMES} "
                       "frames")
    if width < 32 or height < 32:
        raise LmfError(f"--width/--height {width}x{height}: at least 32x32 pixels")
    if (stride is not None and stride < 1) or fps <= 0:
        raise LmfError(f"--stride {stride} / --fps {fps}: both must be positive")
    with console.status(f"rendering {vid} ({frames} frames, {width}x{height})"):
        res = generate_scene(out, vid, frames, seed, width, height, motion=not static,
                             frames_as_tar=tar, stride=stride, fps=fps)
    console.print(f"wrote {vid} ({res.duration_s:.1f} s of video) to {out} in "
                  f"{res.seconds:.1f} s")
    if static:
        return
    cfg = load_config(None, [f"data.root={out}"])
    result = evaluate_scene(vid, "mg", cfg, lambda: mg_predictor(Scene(vid, cfg.data)))
    console.print(results_table([result], "2D motion masks vs GT (UDOS mAP)"))


@app.command()
def train(
    scene: Annotated[str, typer.Option("--scene", "-s", help="Video id.")],
    data_root: DataRoot = Path("data"),
    out: Out = Path("runs"),
    config: ConfigName = None,
    set_: Overrides = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in OUT/VID/BACKEND.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run.")] = False,
    backend: Backend = "gs",
) -> None:
    """Train the layered model of a video into OUT/VID/BACKEND (config, checkpoint, logs).
    Ctrl-C or SIGTERM checkpoints before stopping; --resume continues."""
    from lmf_gs.backends import get_backend
    from lmf_gs.core.runs import RunDir
    from lmf_gs.experiments.train import train_run

    kind = get_backend(backend)
    run = RunDir(out / scene / kind.name, resume=resume, overwrite=overwrite)
    if resume:  # the run's own config, with this call's overrides on top
        cfg = run_config(run.path, None, set_, data_root)
    else:
        cfg = make_config(config or default_config(kind.name), set_, data_root)
    summary = train_run(kind, scene, cfg, run, console=console)
    size = ", ".join(f"{k} {v}" for k, v in summary.items() if k in ("gaussians", "parameters"))
    held = summary["psnr_heldout"]
    held = "no held-out frames" if math.isnan(held) else f"held-out PSNR {held:.2f} dB"
    console.print(f"{scene}: trained {summary['steps']} iters in {summary['seconds']:.0f} s, "
                  f"{held}, {size} -> {run.path}")


@app.command()
def refine(
    scene: Annotated[str, typer.Option("--scene", "-s", help="Video id.")],
    data_root: DataRoot = Path("data"),
    out: Out = Path("runs"),
    config: ConfigName = None,
    set_: Overrides = None,
    frames: Annotated[str | None, typer.Option(
        help="Frames to analyse: comma list of names/numbers or a file; default: UDOS split.",
    )] = None,
    neighbors: Annotated[int | None, typer.Option(
        help="Also refine on N neighbouring registered frames each side (paper Eq. 16-17).",
    )] = None,
    fusion: Annotated[str | None, typer.Option(help="none, pmf, nmf or lmf (default lmf).")] = None,
    backend: Backend = "gs",
) -> None:
    """Test-time refinement of a trained run (static layer frozen) with layered motion fusion;
    writes masks and metrics.json to OUT/VID/BACKEND/refine-FUSION-nN/ (never overwriting; an
    unfinished run with the same settings is resumed)."""
    from lmf_gs.backends import get_backend
    from lmf_gs.experiments.evaluate import results_table
    from lmf_gs.experiments.refine import refine_run

    kind = get_backend(backend)

    overrides = [*(set_ or [])]
    if neighbors is not None:
        overrides.append(f"refine.neighbors={neighbors}")
    if fusion is not None:
        overrides.append(f"refine.fusion={fusion}")
    train_dir = out / scene / kind.name
    cfg = run_config(train_dir, config, overrides, data_root)
    res = refine_run(kind, scene, cfg, train_dir, frames, cfg.refine.fusion,
                     cfg.refine.neighbors, console=console)
    console.print(f"refined {len(res.frames)} frames in {res.seconds:.1f} s "
                  f"({res.seconds_per_frame:.2f} s per frame) -> {res.run_dir}")
    if res.metrics.frame_count:
        console.print(results_table([res.metrics], f"UDOS mAP, {res.run_dir.name}"))


@app.command()
def evaluate(
    scene: Scenes,
    method: Annotated[str, typer.Option(
        help="What to score: mg (the 2D masks) or a backend's trained run (gs, nerf).")] = "mg",
    data_root: DataRoot = Path("data"),
    out: Out = Path("runs"),
    config: ConfigName = None,
    set_: Overrides = None,
) -> None:
    """Score a method on the UDOS split (official protocol); writes OUT/VID/METHOD/metrics.json
    (metrics-<settings>.json beside it when that holds numbers under other settings)."""
    import json

    from lmf_gs.backends import BACKENDS
    from lmf_gs.experiments.evaluate import (
        evaluate_method,
        expand_scenes,
        results_table,
        summary_json,
        write_metrics,
    )

    methods = ("mg", *BACKENDS)
    if method not in methods:
        raise LmfError(f"unknown method {method!r} (expected one of: {', '.join(methods)})")
    cfg = make_config(config, set_, data_root)
    results = []
    for vid in expand_scenes(scene, cfg.data):
        vcfg = cfg if method == "mg" else run_config(out / vid / method, config, set_, data_root)
        result, extra = evaluate_method(method, vid, vcfg, out / vid / method)
        path = write_metrics(result, out / vid / method, vcfg, console, extra)
        console.print(f"{vid}: wrote {path}")
        results.append(result)
    console.print(results_table(results, f"UDOS mAP ({cfg.eval.split})"))
    if len(results) > 1:
        summary = out / f"summary_{method}.json"
        summary.write_text(json.dumps(summary_json(results), indent=1))
        console.print(f"mean over {len(results)} scenes: wrote {summary}")


@app.command()
def report(
    scene: Scenes,
    out: Out = Path("runs"),
) -> None:
    """One table of every metrics file of a video (or of every video in OUT with 'all'): MG,
    trained models and their refinements, with frames and settings."""
    from lmf_gs.experiments.report import collect, report_table, scenes_with_results

    if scene == ["all"]:
        scene = scenes_with_results(out)
        if not scene:
            raise LmfError(f"{out}: no video folder with a metrics.json")
    for vid in scene:
        console.print(report_table(collect(out, vid), f"{vid}: UDOS mAP ({out / vid})"))
