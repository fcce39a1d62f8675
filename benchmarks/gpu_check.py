"""The stages of benchmarks/gpu_check.sh, run one after another under one deadline.

    python benchmarks/gpu_check.py --out DIR [--data-root build/gpu_data] [--dry-run]
                                   [--budget-s 525] [--started-at EPOCH] [--only STAGE ...]

Stages, each in its own process (a crash or a hang costs that stage only, and its time is capped
by what is left of the budget):

  env     Python, torch, CUDA and package versions; the training path imports no open3d
  build   gsplat's CUDA kernels, compiled once (TORCH_CUDA_ARCH_LIST, MAX_JOBS from the caller)
  tests   the device tests: torch vs gsplat parity (images, alphas, depths, gradients),
          densification on the set's device, training with densification then TR + LMF
  raster  rasterisation ms, forward and forward+backward, D = 7 channels
  train   `lmf-gs train` of SYN_1K (1,000 frames, 456x256) for a fixed number of epochs (capped
          in seconds), then `lmf-gs evaluate` of it and of the 2D masks (mAP, held-out PSNR)
  refine  `lmf-gs refine` (TR + LMF) on frames of the UDOS split: seconds per frame, mAP
  render  ms per frame of the trained model's whole-frame render (RGB, layer masks, depth)
  nerf    the NeRF backend at paper scale (configs/nerf.yaml): ms per training step and per frame

After each stage gpu_check.md (the table) and gpu_check.json (every figure) are rewritten in
--out, so a run cut short keeps what it measured. --dry-run runs the same stages on the CPU with
the torch rasteriser at tiny sizes (nothing to build, CUDA tests skip).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VID = "SYN_1K"
STAGES = ("env", "build", "nerf", "tests", "raster", "train", "refine", "render")
NEEDS_GSPLAT = ("tests", "raster", "train", "refine", "render")
TEST_FILES = ("tests/test_render_gsplat.py", "tests/test_densify_device.py",
              "tests/test_device_pipeline.py")
# modules the GPU machine lacks (open3d's wheel is too large to travel): none may load on the
# train / refine / evaluate path
ABSENT_THERE = ("open3d", "pycolmap", "viser", "imageio_ffmpeg")
# the paper's schedule (configs/gs.yaml, 30,000 iterations) as fractions of a shorter run
SCHEDULE = ["train.warmup=0.1", "train.densify_from=0.0167", "train.densify_until=0.5",
            "train.reset_opacity_every=0.1"]


@dataclass
class Plan:
    """Sizes of one mode (GPU, or the CPU dry run)."""

    device: str
    raster: list[tuple[str, int]]  # (rasteriser, Gaussians)
    repeats: int
    width: int
    height: int
    train_config: str
    train_sets: list[str]
    epochs: float
    train_cap_s: float  # the training loop's seconds at most
    refine_frames: int
    refine_sets: list[str]
    refine_cap_s: float
    render_frames: int
    nerf_config: str
    nerf_sets: list[str]
    nerf_cap_s: float
    stage_cap_s: dict[str, float] = field(default_factory=dict)


GPU = Plan(
    device="cuda", raster=[("gsplat", 100_000), ("gsplat", 500_000), ("torch", 100_000)],
    repeats=20, width=456, height=256,
    train_config="gs", train_sets=[*SCHEDULE, "train.log_every=50"], epochs=2.0,
    train_cap_s=150, refine_frames=12, refine_sets=[], refine_cap_s=45, render_frames=30,
    nerf_config="nerf", nerf_sets=["nerf.epochs=null", "nerf.iters=200", "nerf.log_every=20",
                                   "train.holdout_every=100"], nerf_cap_s=40,
    stage_cap_s={"env": 60, "build": 380, "tests": 150, "raster": 60, "train": 300,
                 "refine": 120, "render": 60, "nerf": 120},
)
DRY = Plan(
    device="cpu", raster=[("torch", 1_000), ("torch", 5_000)], repeats=3, width=456, height=256,
    train_config="gs_cpu",
    train_sets=["data.downscale=4", "model.n_static=1500", "model.n_semistatic=300",
                "model.n_dynamic=300", "train.warmup=0.3", "train.densify_from=0.2",
                "train.densify_until=0.8", "train.densify_every=4", "train.log_every=4",
                "train.holdout_every=100"],
    epochs=0.02, train_cap_s=120, refine_frames=2,
    refine_sets=["refine.iters_per_frame=3", "refine.min_iters=6"], refine_cap_s=60,
    render_frames=3, nerf_config="nerf_cpu",
    nerf_sets=["data.downscale=4", "nerf.iters=6", "nerf.log_every=2", "nerf.batch_rays=256",
               "train.holdout_every=250"], nerf_cap_s=60,
    stage_cap_s={"env": 120, "build": 10, "tests": 400, "raster": 120, "train": 400,
                 "refine": 200, "render": 120, "nerf": 300},
)


# -- running things ------------------------------------------------------------------------------

class Clock:
    """Seconds left of the whole script's budget."""

    def __init__(self, budget_s: float, started_at: float):
        self.budget_s, self.started_at = budget_s, started_at

    def elapsed(self) -> float:
        return time.time() - self.started_at

    def left(self) -> float:
        return self.budget_s - self.elapsed()


