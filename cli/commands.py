"""Core commands: synth, train, refine, evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, console, default_config, run_config
from cli.options import (
    BACKENDS,
    Backend,
    ConfigName,
    DataRoot,
    Out,
    Overrides,
    Scenes,
    make_config,
)
from lmf_gs.errors import LmfError

METHODS = ("mg", *BACKENDS)


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise LmfError(f"unknown backend {backend!r} (expected one of: {', '.join(BACKENDS)})")


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
) -> None:
    """Generate a synthetic egocentric kitchen video and score its 2D motion masks (MG row)."""
    from lmf_gs.config import load_config
    from lmf_gs.data.synthetic import generate_scene
    from lmf_gs.eval.evaluate import evaluate_scene, mg_predictor, results_table

    with console.status(f"rendering {vid} ({frames} frames, {width}x{height})"):
        res = generate_scene(out, vid, frames, seed, width, height, motion=not static,
                             frames_as_tar=tar)
    console.print(f"wrote {vid} to {out} in {res.seconds:.1f} s")
    if static:
        return
    cfg = load_config(None, [f"data.root={out}"])
    result = evaluate_scene(vid, "mg", cfg, mg_predictor)
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
    """Train the layered model of a video into OUT/VID/BACKEND (config, checkpoint, logs)."""
    from lmf_gs.runs import prepare_run_dir

    check_backend(backend)
    run_dir = prepare_run_dir(out / scene / backend, resume=resume, overwrite=overwrite)
    if resume:  # the run's own config, with this call's overrides on top
        cfg = run_config(run_dir, None, set_, data_root)
    else:
        cfg = make_config(config or default_config(backend), set_, data_root)
    if backend == "nerf":
        from lmf_gs.nerf.train import train_nerf as train_fn
    else:
        from lmf_gs.train.run import train_scene as train_fn
    summary = train_fn(scene, cfg, run_dir, resume=resume, console=console)
    size = (f"{summary['parameters']} parameters" if backend == "nerf"
            else f"gaussians {summary['gaussians']}")
    console.print(
        f"{scene}: trained {summary['iters']} iters in {summary['seconds']:.0f} s, "
        f"held-out PSNR {summary['psnr_heldout']:.2f} dB, {size} -> {run_dir}"
    )


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
    writes masks and metrics.json to OUT/VID/BACKEND/refine-FUSION-nN/ (never overwriting)."""
    from lmf_gs.eval.evaluate import results_table

    check_backend(backend)
    if backend == "nerf":
        from lmf_gs.nerf.refine import refine_nerf as refine_run
    else:
        from lmf_gs.refine.refine import refine_run

    overrides = [*(set_ or [])]
    if neighbors is not None:
        overrides.append(f"refine.neighbors={neighbors}")
    if fusion is not None:
        overrides.append(f"refine.fusion={fusion}")
    train_dir = out / scene / backend
    cfg = run_config(train_dir, config, overrides, data_root)
    res = refine_run(scene, cfg, train_dir, frames, cfg.refine.fusion, cfg.refine.neighbors,
                     console=console)
    console.print(f"refined {len(res.frames)} frames in {res.seconds:.1f} s "
                  f"({res.seconds_per_frame:.2f} s per frame) -> {res.run_dir}")
    if res.metrics.frame_count:
        console.print(results_table([res.metrics], f"UDOS mAP, {res.run_dir.name}"))


@app.command()
def evaluate(
    scene: Scenes,
    method: Annotated[str, typer.Option(help=f"What to score: {', '.join(METHODS)}.")] = "mg",
    data_root: DataRoot = Path("data"),
    out: Out = Path("runs"),
    config: ConfigName = None,
    set_: Overrides = None,
) -> None:
    """Score a method on the UDOS split (official protocol); writes OUT/VID/METHOD/metrics.json."""
    import json

    from lmf_gs.eval.evaluate import (
        evaluate_scene,
        expand_scenes,
        mg_predictor,
        results_table,
        summary_json,
        trained_predictor,
        write_metrics,
    )

    if method not in METHODS:
        raise LmfError(f"unknown method {method!r} (expected one of: {', '.join(METHODS)})")
    cfg = make_config(config, set_, data_root)
    results = []
    for vid in expand_scenes(scene, cfg.data):
        vcfg, make_predictor, extra = cfg, mg_predictor, {}
        if method == "gs":
            vcfg = run_config(out / vid / "gs", config, set_, data_root)
            make_predictor, extra = trained_predictor(out / vid / "gs", vid, vcfg)
        elif method == "nerf":
            from lmf_gs.nerf.evaluate import nerf_predictor

            vcfg = run_config(out / vid / "nerf", config, set_, data_root)
            make_predictor, extra = nerf_predictor(out / vid / "nerf", vid, vcfg)
        result = evaluate_scene(vid, method, vcfg, make_predictor)
        path = write_metrics(result, out / vid / method, vcfg, console, extra)
        console.print(f"{vid}: wrote {path}")
        results.append(result)
    console.print(results_table(results, f"UDOS mAP ({cfg.eval.split})"))
    if len(results) > 1:
        summary = out / f"summary_{method}.json"
        summary.write_text(json.dumps(summary_json(results), indent=1))
        console.print(f"mean over {len(results)} scenes: wrote {summary}")


@app.command()
def ablate(
    scene: Annotated[str, typer.Option("--scene", "-s", help="Video id.")],
    data_root: DataRoot = Path("data"),
    out: Out = Path("runs"),
    config: ConfigName = None,
    set_: Overrides = None,
    neighbors: Annotated[str, typer.Option(
        help="Comma list of N for the neighbour rows (paper Table 3); '' for none.")] = "2,5,20",
    backend: Backend = "gs",
) -> None:
    """The paper's ablation (Table 5: fusion with/without TR) and Table 3 (neighbours) on a
    trained run, with the 2D mask row and seconds per refined frame; JSON + Markdown in
    OUT/VID/BACKEND/ablate/."""
    from lmf_gs.ablate import ablate_scene, rich_table

    check_backend(backend)
    try:
        ns = [int(n) for n in neighbors.split(",") if n.strip()]
    except ValueError:
        raise LmfError(f"--neighbors {neighbors!r}: expected integers like 2,5,20") from None
    train_dir = out / scene / backend
    cfg = run_config(train_dir, config, set_, data_root)
    rows, folder = ablate_scene(scene, cfg, train_dir, ns, backend, console=console)
    console.print(rich_table(rows, f"{scene}: ablation (UDOS mAP, relative to {rows[1].method})"))
    console.print(f"wrote {folder / 'ablation.json'} and {folder / 'ablation.md'}")


@app.command()
def report(
    scene: Scenes,
    out: Out = Path("runs"),
) -> None:
    """One table of every metrics.json of a video: MG, trained models and their refinements."""
    from lmf_gs.eval.report import collect, report_table

    for vid in scene:
        console.print(report_table(collect(out, vid), f"{vid}: UDOS mAP ({out / vid})"))
