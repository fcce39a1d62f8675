"""Experiment commands: ``ablate`` (the paper's Tables 3 and 5 on one video) and ``compare``
(the Gaussian and the NeRF backend side by side)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, console, default_config, run_config
from cli.options import Backend, ConfigName, DataRoot, Out, Overrides, make_config
from lmf_gs.errors import LmfError


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
    OUT/VID/BACKEND/ablate/ (a stopped ablation resumes with the variants still missing)."""
    from lmf_gs.backends import get_backend
    from lmf_gs.experiments.ablate import ablate_scene, ablation_table

    kind = get_backend(backend)
    try:
        ns = [int(n) for n in neighbors.split(",") if n.strip()]
    except ValueError:
        raise LmfError(f"--neighbors {neighbors!r}: expected integers like 2,5,20") from None
    if any(n < 0 for n in ns):
        raise LmfError(f"--neighbors {neighbors!r}: N must be >= 0")
    train_dir = out / scene / kind.name
    cfg = run_config(train_dir, config, set_, data_root)
    rows, folder = ablate_scene(kind, scene, cfg, train_dir, ns, console=console)
    console.print(ablation_table(rows, f"{scene}: ablation (UDOS mAP, relative to "
                                       f"{rows[1].method})"))
    console.print(f"wrote {folder / 'ablation.json'} and {folder / 'ablation.md'}")


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
    2D mask row; writes comparison.json and .md to OUT/VID/compare[-k]/ (a stopped comparison
    with the same settings resumes). --set applies to both."""
    from lmf_gs.experiments.compare import compare_scene, report_table, speedups

    if reuse:
        gs_cfg = run_config(out / scene / "gs", gs_config, set_, data_root)
        nerf_cfg = run_config(out / scene / "nerf", nerf_config, set_, data_root)
    else:
        gs_cfg = make_config(gs_config or default_config("gs"), set_, data_root)
        nerf_cfg = make_config(nerf_config or default_config("nerf"), set_, data_root)
    report, folder = compare_scene(scene, gs_cfg, nerf_cfg, out, iters, budget_s, reuse,
                                   console=console)
    console.print(report_table(report))
    console.print(speedups(report))
    console.print(f"wrote {folder / 'comparison.json'} and {folder / 'comparison.md'}")
