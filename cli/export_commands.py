"""Export commands: export (point clouds, 3DGS PLY, UDOS cache), render (panels, MP4), view."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, console, run_config
from cli.options import Backend, ConfigName, DataRoot, Out, Overrides
from lmf_gs.errors import LmfError

FORMATS = ("open3d", "ply", "udos-cache")
Scene_ = Annotated[str, typer.Option("--scene", "-s", help="Video id.")]
Refined = Annotated[Path | None, typer.Option(
    "--refined", help="Use a refinement run instead of the trained model: its folder, absolute "
    "or relative to OUT/VID/BACKEND (e.g. refine-lmf-n0).")]
Dest = Annotated[Path | None, typer.Option(
    "--dest", help="Write here (a new or empty folder) instead of a new numbered folder in the "
    "run.")]


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:.2f} MiB"


@app.command()
def export(
    scene: Scene_,
    format_: Annotated[str, typer.Option(
        "--format", "-f", help=f"What to write: {', '.join(FORMATS)}.")] = "open3d",
    time: Annotated[str | None, typer.Option(
        "--time", help="Frame (name or number) whose Gaussians to export; default: the first "
        "UDOS split frame (else the middle frame).")] = None,
    layers: Annotated[str | None, typer.Option(
        help="Comma list of layers: static, semistatic, dynamic (default: all).")] = None,
    min_opacity: Annotated[float | None, typer.Option(
        help="Drop Gaussians less opaque than this at the frame (default: 0.1 for open3d, "
        "0 = keep all for ply).")] = None,
    color: Annotated[str | None, typer.Option(
        help="open3d colours: rgb (SH degree 0 + the frame's offset), view (SH towards the "
        "frame's camera) or layer (one colour per layer); default rgb.")] = None,
    refined: Refined = None,
    dest: Dest = None,
    data_root: DataRoot = Path("data"),
    out: Out = Path("runs"),
    config: ConfigName = None,
    set_: Overrides = None,
    backend: Backend = "gs",
) -> None:
    """Export a model: per-layer point clouds (open3d) or 3DGS PLY files (ply) of a Gaussian
    run, or the official UDOS evaluator's cache (udos-cache, any backend); writes to a new
    folder in OUT/VID/BACKEND/export/."""
    from rich.progress import track

    from lmf_gs.backends import get_backend
    from lmf_gs.data.scene import Scene
    from lmf_gs.export.frames import export_frame
    from lmf_gs.export.ply import write_plys
    from lmf_gs.export.pointclouds import write_clouds
    from lmf_gs.export.snapshot import frame_snapshot, parse_layers
    from lmf_gs.export.source import load_source, output_dir, writing
    from lmf_gs.export.udos_cache import cache_folder, write_udos_cache

    if format_ not in FORMATS:
        raise LmfError(f"unknown format {format_!r} (expected one of: {', '.join(FORMATS)})")
    kind = get_backend(backend)
    if format_ != "udos-cache" and kind.name != "gs":
        raise LmfError(f"--format {format_} exports Gaussians: it needs --backend gs")
    chosen = parse_layers(layers)
    train_dir = out / scene / kind.name
    cfg = run_config(train_dir, config, set_, data_root)
    sc = Scene(scene, cfg.data)
    src = load_source(kind, train_dir, refined, sc, cfg)
    base = train_dir / "export"

    if format_ == "udos-cache":
        if any(v is not None for v in (time, layers, min_opacity, color)):
            raise LmfError("--time, --layers, --min-opacity and --color do not apply to "
                           "--format udos-cache (it holds every UDOS split frame)")
        frames = sc.split_frames(cfg.eval.split)
        root = output_dir(dest, base / src.folder("udos-cache"))
        with writing(root):
            path = write_udos_cache(
                src.backend, frames, root,
                progress=lambda fs: track(fs, description="udos cache", console=console,
                                          transient=True))
        console.print(f"{scene}: wrote {path} ({len(frames)} {cfg.eval.split} frames, "
                      f"{_size(path)}) from {src.label}")
        console.print(
            f"official evaluator (epic-fields-nvs-udos): the folder must stay named "
            f"{cache_folder(scene)}; copy it into the script's cache folder and run there:\n"
            f"  cp -r {path.parent} cache/task2/\n"
            f"  python evaluate_udos.py --dir_cache=cache/task2 --dir_output=outputs/task2/ "
            f"--model=neuraldiff --vid={scene}", highlight=False, soft_wrap=True)
        return

    if format_ == "ply" and color is not None:
        raise LmfError("--color applies to --format open3d only (a PLY keeps the SH colours)")
    frame = export_frame(sc, time, cfg.eval.split)
    threshold = min_opacity if min_opacity is not None else (0.1 if format_ == "open3d" else 0.0)
    parts = frame_snapshot(src.backend.model, sc, frame, chosen)
    folder = output_dir(dest, base / src.folder(f"{format_}-{frame.rsplit('.', 1)[0]}"))
    with writing(folder):
        if format_ == "open3d":
            counts = write_clouds(parts, folder, threshold, color or "rgb")
        else:
            note = f"lmf-gs {scene} {frame} ({src.label}), min opacity {threshold}"
            counts = write_plys(parts, folder, threshold, (note,))
    console.print(f"{scene}: {format_} export of {frame} ({src.label}, opacity >= {threshold}) "
                  f"-> {folder}")
    for name, n in counts.items():
        path = folder / f"{name}.ply"
        console.print(f"  {path.name}: {n} Gaussians, {_size(path)}" if path.is_file() else
                      f"  {path.name}: no Gaussian with opacity >= {threshold}, not written "
                      "(Open3D writes no empty cloud)", highlight=False)

@app.command()
def render(
    scene: Scene_,
    frames: Annotated[str | None, typer.Option(
        help="Frames: START:END (numbers or names, inclusive), a comma list or a file; default: "
        "the UDOS split frames (every frame with --video).")] = None,
    video: Annotated[bool, typer.Option(help="Also write the panels as panels.mp4.")] = False,
    fps: Annotated[float, typer.Option(help="Frame rate of the video.")] = 10.0,
    png: Annotated[bool, typer.Option(help="Write one PNG per frame.")] = True,
    refined: Refined = None,
    dest: Dest = None,
    data_root: DataRoot = Path("data"),
    out: Out = Path("runs"),
    config: ConfigName = None,
    set_: Overrides = None,
    backend: Backend = "gs",
) -> None:
    """Panels (input | render | dynamic | semi-static | 2D motion mask | GT) per frame as PNG
    and/or MP4, in a new folder OUT/VID/BACKEND/render/ (render-2, ... when taken;
    render-REFINE-RUN with --refined)."""
    from contextlib import nullcontext

    from rich.progress import track

    from lmf_gs.backends import get_backend
    from lmf_gs.data.scene import Scene
    from lmf_gs.export.frames import render_frames
    from lmf_gs.export.panels import panel
    from lmf_gs.export.source import load_source, output_dir, writing
    from lmf_gs.export.video import Mp4Writer

    if not (png or video):
        raise LmfError("--no-png without --video writes nothing")
    kind = get_backend(backend)
    train_dir = out / scene / kind.name
    cfg = run_config(train_dir, config, set_, data_root)
    sc = Scene(scene, cfg.data)
    src = load_source(kind, train_dir, refined, sc, cfg)
    chosen = render_frames(sc, frames, cfg.eval.split, video)
    folder = output_dir(dest, train_dir / src.folder("render"))
    mp4 = folder / "panels.mp4"
    with writing(folder), (Mp4Writer(mp4, fps) if video else nullcontext()) as writer:
        for frame in track(chosen, description=f"{scene} panels", console=console,
                           transient=True):
            img = panel(src.backend, frame)
            if png:
                img.save(folder / f"{frame.rsplit('.', 1)[0]}.png")
            if writer is not None:
                writer.append(img)
    what = [f"{len(chosen)} PNG panels"] if png else []
    what += [f"{mp4.name} ({len(chosen)} frames at {fps:g} fps, {_size(mp4)})"] if video else []
    console.print(f"{scene}: wrote {' and '.join(what)} ({src.label}) -> {folder}")


@app.command()
def view(
    paths: Annotated[list[Path], typer.Argument(
        help="PLY files or export folders (a folder shows its combined.ply, else its .ply "
        "files).")],
) -> None:
    """Open exported point clouds or 3DGS PLY files in an Open3D window (needs a display)."""
    from lmf_gs.export.pointclouds import show

    files = []
    for p in paths:
        if p.is_dir():
            found = [p / "combined.ply"] if (p / "combined.ply").is_file() else sorted(
                p.glob("*.ply"))
            if not found:
                raise LmfError(f"{p}: no .ply files to show")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise LmfError(f"{p}: no such file or folder")
    show(files)