def say(msg: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd: list[str], timeout: float) -> tuple[int, str]:
    """Run ``cmd`` from the repo root, echoing its output; SIGTERM at ``timeout`` (the training
    loop checkpoints and stops), SIGKILL 20 s later. Returns (exit code, output); 124 = timeout."""
    say("$ " + " ".join(cmd))
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    lines: list[str] = []

    def echo() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)

    reader = threading.Thread(target=echo, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=max(timeout, 1))
        code = proc.returncode
    except subprocess.TimeoutExpired:
        say(f"timeout after {timeout:.0f} s: stopping it")
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        code = 124
    reader.join(timeout=5)
    return code, "".join(lines)


def lmf(*args: str) -> list[str]:
    """The ``lmf-gs`` command line through this interpreter (no installed entry point there)."""
    return [sys.executable, "-c", "from cli.main import main; main()", *args]


def worker(name: str, out_json: Path, *args: str) -> list[str]:
    return [sys.executable, __file__, "--worker", name, "--worker-out", str(out_json), *args]


# -- workers (run in their own process) ----------------------------------------------------------

def work_env(_: argparse.Namespace) -> dict:
    """Versions, the device, and whether the training path pulled in a module absent there."""
    import importlib
    from importlib import metadata

    import torch

    # every command module (as `lmf-gs` loads them) and the experiments they run
    for module in ("cli.main", "lmf_gs.experiments.train", "lmf_gs.experiments.refine",
                   "lmf_gs.experiments.evaluate"):
        importlib.import_module(module)
    loaded = sorted({m.split(".")[0] for m in sys.modules} & set(ABSENT_THERE))
    versions = {}
    for name in ("torch", "gsplat", "numpy", "scipy", "pydantic", "pydantic-core", "typer",
                 "rich", "pyyaml", "scikit-learn", "pillow", "opencv-python-headless",
                 "imageio", "plyfile", "jaxtyping", "ninja", "pytest"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    doc = {"python": platform.python_version(), "torch": torch.__version__,
           "torch_cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
           "versions": versions, "absent_there_but_loaded": loaded}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        doc |= {"gpu": p.name, "capability": f"{p.major}.{p.minor}",
                "gpu_memory_gib": round(p.total_memory / 2**30, 1)}
    nvcc = shutil.which("nvcc")
    if nvcc:
        doc["nvcc"] = subprocess.run([nvcc, "--version"], capture_output=True,
                                     text=True).stdout.strip().splitlines()[-1]
    return doc


def work_raster(args: argparse.Namespace) -> dict:
    """ms forward / forward+backward per (rasteriser, Gaussians) of the plan."""
    import torch

    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_render import make_scene, median_ms

    from lmf_gs.render import rasterize

    plan = DRY if args.dry_run else GPU
    rows = []
    for backend, n in plan.raster:
        if backend in args.skip:
            continue
        scene = make_scene(n, plan.width, plan.height, plan.device)
        params = [scene[k].requires_grad_() for k in
                  ("means", "quats", "scales", "opacities", "colors")]

        def forward(scene=scene, backend=backend) -> None:
            with torch.no_grad():
                rasterize(**scene, width=plan.width, height=plan.height, backend=backend)

        def forward_backward(scene=scene, backend=backend, params=params) -> None:
            out = rasterize(**scene, width=plan.width, height=plan.height, backend=backend)
            (out.colors.sum() + out.alphas.sum() + out.depths.sum()).backward()
            for p in params:
                p.grad = None

        if plan.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        row = {"backend": backend, "device": plan.device, "gaussians": n,
               "resolution": f"{plan.width}x{plan.height}", "channels": 7}
        try:
            row |= {"forward_ms": median_ms(forward, plan.repeats, plan.device),
                    "fwd_bwd_ms": median_ms(forward_backward, plan.repeats, plan.device)}
        except Exception as e:  # e.g. out of memory: the other cases still count
            row["error"] = f"{type(e).__name__}: {e}"[:300]
        if plan.device == "cuda":
            row["peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
            torch.cuda.empty_cache()
        say(f"raster {row}")
        rows.append(row)
    return {"rows": rows, "repeats": plan.repeats}


def work_render(args: argparse.Namespace) -> dict:
    """Median ms of ``backend.render(i)`` (whole frame: RGB, 3 layer masks, depth) of a run."""
    import torch

    from lmf_gs.backends import get_backend
    from lmf_gs.config import load_config
    from lmf_gs.data.scene import Scene

    run_dir = Path(args.run_dir)
    cfg = load_config(run_dir / "config.yaml", [f"data.root={args.data_root}"])
    scene = Scene(VID, cfg.data)
    backend, _ = get_backend(args.backend).load(run_dir, scene, cfg)
    n = args.frames
    positions = [round(k * (len(scene) - 1) / max(n - 1, 1)) for k in range(n)]
    for i in positions[:2]:  # warm-up: kernels, caches, first frame reads
        backend.render(i)
    times = []
    for i in positions:
        if backend.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        r = backend.render(i)
        r.masks.sum().item()  # waits for the device
        times.append(1e3 * (time.perf_counter() - t0))
    return {"ms_per_frame": statistics.median(times), "frames": n,
            "resolution": f"{scene.width}x{scene.height}", "device": str(backend.device)}


WORKERS = {"env": work_env, "raster": work_raster, "render": work_render}


# -- stages (in the orchestrating process) -------------------------------------------------------

@dataclass
class Context:
    args: argparse.Namespace
    plan: Plan
    clock: Clock
    work: Path
    results: dict
    build: subprocess.Popen | None = None  # gsplat's compilation, while it runs
    build_t0: float = 0.0

    def timeout(self, stage: str) -> float:
        return min(self.plan.stage_cap_s[stage], self.clock.left() - 5)


def stage_env(ctx: Context) -> dict:
    path = ctx.work / "env.json"
    code, _ = run(worker("env", path, *(["--dry-run"] if ctx.args.dry_run else [])),
                  ctx.timeout("env"))
    if code:
        return {"status": "failed", "note": f"exit {code}"}
    doc = json.loads(path.read_text())
    bad = doc["absent_there_but_loaded"]
    status = "failed" if bad or (not ctx.args.dry_run and not doc["cuda_available"]) else "ok"
    note = f"loaded {', '.join(bad)}" if bad else ""
    if not ctx.args.dry_run and not doc["cuda_available"]:
        note = "torch sees no CUDA device"
    return {"status": status, "note": note, **doc}


BUILD = ("import time; t = time.perf_counter(); from gsplat.cuda._backend import _C; "
         "assert _C is not None, 'gsplat has no CUDA extension (nvcc not found?)'; "
         "print(f'gsplat kernels ready in {time.perf_counter() - t:.1f} s')")


def stage_build(ctx: Context) -> dict:
    """Start compiling gsplat's kernels in the background (CPU work: the NeRF stage, which needs
    no gsplat, uses the GPU meanwhile); `wait_build` collects it before gsplat is needed."""
    if ctx.args.dry_run:
        return {"status": "skipped", "note": "dry run: no CUDA"}
    log = (ctx.work / "build.log").open("w")
    say(f"$ {sys.executable} -c \"{BUILD}\" (in the background, output at the end)")
    # a session of its own, so that a stop reaches ninja and every nvcc under it
    ctx.build = subprocess.Popen([sys.executable, "-c", BUILD], cwd=REPO, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    ctx.build_t0 = time.time()
    return {"status": "started", "arch": os.environ.get("TORCH_CUDA_ARCH_LIST"),
            "max_jobs": os.environ.get("MAX_JOBS")}


def stop_build(proc: subprocess.Popen) -> None:
    """End the build's whole process group (python, ninja, the compilers)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_build(ctx: Context) -> None:
    """Wait for the background build (up to the build's cap, leaving a minute for the rest) and
    record its result under ``results["build"]``."""
    proc, ctx.build = ctx.build, None
    if proc is None:
        return
    timeout = min(ctx.plan.stage_cap_s["build"] - (time.time() - ctx.build_t0),
                  ctx.clock.left() - 60)
    say(f"== waiting for the gsplat build (at most {max(timeout, 0):.0f} s more)")
    try:
        code = proc.wait(timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        stop_build(proc)
        code = 124
    out = (ctx.work / "build.log").read_text(errors="replace")
    sys.stdout.write(out)
    m = re.search(r"ready in ([\d.]+) s", out)
    last = out.strip().splitlines()[-1][:200] if out.strip() else ""
    ctx.results["build"] |= {
        "status": "ok" if code == 0 else ("timeout" if code == 124 else "failed"),
        "seconds": float(m.group(1)) if m else None, "stage_s": round(time.time() -
                                                                     ctx.build_t0, 1),
        "note": "" if code == 0 else last}
    say(f"build: {ctx.results['build']['status']} after {ctx.results['build']['stage_s']:.0f} s")


def gsplat_unusable(ctx: Context) -> bool:
    """On the GPU, this run's build did not succeed: anything importing gsplat would compile
    again. (Left out with --only, the build is taken as done by an earlier run.)"""
    build = ctx.results.get("build")
    return not ctx.args.dry_run and build is not None and build["status"] != "ok"


def stage_tests(ctx: Context) -> dict:
    files, note = TEST_FILES, ""
    if gsplat_unusable(ctx):
        files, note = ("tests/test_densify_device.py",), "gsplat not built: torch-only tests"
    # pyproject's addopts already hold -q (a second one would drop the closing counts line)
    code, out = run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", *files],
                    ctx.timeout("tests"))
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error)", out)}
    status = "ok" if code == 0 else ("timeout" if code == 124 else "failed")
    return {"status": status, "exit": code, "note": note, "files": list(files),
            **{k: counts.get(k, 0) for k in ("passed", "failed", "skipped", "error")}}


def stage_raster(ctx: Context) -> dict:
    path = ctx.work / "raster.json"
    skip = ["gsplat"] if gsplat_unusable(ctx) else []
    code, _ = run(worker("raster", path, *(["--dry-run"] if ctx.args.dry_run else []),
                         *(["--skip", *skip] if skip else [])), ctx.timeout("raster"))
    if not path.is_file():
        return {"status": "timeout" if code == 124 else "failed", "note": f"exit {code}"}
    doc = json.loads(path.read_text())
    errors = [r["error"] for r in doc["rows"] if "error" in r]
    return {"status": "failed" if errors else "ok", "note": "; ".join(errors)[:300]
            or ("gsplat not built: torch only" if skip else ""), **doc}


def _metrics(path: Path) -> dict:
    doc = json.loads(path.read_text())
    return {"map": doc["map"], "frames": doc["frames"]["dynamic"]["total"]
            if isinstance(doc["frames"], dict) else doc["frames"]}


def stage_train(ctx: Context) -> dict:
    plan, out = ctx.plan, ctx.work / "runs"
    rasteriser = "torch" if ctx.args.dry_run or gsplat_unusable(ctx) else "gsplat"
    # what is left after the training loop: its set-up and held-out renders, the two
    # evaluations, refine and render (the NeRF stage ran during the build)
    reserve = 0.0 if ctx.args.dry_run else 130.0
    cap = max(20.0, min(plan.train_cap_s, ctx.clock.left() - reserve))
    sets = [*plan.train_sets, f"train.epochs={plan.epochs}", f"train.max_seconds={cap:.0f}",
            f"render.backend={rasteriser}", f"render.device={plan.device}"]
    where = ["--scene", VID, "--data-root", str(ctx.args.data_root), "--out", str(out)]
    t0 = time.time()
    code, _ = run(lmf("train", *where, "--config", plan.train_config,
                      *[a for s in sets for a in ("--set", s)]), ctx.timeout("train"))
    wall = time.time() - t0
    run_dir = out / VID / "gs"
    if code or not (run_dir / "train_summary.json").is_file():
        return {"status": "timeout" if code == 124 else "failed", "note": f"exit {code}",
                "rasteriser": rasteriser}
    summary = json.loads((run_dir / "train_summary.json").read_text())
    log = [json.loads(x) for x in (run_dir / "train_log.jsonl").read_text().splitlines()]
    warm = [e for e in log if e["step"] > summary["steps"] // 10] or log
    ms_step = (1e3 * (warm[-1]["seconds"] - warm[0]["seconds"])
               / max(warm[-1]["step"] - warm[0]["step"], 1)) if len(warm) > 1 else None
    res = {"status": "ok", "rasteriser": rasteriser, "epochs": plan.epochs, "cap_s": cap,
           "iters": summary["iters"], "steps": summary["steps"], "loop_s": summary["seconds"],
           "command_s": wall, "ms_per_step": ms_step, "gaussians": summary.get("gaussians"),
           "psnr_heldout": summary["psnr_heldout"], "heldout_frames": summary["heldout_frames"],
           "run_dir": str(run_dir)}
    for method, folder in (("gs", run_dir), ("mg", out / VID / "mg")):
        code, _ = run(lmf("evaluate", "--scene", VID, "--method", method, "--data-root",
                          str(ctx.args.data_root), "--out", str(out)),
                      max(10.0, min(120.0, ctx.clock.left() - 5)))
        if code == 0:
            res[f"eval_{method}"] = _metrics(folder / "metrics.json")
    return res


def stage_refine(ctx: Context) -> dict:
    train = ctx.results.get("train", {})
    if train.get("status") != "ok":
        return {"status": "skipped", "note": "no trained run"}
    plan, data = ctx.plan, Path(ctx.args.data_root)
    split = json.loads((data / "udos/split/test.json").read_text())[VID]["within_action"]
    k = min(plan.refine_frames, len(split))
    frames = [split[round(j * (len(split) - 1) / max(k - 1, 1))] for j in range(k)]
    cap = max(10.0, min(plan.refine_cap_s, ctx.clock.left() - 60))
    sets = [*plan.refine_sets, f"refine.max_seconds={cap:.0f}"]
    out = ctx.work / "runs"
    code, _ = run(lmf("refine", "--scene", VID, "--data-root", str(data), "--out", str(out),
                      "--frames", ",".join(frames), *[a for s in sets for a in ("--set", s)]),
                  ctx.timeout("refine"))
    found = sorted((out / VID / "gs").glob("refine-lmf-n0*/metrics.json"))
    if code or not found:
        return {"status": "timeout" if code == 124 else "failed", "note": f"exit {code}"}
    doc = json.loads(found[-1].read_text())
    return {"status": "ok", "frames": doc["frames"], "seconds": doc["seconds"],
            "seconds_per_frame": doc["seconds_per_frame"], "map": doc["map"], "cap_s": cap}


def stage_render(ctx: Context) -> dict:
    train = ctx.results.get("train", {})
    if train.get("status") != "ok":
        return {"status": "skipped", "note": "no trained run"}
    path = ctx.work / "render.json"
    code, _ = run(worker("render", path, "--run-dir", train["run_dir"], "--backend", "gs",
                         "--frames", str(ctx.plan.render_frames),
                         "--data-root", str(ctx.args.data_root)), ctx.timeout("render"))
    if not path.is_file():
        return {"status": "timeout" if code == 124 else "failed", "note": f"exit {code}"}
    return {"status": "ok", **json.loads(path.read_text())}


def stage_nerf(ctx: Context) -> dict:
    plan, out = ctx.plan, ctx.work / "runs"
    cap = max(10.0, min(plan.nerf_cap_s, ctx.clock.left() - 60))
    sets = [*plan.nerf_sets, f"nerf.max_seconds={cap:.0f}", f"render.device={plan.device}"]
    code, _ = run(lmf("train", "--backend", "nerf", "--scene", VID, "--data-root",
                      str(ctx.args.data_root), "--out", str(out), "--config", plan.nerf_config,
                      *[a for s in sets for a in ("--set", s)]), ctx.timeout("nerf"))
    run_dir = out / VID / "nerf"
    if code or not (run_dir / "train_summary.json").is_file():
        return {"status": "timeout" if code == 124 else "failed", "note": f"exit {code}"}
    summary = json.loads((run_dir / "train_summary.json").read_text())
    log = [json.loads(x) for x in (run_dir / "train_log.jsonl").read_text().splitlines()]
    ms_step = (1e3 * (log[-1]["seconds"] - log[0]["seconds"])
               / max(log[-1]["step"] - log[0]["step"], 1)) if len(log) > 1 else None
    res = {"status": "ok", "steps": summary["steps"], "loop_s": summary["seconds"],
           "ms_per_step": ms_step, "cap_s": cap}
    path = ctx.work / "nerf_render.json"
    code, _ = run(worker("render", path, "--run-dir", str(run_dir), "--backend", "nerf",
                         "--frames", "3" if not ctx.args.dry_run else "1",
                         "--data-root", str(ctx.args.data_root)),
                  max(10.0, ctx.clock.left() - 5))
    if path.is_file():
        res["render"] = json.loads(path.read_text())
    return res


STAGE_FUNCS = {"env": stage_env, "build": stage_build, "tests": stage_tests,
               "raster": stage_raster, "train": stage_train, "refine": stage_refine,
               "render": stage_render, "nerf": stage_nerf}
MIN_LEFT_S = {"env": 10, "build": 60, "tests": 30, "raster": 20, "train": 60, "refine": 30,
              "render": 15, "nerf": 30}


# -- the table -----------------------------------------------------------------------------------

def _f(v: float | None, fmt: str = ".1f") -> str | None:
    return None if v is None else format(v, fmt)


def _map(m: dict | None) -> str | None:
    if not m:
        return None
    return " / ".join("n/a" if m.get(k) is None else f"{m[k]:.2f}"
                      for k in ("dynamic", "semistatic", "dynamic_semistatic"))


def table_rows(res: dict, dry: bool) -> list[tuple[str, str, str | None, str]]:
    """(measure, setting, value or None, reference) rows; None = not measured (see status)."""
    plan = DRY if dry else GPU
    env, build, tests = res.get("env", {}), res.get("build", {}), res.get("tests", {})
    raster, train = res.get("raster", {}), res.get("train", {})
    refine, render, nerf = res.get("refine", {}), res.get("render", {}), res.get("nerf", {})
    where = "CPU, dry run" if dry else env.get("gpu", "GPU")
    rows: list[tuple[str, str, str | None, str]] = [
        ("device", "torch / CUDA / Python", None if not env else
         f"{where}; torch {env.get('torch')}, CUDA {env.get('torch_cuda')}, "
         f"Python {env.get('python')}", ""),
        ("training path without open3d", "import cli.main, lmf_gs.experiments.*",
         None if not env else ("ok" if not env.get("absent_there_but_loaded") else
                               "loads " + ", ".join(env["absent_there_but_loaded"])), ""),
        ("gsplat CUDA kernels built", f"TORCH_CUDA_ARCH_LIST={build.get('arch')}, "
         f"MAX_JOBS={build.get('max_jobs')}", _f(build.get("seconds"), ".0f") and
         f"{build['seconds']:.0f} s", ""),
        ("device tests", ", ".join(Path(t).name for t in tests.get("files", TEST_FILES)),
         None if "passed" not in tests else
         f"{tests['passed']} passed, {tests['failed']} failed, {tests['skipped']} skipped"
         + (f", {tests['error']} errors" if tests.get("error") else ""), ""),
    ]
    by_case = {(r["backend"], r["gaussians"]): r for r in raster.get("rows", [])}
    for backend, n in plan.raster:
        r = by_case.get((backend, n), {})
        setting = (f"{plan.width}x{plan.height}, D=7, {backend} on {plan.device}, median of "
                   f"{plan.repeats}")
        ref = ("gsplat docs (v1.0, TITAN RTX, ~0.11 M Gaussians, 1 camera): 2.9 ms fwd (3 ch), "
               "5.9 ms fwd (32 ch)" if backend == "gsplat" and n == 100_000 else "")
        rows.append((f"rasterise {n:,} Gaussians, forward ms", setting,
                     _f(r.get("forward_ms"), ".2f"), ref))
        rows.append((f"rasterise {n:,} Gaussians, fwd+bwd ms", setting,
                     _f(r.get("fwd_bwd_ms"), ".2f"), ""))
    data = f"{VID}, 1,000 frames 456x256" + (", downscale 4" if dry else "")
    tset = (f"{data}, configs/{plan.train_config}.yaml, {plan.epochs:g} epochs "
            f"({train.get('iters', '?')} steps), {train.get('rasteriser', '?')} rasteriser, "
            f"capped at {train.get('cap_s', plan.train_cap_s):.0f} s")
    rows += [
        ("GS training: wall s (steps done)", tset, None if train.get("status") != "ok" else
         f"{train['loop_s']:.1f} s ({train['steps']}/{train['iters']} steps)", ""),
        ("GS training: ms per step", "after the first 10% of steps",
         _f(train.get("ms_per_step")), ""),
        ("GS: Gaussians at the end", "static / semi-static / dynamic",
         None if not train.get("gaussians") else " / ".join(
             f"{v:,}" for v in train["gaussians"].values()), ""),
        ("GS: held-out PSNR dB", f"{train.get('heldout_frames', '?')} held-out frames",
         _f(train.get("psnr_heldout"), ".2f"), ""),
        ("GS: mAP Dyn / SS / Dyn+SS", f"UDOS within_action, "
         f"{train.get('eval_gs', {}).get('frames', '?')} frames",
         _map(train.get("eval_gs", {}).get("map")), ""),
        ("2D motion masks (MG): mAP Dyn / SS / Dyn+SS", "the same frames",
         _map(train.get("eval_mg", {}).get("map")), ""),
        ("TR + LMF: s per frame", f"{refine.get('frames', plan.refine_frames)} frames of the "
         "split, " + (", ".join(plan.refine_sets) or "100 steps per frame (default)"),
         _f(refine.get("seconds_per_frame"), ".2f"),
         "paper: 13 s (RTX A4000, NeRF); aim < 0.5 s"),
        ("TR + LMF: mAP Dyn / SS / Dyn+SS", "those frames", _map(refine.get("map")), ""),
        ("GS render ms per frame", f"RGB + 3 layer masks + depth, {render.get('resolution', '')}"
         f", median of {render.get('frames', plan.render_frames)}",
         _f(render.get("ms_per_frame")), "paper: 5 s per frame (NeRF masks)"),
        ("NeRF training: ms per step", f"configs/{plan.nerf_config}.yaml, "
         + ", ".join(plan.nerf_sets), _f(nerf.get("ms_per_step")), ""),
        ("NeRF render ms per frame", nerf.get("render", {}).get("resolution", ""),
         _f(nerf.get("render", {}).get("ms_per_frame"), ".0f"), ""),
    ]
    return rows


# the stage behind each row of the table (by the row's first words)
ROW_STAGE = (("device tests", "tests"), ("device", "env"), ("training path", "env"),
             ("gsplat", "build"), ("rasterise", "raster"), ("GS training", "train"),
             ("GS:", "train"), ("2D motion", "train"), ("TR + LMF", "refine"),
             ("GS render", "render"), ("NeRF", "nerf"))


def write_report(out: Path, res: dict, dry: bool, clock: Clock) -> None:
    status = {s: res[s]["status"] + (f" ({res[s]['note']})" if res[s].get("note") else "")
              for s in res if isinstance(res.get(s), dict) and "status" in res[s]}
    lines = [f"# gpu_check {'(CPU dry run, tiny sizes: not GPU figures)' if dry else ''}".strip(),
             "", f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {clock.elapsed():.0f} s of a "
             f"{clock.budget_s:.0f} s budget", "",
             "| measure | setting | value | reference |", "|---|---|---|---|"]
    for measure, setting, value, ref in table_rows(res, dry):
        if value is None:
            stage = next(s for prefix, s in ROW_STAGE if measure.startswith(prefix))
            r = res.get(stage, {"status": "not run"})
            why = r["status"] + (f": {r['note']}" if r.get("note") else "")
            value = f"not measured ({why})"
        lines.append(f"| {measure} | {setting} | {value} | {ref} |")
    lines += ["", "Stages: " + "; ".join(f"{k} {v}" for k, v in status.items()), ""]
    (out / "gpu_check.md").write_text("\n".join(lines))
    (out / "gpu_check.json").write_text(json.dumps(res, indent=1, default=str))


# -- main ----------------------------------------------------------------------------------------

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="folder for gpu_check.md and gpu_check.json")
    p.add_argument("--data-root", type=Path, default=REPO / "build" / "gpu_data")
    p.add_argument("--dry-run", action="store_true", help="CPU, torch rasteriser, tiny sizes")
    p.add_argument("--budget-s", type=float, default=None,
                   help="the whole script's seconds (default: 525 on a GPU, 1800 dry)")
    p.add_argument("--started-at", type=float, default=None,
                   help="epoch seconds the script started (the install counts)")
    p.add_argument("--only", nargs="+", choices=STAGES, help="run these stages only")
    p.add_argument("--keep", action="store_true", help="keep the work folder (runs)")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--run-dir", help=argparse.SUPPRESS)
    p.add_argument("--backend", help=argparse.SUPPRESS)
    p.add_argument("--frames", type=int, default=3, help=argparse.SUPPRESS)
    p.add_argument("--skip", nargs="*", default=[], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        args.worker_out.write_text(json.dumps(WORKERS[args.worker](args), default=str))
        return
    if args.out is None:
        p.error("--out is required")
    if not (args.data_root / "epic_fields" / f"{VID}.json").is_file():
        p.error(f"{args.data_root}: no {VID} video (run `make gpu-wheels` here and carry "
                "build/gpu_data)")
    args.data_root = args.data_root.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    if (args.out / "gpu_check.md").exists():
        p.error(f"{args.out} already holds a gpu_check.md: choose another --out")
    plan = DRY if args.dry_run else GPU
    clock = Clock(args.budget_s or (1800 if args.dry_run else 525),
                  args.started_at or time.time())
    work = Path(tempfile.mkdtemp(prefix="lmf_gpu_check_"))
    ctx = Context(args, plan, clock, work, {"mode": "dry-run" if args.dry_run else "gpu"})
    say(f"{'dry run (CPU)' if args.dry_run else 'GPU run'}: {clock.left():.0f} s left, "
        f"work folder {work}, results in {args.out}")
    try:
        for stage in [s for s in STAGES if s in (args.only or STAGES)]:
            if stage in NEEDS_GSPLAT:
                wait_build(ctx)
            if clock.left() < MIN_LEFT_S[stage]:
                ctx.results[stage] = {"status": "skipped", "note": "out of time"}
            else:
                say(f"== {stage} ({clock.left():.0f} s left)")
                t0 = time.time()
                try:
                    ctx.results[stage] = STAGE_FUNCS[stage](ctx)
                except Exception as e:  # one stage's failure must not cost the others
                    ctx.results[stage] = {"status": "failed", "note": f"{type(e).__name__}: {e}"}
                ctx.results[stage]["stage_s"] = round(time.time() - t0, 1)
                say(f"{stage}: {ctx.results[stage]['status']} in "
                    f"{ctx.results[stage]['stage_s']:.0f} s")
            write_report(args.out, ctx.results, args.dry_run, clock)
        wait_build(ctx)  # --only without a stage that needs it
        write_report(args.out, ctx.results, args.dry_run, clock)
    finally:
        if ctx.build is not None:  # interrupted: no compiler left behind
            stop_build(ctx.build)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print((args.out / "gpu_check.md").read_text())
    failed = [s for s, r in ctx.results.items() if isinstance(r, dict)
              and r.get("status") in ("failed", "timeout")]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
