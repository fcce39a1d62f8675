"""Benchmark lmf-gs against video length: 100, 1,000 and 4,000 registered frames at 456x256.

Writes fast low-quality synthetic videos (random textures seen along a camera path, SfM-like
points, soft motion blobs, a 4-frame UDOS split) into the canonical layout, then measures

- training on the CPU config (``configs/gs_cpu.yaml``) in a subprocess through ``lmf-gs train``
  (so it keeps working whatever the trainer looks like inside): median ms per step, the share of
  the loop the main thread spends waiting for frames (all steps, and once warm: after the first
  10% of steps), peak RSS;
- the data path alone, in this process: frames/s decoded (one thread, and the prefetcher on
  ``--workers`` threads), reads/s once cached, the cache's bytes after one pass.

    python benchmarks/bench_scale.py [--frames 100 1000 4000] [--iters 300] [--workers 2]
                                     [--only train|data] [--set key=value] [--workdir DIR]

Training runs ``--iters`` steps (default 300: on 2 cores a 4,000-frame epoch takes hours), so
its memory figure covers the frames it visited; the data-path pass reads every frame and mask,
so its cache and RSS figures are those of a whole epoch. Videos are written once under ``--workdir``
(default ``/tmp/lmf_bench_scale``) and reused. Needs an otherwise idle machine for stable times.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

W, H = 456, 256
# EPIC's P28_101 camera (OPENCV: fx fy cx cy k1 k2 p1 p2): frames go through undistortion
CAMERA = [239.61, 243.08, 228.0, 128.0, -0.00135, 0.00018, 0.00085, -0.00061]
STRIDE = 25  # registered every 25th frame number (0.5 s at 50 fps): 4,000 frames ~ 33 minutes
N_POINTS = 5000
TEST_FRAMES = 4
TARGETS = "targets: ms/step within 1.3x from 100 to 4,000 frames; peak RSS < 3 GB at 4,000; " \
          "data wait < 10% once warm"


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth random RGB ``uint8 [height, width, 3]``: noise at three scales, upsampled."""
    out = np.zeros((height, width, 3), np.float32)
    for cell, weight in ((64, 0.6), (16, 0.3), (4, 0.1)):
        small = rng.random((height // cell + 2, width // cell + 2, 3)).astype(np.float32)
        big = Image.fromarray((small * 255).astype(np.uint8)).resize(
            ((width // cell + 2) * cell, (height // cell + 2) * cell), Image.Resampling.BILINEAR)
        out += weight * np.asarray(big, np.float32)[:height, :width]
    return out.clip(0, 255).astype(np.uint8)


def _quat_yaw(yaw: np.ndarray) -> np.ndarray:
    """Scalar-first quaternions ``[N, 4]`` of rotations by ``yaw`` about the y axis."""
    return np.stack([np.cos(yaw / 2), 0 * yaw, np.sin(yaw / 2), 0 * yaw], axis=1)


def write_video(root: Path, vid: str, n: int, seed: int = 0) -> None:
    """A ``n``-frame 456x256 video in the canonical layout under ``root`` (frames every
    ``STRIDE`` frame numbers, motion masks on 4 frames of 5, a UDOS split of 4 test frames)."""
    rng = np.random.default_rng(seed)
    numbers = 1 + STRIDE * np.arange(n)
    frames = [f"frame_{k:010d}.jpg" for k in numbers]
    phase = 2 * np.pi * np.arange(n) / 400.0
    yaw = 0.3 * np.sin(phase)
    quats = _quat_yaw(yaw)
    tvecs = np.stack([0.4 * np.sin(0.5 * phase), 0.05 * np.cos(phase), 0 * phase], axis=1)
    pts = rng.uniform([-3, -2, 3], [3, 2, 7], size=(N_POINTS, 3))
    cols = rng.integers(0, 256, size=(N_POINTS, 3))
    doc = {"camera": {"id": 1, "model": "OPENCV", "width": W, "height": H, "params": CAMERA},
           "images": {f: [*q, *t] for f, q, t in zip(frames, quats.tolist(), tvecs.tolist(),
                                                      strict=True)},
           "points": np.concatenate([pts, cols], axis=1).tolist()}
    for d in ("epic_fields", f"frames/{vid}", f"motion_masks/{vid}", "udos/split"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "epic_fields" / f"{vid}.json").write_text(json.dumps(doc))

    tex = _texture(rng, 2 * H, 3 * W)
    yy, xx = np.mgrid[0:H, 0:W]

    def one(i: int) -> None:
        # the view slides over the texture with the camera's yaw; a bright blob moves in front
        x0 = int((yaw[i] / 0.6 + 0.5) * 2 * W)
        y0 = int(H / 2 + 0.2 * H * np.cos(phase[i]))
        img = tex[y0:y0 + H, x0:x0 + W].copy()
        cx, cy = W / 2 + 150 * np.sin(3 * phase[i]), H / 2 + 60 * np.cos(5 * phase[i])
        blob = ((xx - cx) / 50) ** 2 + ((yy - cy) / 35) ** 2 < 1
        img[blob] = (230, 180, 150)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=80)
        (root / "frames" / vid / frames[i]).write_bytes(buf.getvalue())
        if i % 5:
            Image.fromarray((blob * 255).astype(np.uint8)).save(
                root / "motion_masks" / vid / frames[i].replace(".jpg", ".png"), compress_level=1)

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(one, range(n)))
    test = frames[n // (TEST_FRAMES + 1)::n // (TEST_FRAMES + 1)][:TEST_FRAMES]
    gt = np.zeros((H, W), np.uint8)
    gt[100:160, 200:300] = 255
    for kind in ("dynamic", "semistatic", "dynamic_semistatic"):
        d = root / "udos/annotations" / f"test_{kind}" / vid
        d.mkdir(parents=True, exist_ok=True)
        for f in test:
            Image.fromarray(gt if kind != "semistatic" else gt // 255).save(
                d / f.replace(".jpg", ".png"))
    (root / "udos/split/test.json").write_text(json.dumps(
        {vid: {"within_action": test, "outside_action": [], "outside_action_easy": []}}))


# -- training, in a subprocess ------------------------------------------------------------------

# main-thread calls that return a frame or mask: time inside them is time waiting for data
DATA_CALLS = (("lmf_gs.data.scene", "Scene", "image"),
              ("lmf_gs.data.scene", "Scene", "motion_mask"),
              ("lmf_gs.data.scene", "Scene", "image_u8"),
              ("lmf_gs.data.scene", "Scene", "motion_mask_u8"),
              ("lmf_gs.data.prefetch", "Prefetcher", "get"))


def _child_train(args: list[str]) -> None:
    """Run ``lmf-gs train ARGS`` in this process, timing the main thread's data calls; print
    one JSON line: per-call waits (s), the process CPU seconds at the first and the last call,
    per-step loop seconds (from the log), peak RSS (kB)."""
    import importlib

    from cli.main import app

    waits: list[float] = []
    cpu: list[float] = []  # process CPU time (all threads) at the first and the latest call
    depth = [0]

    def timed(fn):
        def wrapper(*a, **k):
            if depth[0] or threading.current_thread() is not threading.main_thread():
                return fn(*a, **k)
            depth[0] += 1
            now = time.process_time()
            cpu[:] = [cpu[0] if cpu else now, now]
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                depth[0] -= 1
                waits.append(time.perf_counter() - start)
        return wrapper

    if os.environ.get("BENCH_WARM") == "1":  # every frame and mask read before step 1
        from lmf_gs.data.scene import Scene

        init = Scene.__init__

        def warm_init(self, *a, **k):
            init(self, *a, **k)
            depth[0] += 1  # not waits of training steps
            for i in range(len(self)):
                self.image(i)
                self.motion_mask(i)
            depth[0] -= 1

        Scene.__init__ = warm_init
    for module, cls, name in DATA_CALLS:
        try:
            owner = getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError):  # patch what this version of lmf-gs has
            continue
        setattr(owner, name, timed(getattr(owner, name)))
    app(args=["train", *args], standalone_mode=False)
    out = Path(args[args.index("--out") + 1])
    log = [json.loads(line) for line in next(out.rglob("train_log.jsonl")).read_text().splitlines()]
    seconds = [e["seconds"] for e in log]
    print(json.dumps({"waits": waits, "seconds": seconds, "cpu": cpu,
                      "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def measure_training(root: Path, vid: str, iters: int, config: str, extra: list[str],
                     warm: bool = False) -> dict:
    """Train ``iters`` steps in a subprocess; median ms/step, data-wait shares, peak RSS (MB).
    ``warm``: the scene reads every frame and motion mask before the first step (its memory
    as after an epoch with motion masks)."""
    with tempfile.TemporaryDirectory() as out:
        sets = [f"train.iters={iters}", "train.log_every=1", "train.holdout_every=0",
                f"train.checkpoint_every={iters}", *extra]
        cmd = [sys.executable, __file__, "--child-train", "--scene", vid, "--data-root",
               str(root), "--out", out, "--config", config]
        for s in sets:
            cmd += ["--set", s]
        env = {**os.environ, "BENCH_WARM": "1" if warm else "0"}
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"training failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
    seconds, waits = np.array(res["seconds"]), np.array(res["waits"])
    step_s = np.diff(np.concatenate([[0.0], seconds]))
    warm = len(seconds) // 10  # steps (and, one read per step and batch, reads) skipped
    per_step = max(len(waits) // max(len(seconds), 1), 1)
    warm_loop = seconds[-1] - seconds[warm - 1] if warm else seconds[-1]
    return {
        "ms_step": 1000 * float(np.median(step_s)),
        # CPU time per step, all threads: robust to other processes competing for the cores
        "cpu_ms_step": 1000 * (res["cpu"][1] - res["cpu"][0]) / max(len(seconds) - 1, 1),
        "wait": float(waits.sum() / seconds[-1]),
        "wait_warm": float(waits[warm * per_step:].sum() / warm_loop),
        "rss_mb": res["maxrss_kb"] / 1024,
        "steps": len(seconds),
    }


# -- the data path alone, in a subprocess ---------------------------------------------------------


def _child_data(root: str, vid: str, config: str, workers: int, sets: list[str]) -> None:
    """Read a whole video through `Scene` and `Prefetcher`; print one JSON line of figures."""
    from lmf_gs.config import load_config
    from lmf_gs.data import Scene
    from lmf_gs.data.prefetch import Prefetcher
    from lmf_gs.data.validate import validate_frames

    cfg = load_config(config, [*sets, f"data.root={root}"]).data
    res = {}
    scene = Scene(vid, cfg)
    for decode in (False, True):
        cpu = time.process_time()
        check = validate_frames(scene, decode=decode, workers=workers)
        kind = "decode" if decode else "header"
        res[f"validate_{kind}_s"] = check.seconds
        res[f"validate_{kind}_cpu_s"] = time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(len(scene)):
        scene.image_u8(i)
        scene.motion_mask_u8(i)
    res["cold_fps"] = len(scene) / (time.perf_counter() - start)
    res["cold_cpu_ms"] = 1000 * (time.process_time() - cpu) / len(scene)
    res["cache_mb"] = scene.cache.nbytes / 2**20
    start = time.perf_counter()
    for i in range(len(scene)):
        scene.image(i)
        scene.motion_mask(i)
    res["warm_fps"] = len(scene) / (time.perf_counter() - start)
    res["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    order = np.random.default_rng(0).permutation(len(scene))[:500]
    fresh = Scene(vid, cfg)  # cold cache
    start = time.perf_counter()
    with Prefetcher(fresh, workers=workers, masks=True) as pf:
        for _ in pf.frames(order):
            pass
    res["prefetch_fps"] = len(order) / (time.perf_counter() - start)
    print(json.dumps(res))


def measure_data(root: Path, vid: str, config: str, workers: int, sets: list[str]) -> dict:
    """The data path's figures for one video (see `_child_data`)."""
    cmd = [sys.executable, __file__, "--child-data", str(root), vid, config, str(workers), *sets]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"data path failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ensure_video(workdir: Path, n: int) -> tuple[Path, str]:
    """The ``n``-frame video's data root (written on first use) and its id."""
    root, vid = workdir / f"len{n}", f"P99_{n:04d}"
    stamp = root / ".complete"
    if not stamp.exists():
        start = time.perf_counter()
        write_video(root, vid, n)
        stamp.touch()
        seconds = time.perf_counter() - start
        Console(stderr=True).print(f"wrote {vid} ({n} frames) in {seconds:.1f} s")
    return root, vid


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-train":
        _child_train(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--child-data":
        root, vid, config, workers, *sets = sys.argv[2:]
        _child_data(root, vid, config, int(workers), sets)
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, nargs="+", default=[100, 1000, 4000])
    p.add_argument("--iters", type=int, default=300, help="training steps per video")
    p.add_argument("--config", default="gs_cpu")
    p.add_argument("--set", dest="sets", action="append", default=[], help="extra overrides")
    p.add_argument("--workers", type=int, default=2, help="prefetch/validation threads")
    p.add_argument("--only", choices=("train", "data"), default=None)
    p.add_argument("--warm", action="store_true",
                   help="training: read every frame and mask first (memory of a whole epoch)")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "lmf_bench_scale")
    args = p.parse_args()
    console = Console()
    train = Table(title=f"training ({args.config}, {args.iters} steps, source {W}x{H}"
                        f"{', all frames read first' if args.warm else ''})")
    for col in ("frames", "ms / step (median)", "CPU ms / step", "data wait", "data wait (warm)",
                "peak RSS MB"):
        train.add_column(col, justify="right")
    data = Table(title=f"data path ({args.config}: every frame and mask once; "
                       f"{args.workers} threads)")
    for col in ("frames", "decode frames/s", "CPU ms / frame", "prefetch frames/s",
                "cached reads/s", "cache MB", "peak RSS MB", "validate s / 1000 (header; CPU)",
                "validate s / 1000 (decode; CPU)"):
        data.add_column(col, justify="right")
    for n in args.frames:
        root, vid = ensure_video(args.workdir, n)
        if args.only != "data":
            r = measure_training(root, vid, args.iters, args.config, args.sets, args.warm)
            train.add_row(str(n), f"{r['ms_step']:.1f}", f"{r['cpu_ms_step']:.1f}",
                          f"{100 * r['wait']:.1f}%",
                          f"{100 * r['wait_warm']:.1f}%", f"{r['rss_mb']:.0f}")
        if args.only != "train":
            d = measure_data(root, vid, args.config, args.workers, args.sets)
            data.add_row(str(n), f"{d['cold_fps']:.0f}", f"{d['cold_cpu_ms']:.1f}",
                         f"{d['prefetch_fps']:.0f}",
                         f"{d['warm_fps']:.0f}", f"{d['cache_mb']:.0f}", f"{d['maxrss_mb']:.0f}",
                         *(f"{1000 * d[f'validate_{k}_s'] / n:.2f}; "
                           f"{1000 * d[f'validate_{k}_cpu_s'] / n:.2f}"
                           for k in ("header", "decode")))
    for table in (train, data):
        if table.row_count:
            console.print(table)
    console.print(TARGETS)


if __name__ == "__main__":
    main()
