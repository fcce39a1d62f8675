"""Viewer frame times on a trained run: milliseconds to render (and compose) one image at the
reduced and the full size, and to encode it as the viewer sends it (JPEG + depth PNG).

Cameras: recorded frames (every k-th), and the same cameras pulled back by half the scene's
median depth (more of the scene in view, as when orbiting). All layers, RGB.

    python benchmarks/bench_viewer.py --scene SYN_DEMO --data-root data/demo --out runs/demo
                                      [--canvas 1280 720] [--sizes 320 960] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from cli.app import run_config
from lmf_gs.viewer.camera import ViewCamera, pose_of, render_size, vertical_fov
from lmf_gs.viewer.render import render_view
from lmf_gs.viewer.source import open_run, scene_scale
from lmf_gs.viewer.state import ViewerState


def encode_ms(image: np.ndarray, depth: np.ndarray) -> float:
    """JPEG (quality 90) of the image and PNG of the 24-bit fixed-point depth, as viser does."""
    start = time.perf_counter()
    cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    fixed = np.clip(depth * 100_000, 0, 2**24 - 1).astype(np.uint32)
    cv2.imencode(".png", fixed[..., None].view(np.uint8)[..., :3])
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scene", required=True)
    ap.add_argument("--data-root", type=Path, default=Path("data"))
    ap.add_argument("--out", type=Path, default=Path("runs"))
    ap.add_argument("--canvas", type=int, nargs=2, default=(1280, 720))
    ap.add_argument("--sizes", type=int, nargs="+", default=(320, 960))
    ap.add_argument("--cameras", type=int, default=8, help="recorded frames to use")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    train_dir = args.out / args.scene / "gs"
    src, first = open_run(train_dir, run_config(train_dir, None, None, args.data_root),
                          args.scene)
    rec, model = src.recording, src.model(first)
    pull = 0.5 * scene_scale(model)
    state = ViewerState(len(rec))
    cams = []
    for i in np.linspace(0, len(rec) - 1, args.cameras).round().astype(int):
        wxyz, pos = pose_of(rec.w2c[i])
        cam = ViewCamera(wxyz, pos, vertical_fov(rec.K, rec.height), *args.canvas)
        back = tuple(np.asarray(pos) - pull * rec.c2w[i][:3, 2])
        cams += [(state.with_frame(int(i)), cam, "recorded"),
                 (state.with_frame(int(i)), replace(cam, position=back), "pulled back")]

    table = Table(title=f"{args.scene} ({src.backend} on {src.device}, {args.threads} thread(s), "
                        f"canvas {args.canvas[0]}x{args.canvas[1]}, {model.num_gaussians()})")
    for col in ("size", "cameras", "render ms (median)", "render ms (max)", "encode ms"):
        table.add_column(col, justify="right")
    render_view(model, rec, state, cams[0][1], 64, 36, src.backend)  # warm-up
    for side in args.sizes:
        w, h = render_size(*args.canvas, side)
        for kind in ("recorded", "pulled back"):
            ms, enc = [], []
            for st, cam, k in cams:
                if k == kind:
                    view = render_view(model, rec, st, cam, w, h, src.backend)
                    ms.append(view.ms)
                    enc.append(encode_ms(view.image, view.depth))
            table.add_row(f"{w}x{h}", kind, f"{statistics.median(ms):.1f}", f"{max(ms):.1f}",
                          f"{statistics.median(enc):.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
