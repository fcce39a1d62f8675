"""The interactive web viewer command."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, console, run_config
from cli.options import ConfigName, DataRoot, Out, Overrides


@app.command()
def viewer(
    scene: Annotated[str, typer.Option("--scene", "-s", help="Video id.")],
    refined: Annotated[Path | None, typer.Option(
        "--refined", help="Show this refinement run first (its folder, absolute or relative to "
        "OUT/VID/gs, e.g. refine-lmf-n0); every refinement run of the video is selectable in "
        "the page anyway.")] = None,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    host: Annotated[str, typer.Option(
        help="Address to listen on: 127.0.0.1 serves this machine only (use `ssh -L` from "
        "elsewhere), 0.0.0.0 every network interface.")] = "127.0.0.1",
    moving_size: Annotated[int, typer.Option(
        help="Longer image side (pixels) rendered while the camera moves or the video plays.")
    ] = 320,
    full_size: Annotated[int, typer.Option(
        help="Longer image side (pixels) rendered once the camera rests (e.g. 1280 on a "
        "GPU).")] = 640,
    data_root: DataRoot = Path("data"),
    out: Out = Path("runs"),
    config: ConfigName = None,
    set_: Overrides = None,
) -> None:
    """Interactive web viewer (viser): render a trained or refined model in the browser from any
    camera, scrub through time, toggle layers, show layer masks or depth; Ctrl-C stops it."""
    from lmf_gs.errors import LmfError
    from lmf_gs.viewer.server import Sizes, Viewer, check_port
    from lmf_gs.viewer.source import open_run

    if not 16 <= moving_size <= full_size:
        raise LmfError(f"--moving-size {moving_size} must be at least 16 and at most "
                       f"--full-size {full_size}")
    check_port(host, port)  # before the (slow) model loading; `start` checks again
    train_dir = out / scene / "gs"
    cfg = run_config(train_dir, config, set_, data_root)
    source, first = open_run(train_dir, cfg, scene, refined)
    view = Viewer(source, first, host, port, Sizes(moving_size, full_size), title=scene)
    try:  # from the server's start: a Ctrl-C at any point after it stops it (its threads
        # would keep the process alive)
        url = view.start()
        states = ", ".join(source.labels)
        console.print(f"{scene}: {len(source.recording)} frames, models: {states}; rendering "
                      f"with {source.backend} on {source.device}", highlight=False)
        console.print(f"viewer at [bold]{url}[/bold]  (Ctrl-C to stop)", highlight=False)
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        console.print("stopping the viewer")
    finally:
        view.stop()
