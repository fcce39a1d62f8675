"""``lmf-gs prepare``: a video or a folder of frames -> frames, camera poses (pycolmap) and SfM
points in the canonical layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, console
from cli.options import DataRoot


@app.command()
def prepare(
    source: Annotated[Path, typer.Argument(
        help="A video (.mp4, .mov, ...) or a folder of .jpg/.png frames (natural name order).")],
    vid: Annotated[str, typer.Option("--vid", help="Video id to write it as.")],
    data_root: DataRoot = Path("data"),
    every: Annotated[int | None, typer.Option(
        help="Keep every N-th source frame (default: every frame).")] = None,
    fps: Annotated[float | None, typer.Option(
        help="Keep about F frames per second of the source instead.")] = None,
    source_fps: Annotated[float | None, typer.Option(
        help="Frame rate of a frame folder (a video's own is read from the file); written to "
        "the JSON as 'fps'.")] = None,
    size: Annotated[int, typer.Option(
        help="Longest side of the written frames in pixels (EPIC: 456; never enlarged; 0 = "
        "source size).")] = 456,
    overlap: Annotated[int, typer.Option(
        help="Sequential matching: each frame is matched with its next N frames (and "
        "quadratically further ones).")] = 10,
    loop_closure: Annotated[bool, typer.Option(
        help="Also match every 10th frame with all other such key frames (revisited places).")]
    = False,
    camera_model: Annotated[str, typer.Option(
        help="COLMAP camera model shared by all frames: SIMPLE_RADIAL, RADIAL, OPENCV, "
        "SIMPLE_PINHOLE or PINHOLE (written as OPENCV).")] = "SIMPLE_RADIAL",
    min_registered: Annotated[float, typer.Option(
        help="Fail unless at least this fraction of the frames (and 3) register.")] = 0.5,
    threads: Annotated[int, typer.Option(help="CPU threads for COLMAP (-1: all).")] = -1,
    seed: Annotated[int, typer.Option(help="Random seed of the mapper.")] = 0,
    mapper: Annotated[str, typer.Option(
        help="incremental (COLMAP), global (GLOMAP) or auto: incremental first, then global, "
        "then incremental with the next seed, while fewer than 95% of the frames register "
        "(without abrupt turns).")]
    = "auto",
    mapper_tries: Annotated[int, typer.Option(
        help="Mapping runs at most (the model with the most frames is kept).")] = 3,
    overwrite: Annotated[bool, typer.Option(
        help="Replace existing frames/VID, epic_fields/VID.json and sfm/VID.")] = False,
) -> None:
    """Estimate camera poses of a video with COLMAP (pycolmap: SIFT, sequential matching,
    incremental or global mapping, one shared camera) and write DATA_ROOT/frames/VID/,
    DATA_ROOT/epic_fields/VID.json (EPIC Fields format + 'fps') and DATA_ROOT/sfm/VID/."""
    from lmf_gs.prepare.pipeline import PrepareSettings, prepare
    from lmf_gs.prepare.sfm import SfmOptions
    from lmf_gs.prepare.source import Sampling

    settings = PrepareSettings(
        sampling=Sampling(every=every, fps=fps), longest_side=size or None,
        source_fps=source_fps,
        sfm=SfmOptions(camera_model=camera_model.upper(), overlap=overlap,
                       loop_closure=loop_closure, threads=threads, seed=seed,
                       mapper=mapper, mapper_tries=mapper_tries),
        min_registered=min_registered, overwrite=overwrite)
    r = prepare(source, vid, data_root, settings, console)
    s = r["seconds"]
    cam = r["camera"]
    console.print(
        f"[bold]{vid}[/bold]: {r['frames_registered']} / {r['frames_given']} frames registered, "
        f"{r['points']} points, mean reprojection error {r['mean_reprojection_error_px']:.3f} "
        f"px, {cam['colmap_model']} camera {' '.join(f'{v:.4g}' for v in cam['colmap_params'])}",
        highlight=False)
    console.print(
        f"seconds: frames {s['frames']:.1f}, features {s['features']:.1f}, matching "
        f"{s['matching']:.1f}, mapping {s['mapping']:.1f}, total {s['total']:.1f}",
        highlight=False)
    if r["unregistered"]:
        console.print(f"unregistered: frames {r['unregistered']}", highlight=False)
    if r["source_fps"] is None:
        console.print("no frame rate known (a frame folder without --source-fps): the JSON has "
                      "no 'fps', readers assume EPIC's 50", highlight=False)
    console.print(f"wrote {data_root / 'frames' / vid}/, {data_root / 'epic_fields' / vid}.json "
                  f"and {data_root / 'sfm' / vid}/ (sfm_report.json)", highlight=False)
