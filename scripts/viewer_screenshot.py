"""The README's viewer screenshot: start the viewer on a run, drive it in headless Chromium
(the browser test's code path) and save the page.

    python scripts/viewer_screenshot.py --scene SYN_DEMO --data-root data/demo --out runs/demo \\
        --dest docs/viewer.png [--frame NAME] [--mode "layer masks"] [--back 0.4] [--overwrite]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.app import run_config
from lmf_gs.errors import LmfError
from lmf_gs.viewer.browser import save_screenshot
from lmf_gs.viewer.server import Sizes, Viewer
from lmf_gs.viewer.source import open_run
from lmf_gs.viewer.state import MODES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scene", required=True)
    ap.add_argument("--data-root", type=Path, default=Path("data"))
    ap.add_argument("--out", type=Path, default=Path("runs"))
    ap.add_argument("--dest", type=Path, default=Path("docs/viewer.png"))
    ap.add_argument("--frame", help="frame name (default: the first UDOS split frame)")
    ap.add_argument("--mode", choices=MODES, default="layer masks")
    ap.add_argument("--back", type=float, default=0.4,
                    help="camera distance behind the frame's camera, in median scene depths")
    ap.add_argument("--refined", type=Path, help="show this refinement run")
    ap.add_argument("--size", type=int, nargs=2, default=(1280, 720))
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args()
    if args.dest.exists() and not args.overwrite:
        raise SystemExit(f"{args.dest} exists; pass --overwrite to replace it")

    train_dir = args.out / args.scene / "gs"
    cfg = run_config(train_dir, None, None, args.data_root)
    src, first = open_run(train_dir, cfg, args.scene, args.refined)
    assert src.scene is not None
    try:
        frame = src.scene.index(args.frame or src.scene.split_frames(cfg.eval.split)[0])
    except LmfError as e:
        raise SystemExit(str(e)) from None
    viewer = Viewer(src, first, port=0, sizes=Sizes(320, max(args.size)), title=args.scene)
    viewer.start()
    try:
        shown = save_screenshot(viewer, args.dest, frame, args.mode, args.back, *args.size)
    finally:
        viewer.stop()
    print(f"wrote {args.dest}: {src.recording.names[frame]} ({shown.state.source}, "
          f"{args.mode}), rendered {shown.width}x{shown.height} in {shown.ms:.0f} ms")


if __name__ == "__main__":
    main()
