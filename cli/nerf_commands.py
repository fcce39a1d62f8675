"""``compare``: the Gaussian and the NeRF (NeuralDiff) backend side by side on one video."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, console, default_config, run_config
from cli.options import DataRoot, Out, Overrides, make_config


@app.command()
def compare(
    scene: Annotated[str, typer.Option("--scene", "-s", help="Video id.")],
    data_root: DataRoot = Path("data"),
    out: Out = Path("runs"),
    gs_config: Annotated[str | None, typer.Option(
        "--gs-config", help="Config of the Gaussian backend (default gs / gs_cpu).")] = None,
    nerf_config: Annotated[str | None, typer.Option(
        "--nerf-config", help="Config of the NeRF backend (default nerf / nerf_cpu).")] = None,
    set_: Overrides = None,
    iters: Annotated[int | None, typer.Option(
        help="Train both backends for this many iterations (default: each config's own).")] = None,
    budget_s: Annotated[float | None, typer.Option(
        "--budget-s", help="Train both backends for this many wall-clock seconds.")] = None,
    reuse: Annotated[bool, typer.Option(
        help="Refine and measure the trained runs OUT/VID/gs and OUT/VID/nerf instead.")] = False,
) -> None:
    """Train both backends on the same frames under one budget, refine both with TR + LMF, and
    print mAP, held-out PSNR, train time, TR s/frame, render ms/frame and peak memory with the
    2D mask row; writes comparison.json and .md to OUT/VID/compare[-k]/. --set applies to both."""
    from lmf_gs.compare import compare_scene, rich_table, speedups

    if reuse:
        gs_cfg = run_config(out / scene / "gs", gs_config, set_, data_root)
        nerf_cfg = run_config(out / scene / "nerf", nerf_config, set_, data_root)
    else:
        gs_cfg = make_config(gs_config or default_config(), set_, data_root)
        nerf_cfg = make_config(nerf_config or default_config("nerf"), set_, data_root)
    report, folder = compare_scene(scene, gs_cfg, nerf_cfg, out, iters, budget_s, reuse,
                                   console=console)
    console.print(rich_table(report))
    console.print(speedups(report))
    console.print(f"wrote {folder / 'comparison.json'} and {folder / 'comparison.md'}")
