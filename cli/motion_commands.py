"""``lmf-gs motion-masks``: soft 2D motion masks of every registered frame, from optical flow
and the camera poses (no learned weights)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.app import app, console
from cli.options import ConfigName, DataRoot, Overrides, make_config
from lmf_gs.errors import LmfError

if TYPE_CHECKING:
    import numpy as np

    from lmf_gs.config import Config
    from lmf_gs.data.motion.estimate import DepthFn
    from lmf_gs.data.scene import Scene


def model_depth(run_dir: Path, scene: Scene, cfg: Config) -> DepthFn:
    """Depth of the static layer of a trained Gaussian run (``--model``), rendered at
    ``scene``'s working camera for each registered frame."""
    import torch

    from lmf_gs.backends import get_backend

    backend, _ = get_backend("gs").load(run_dir, scene, cfg)
    dev = backend.device
    K = torch.as_tensor(scene.intrinsics.K, dtype=torch.float32, device=dev)

    @torch.no_grad()
    def depth(i: int) -> np.ndarray:
        t = torch.as_tensor(scene.times[i], device=dev)
        w2c = torch.as_tensor(scene.w2c[i], dtype=torch.float32, device=dev)
        out = backend.model.render(t[None], w2c[None], K[None], scene.width, scene.height,
                                   cfg.render.backend, layers=("static",))
        return out.depth[0].cpu().numpy()

    return depth


@app.command("motion-masks")
def motion_masks(
    scene: Annotated[str, typer.Option("--scene", "-s", help="Video id.")],
    data_root: DataRoot = Path("data"),
    model: Annotated[Path | None, typer.Option(
        "--model", help="A trained Gaussian run folder (e.g. runs/VID/gs): use its static "
        "layer's depth instead of the SfM points' to remove the camera's motion.")] = None,
    residual: Annotated[str, typer.Option(
        help="depth: flow minus the rigid flow of the depth map; epipolar: the flow's distance "
        "to its epipolar line (no depth needed, weaker).")] = "depth",
    overwrite: Annotated[bool, typer.Option(
        help="Replace the masks already in motion_masks/VID.")] = False,
    config: ConfigName = None,
    set_: Overrides = None,
) -> None:
    """Soft motion masks (0-255 PNG, the frames' resolution) of every registered frame into
    DATA_ROOT/motion_masks/VID/: dense flow (OpenCV DIS) to the previous and next registered
    frames minus the flow the camera motion explains, scored per frame."""
    from rich.progress import track

    from lmf_gs.data.motion.estimate import MotionEstimator, MotionOptions
    from lmf_gs.data.motion.writer import MaskFolderWriter
    from lmf_gs.data.paths import ScenePaths
    from lmf_gs.data.scene import Scene

    try:
        options = MotionOptions(residual=residual)
    except ValueError as e:
        raise LmfError(f"--residual: {e}") from None
    if model is not None and residual == "epipolar":
        raise LmfError("--model gives a depth map, which --residual epipolar does not use")
    cfg = make_config(config, [*(set_ or []), "data.cache_frames=false"], data_root)
    poses = ScenePaths.from_config(scene, cfg.data).epic_fields
    if not poses.is_file():
        raise LmfError(f"{poses}: no camera poses for {scene} (an EPIC Fields camera file; "
                       "`lmf-gs prepare` makes one from a video)")
    sc = Scene(scene, cfg.data)
    sc.frame_store  # noqa: B018 (one-line error for absent frames, before anything is written)
    writer = MaskFolderWriter(sc.paths.motion_masks, overwrite)
    depth = model_depth(model, sc, cfg) if model is not None else None
    estimator = MotionEstimator(sc, options, depth)
    start = time.perf_counter()
    with writer:
        for i in track(range(len(sc)), description=f"{scene} motion masks", console=console,
                       transient=True):
            writer.write(sc.frames[i], sc.to_gt_grid(estimator.frame(i)))
    seconds = time.perf_counter() - start
    source = ("no depth (epipolar distance)" if residual == "epipolar" else
              f"depth from {model}" if model is not None else "depth from the SfM points")
    console.print(f"{scene}: wrote {writer.count} motion masks to {writer.dest} in "
                  f"{seconds:.1f} s ({seconds / max(writer.count, 1):.2f} s per frame; "
                  f"{residual} residual, {source})", highlight=False, soft_wrap=True)
    if estimator.frames_without_depth:
        console.print(f"[yellow]{estimator.frames_without_depth} frame(s) had no depth (fewer "
                      "than 3 SfM points in view): scored by epipolar distance[/yellow]")
