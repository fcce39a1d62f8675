"""``lmf-gs gt-masks``: human masks of the moving object -> UDOS ground truth and split, so that
``lmf-gs evaluate`` scores a user's own video."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import track

from cli.app import app, console
from cli.options import DataRoot, make_config


@app.command("gt-masks")
def gt_masks(
    mask_dir: Annotated[Path, typer.Argument(
        help="Folder of mask PNGs, one per source frame in natural name order (e.g. DAVIS "
        "Annotations/<video>/); any non-zero label is the object.")],
    vid: Annotated[str, typer.Option("--vid", help="Video id (as given to prepare).")],
    data_root: DataRoot = Path("data"),
    every: Annotated[int, typer.Option(
        help="Annotate only every N-th mask (masks 0, N, 2N, ...).")] = 1,
    first_number: Annotated[int, typer.Option(
        help="Frame number of the first mask (prepare numbers source frame 0 as 1).")] = 1,
    layer: Annotated[str, typer.Option(
        help="dynamic: the object moves (test_dynamic); semistatic: it was moved, then rests "
        "(test_semistatic). Both also go to test_dynamic_semistatic.")] = "dynamic",
    overwrite: Annotated[bool, typer.Option(
        help="Replace VID's existing annotation folders and split entry.")] = False,
) -> None:
    """Write DATA_ROOT/udos/annotations/test_*/VID/ (masks resized nearest-neighbour to the
    frames of DATA_ROOT/frames/VID) and VID's entry of DATA_ROOT/udos/split/test.json."""
    from lmf_gs.data.gt_import import GtImportOptions, import_gt_masks
    from lmf_gs.data.paths import ScenePaths

    paths = ScenePaths.from_config(vid, make_config(None, None, data_root).data)
    options = GtImportOptions(every=every, first_number=first_number, layer=layer,
                              overwrite=overwrite)
    r = import_gt_masks(mask_dir, paths, options, progress=lambda fs: track(
        fs, description=f"{vid} masks", console=console, transient=True))
    w, h = r.plan.size
    unregistered = f", {r.plan.unregistered} unregistered left out" if r.plan.unregistered else ""
    console.print(
        f"[bold]{vid}[/bold]: wrote {len(r.plan.masks)} frames ({w}x{h}, layer {layer}) to "
        f"{paths.udos_annotations}/test_*/{vid}/, {len(r.plan.split)} in {r.split_path} "
        f"within_action{unregistered}; object pixel share {100 * r.object_share:.2f}% over "
        f"{r.frames_with_object} frames with the object (chance-level mAP)",
        highlight=False, soft_wrap=True)
