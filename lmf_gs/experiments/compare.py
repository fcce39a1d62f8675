"""`lmf-gs compare`: the Gaussian and the NeRF (NeuralDiff) backend side by side on one video.

Both are trained on the same frames (same split) under one stated budget (each config's own
iterations, the same iterations, or the same wall-clock seconds), refined with TR + LMF on the
UDOS split frames, and measured the same way: UDOS mAP, held-out PSNR, training time, TR seconds
per frame, render time of a whole test frame (RGB + layer masks, median) and peak memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import math
import resource
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from lmf_gs.backends import BACKENDS, LayeredBackend
from lmf_gs.config import MOTION_TYPES, Config, save_config
from lmf_gs.core.frames import train_holdout
from lmf_gs.core.runs import REQUEST, RunDir, load_checkpoint, resolve_device, resumable_dir
from lmf_gs.data.scene import Scene
from lmf_gs.errors import LmfError
from lmf_gs.experiments.evaluate import COLUMNS, evaluate_scene, mg_predictor
from lmf_gs.experiments.refine import REFINED, RefineResult, refine_run
from lmf_gs.experiments.tables import fmt, markdown, rich_table
from lmf_gs.experiments.train import seeded, train_run

RENDER_FRAMES = 3  # timed whole-frame renders per backend (after one untimed warm-up)


@dataclass
class BackendRow:
    """One backend's measurements."""

    backend: str
    map: dict[str, float]
    psnr_heldout: float | None
    train_seconds: float | None  # the training loop (None: reused run without a summary)
    train_steps: int
    refine_seconds_per_frame: float
    render_ms: float  # median over RENDER_FRAMES whole test frames
    peak_memory_mb: float
    resolution: str
    run_dir: str
    refine_dir: str


# -- memory ------------------------------------------------------------------------------------


def _rss_bytes() -> int:
    """Resident set size of this process (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _release_free_memory() -> None:
    """Return freed heap pages to the OS (glibc), so that RSS baselines are comparable."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakMemory:
    """Peak memory above the start of a ``with`` block: CUDA allocated bytes
    (`torch.cuda.max_memory_allocated`), else process RSS sampled every 10 ms."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.peak = self.base = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss_bytes())

    def __enter__(self) -> PeakMemory:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            _release_free_memory()
            self.base = self.peak = _rss_bytes()
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _rss_bytes())

    @property
    def mb(self) -> float:
        return (self.peak - self.base) / 2**20


# -- budgets -----------------------------------------------------------------------------------


def _seconds_per_iter(step: Callable[[], object], device: torch.device, n: int = 5) -> float:
    """Median seconds of ``n`` calls of ``step`` after two untimed ones."""
    times = []
    for k in range(n + 2):
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if k >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def seconds_per_iter(kind: type[LayeredBackend], vid: str, cfg: Config) -> float:
    """Seconds per training iteration of a fresh model (densification may slow later Gaussian
    iterations down: ``max_seconds`` stops training at the budget then)."""
    scene = Scene(vid, cfg.data)
    train_idx, _ = train_holdout(scene, cfg.train.holdout_every)
    for i in train_idx:
        scene.image(i)  # decode once, outside the timing
    with seeded(cfg.train.seed, resolve_device(cfg)):
        opt = kind.initialise(scene, cfg, train_idx).training(train_idx)
        return _seconds_per_iter(opt.iteration, resolve_device(cfg))


def apply_budget(
    vid: str, gs_cfg: Config, nerf_cfg: Config, iters: int | None, budget_s: float | None,
    console: Console,
) -> tuple[Config, Config, dict]:
    """The two training configs under the budget, and its description for the report.

    ``iters``: both train that many iterations. ``budget_s``: each gets as many iterations as
    its measured speed allows in ``budget_s`` seconds (so that its schedule completes) and
    stops at ``budget_s`` in any case (speed measurement not counted). Neither: each config's
    own schedule.
    """
    if iters is not None and budget_s is not None:
        raise LmfError("--iters and --budget-s exclude each other")
    gs, nerf = BACKENDS["gs"], BACKENDS["nerf"]
    if iters is not None:
        if iters < 1:
            raise LmfError(f"--iters {iters}: must be >= 1")
        return gs.budgeted(gs_cfg, iters), nerf.budgeted(nerf_cfg, iters), \
            {"mode": "iterations", "iters": iters}
    if budget_s is None:
        return gs_cfg, nerf_cfg, {"mode": "configs"}
    if budget_s <= 0:
        raise LmfError(f"--budget-s {budget_s}: must be > 0")
    with console.status("measuring training speed of both backends"):
        gs_spi = seconds_per_iter(gs, vid, gs_cfg)
        nerf_spi = seconds_per_iter(nerf, vid, nerf_cfg)
    gs_iters, nerf_iters = max(1, int(budget_s / gs_spi)), max(1, int(budget_s / nerf_spi))
    console.print(f"budget {budget_s:.0f} s: GS {gs_spi:.3f} s/iter -> {gs_iters} iters, "
                  f"NeRF {nerf_spi:.3f} s/iter -> {nerf_iters} iters")
    budget = {"mode": "seconds", "seconds": budget_s,
              "gs_seconds_per_iter": gs_spi, "nerf_seconds_per_iter": nerf_spi}
    return (gs.budgeted(gs_cfg, gs_iters, budget_s), nerf.budgeted(nerf_cfg, nerf_iters, budget_s),
            budget)


# -- render timing -----------------------------------------------------------------------------


def _median_ms(render: Callable[[int], object], frames: list[int], device: torch.device) -> float:
    """Median milliseconds of ``render(i)`` over ``frames`` after one untimed warm-up."""
    times = []
    with torch.no_grad():
        for k, i in enumerate([frames[0], *frames]):
            start = time.perf_counter()
            render(i)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if k:
                times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def render_ms(kind: type[LayeredBackend], refined: RefineResult, vid: str, cfg: Config
              ) -> float:
    """Median ms to render RGB + layer masks of a whole test frame with the refined model."""
    scene = Scene(vid, cfg.data)
    backend, _ = kind.load(refined.run_dir / REFINED, scene, cfg)
    frames = [scene.index(f) for f in refined.frames[:RENDER_FRAMES]]
    return _median_ms(backend.render, frames, backend.device)


# -- the comparison ----------------------------------------------------------------------------


def _check_same_frames(gs_cfg: Config, nerf_cfg: Config) -> None:
    for name, a, b in (("data.root", gs_cfg.data.root, nerf_cfg.data.root),
                       ("train.holdout_every", gs_cfg.train.holdout_every,
                        nerf_cfg.train.holdout_every),
                       ("eval.split", gs_cfg.eval.split, nerf_cfg.eval.split)):
        if a != b:
            raise LmfError(f"the GS and NeRF configs differ in {name} ({a} vs {b}): the "
                           "backends must see the same frames")


def _train(kind: type[LayeredBackend], vid: str, cfg: Config, run_dir: Path,
           console: Console) -> None:
    """Train into ``run_dir``, resuming a run a stopped comparison left unfinished."""
    if (run_dir / "train_summary.json").is_file():
        console.print(f"{run_dir}: trained by an earlier, unfinished comparison")
        return
    resume = (run_dir / "ckpt.pt").is_file()
    train_run(kind, vid, cfg, RunDir(run_dir, resume=resume), console=console)


def _run_backend(
    kind: type[LayeredBackend], vid: str, cfg: Config, run_dir: Path, reuse: bool,
    console: Console,
) -> BackendRow:
    """Train (unless ``reuse``), refine with LMF, time renders, under one memory probe."""
    with PeakMemory(resolve_device(cfg)) as mem:
        if reuse:
            load_checkpoint(run_dir)  # one-line error when there is no trained run
        else:
            _train(kind, vid, cfg, run_dir, console)
        refined = refine_run(kind, vid, cfg, run_dir, None, "lmf", 0, console=console)
        ms = render_ms(kind, refined, vid, cfg)
    summary_path = run_dir / "train_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    psnr = summary.get("psnr_heldout")
    trained = load_checkpoint(run_dir)
    tcfg = Config.model_validate(trained["config"])
    scene = Scene(vid, tcfg.data)
    return BackendRow(
        backend=kind.name,
        map=refined.metrics.map,
        psnr_heldout=None if psnr is None or math.isnan(psnr) else psnr,
        train_seconds=summary.get("seconds"),
        train_steps=int(trained["step"]),
        refine_seconds_per_frame=refined.seconds_per_frame,
        render_ms=ms,
        peak_memory_mb=mem.mb,
        resolution=f"{scene.width}x{scene.height}",
        run_dir=str(run_dir),
        refine_dir=str(refined.run_dir),
    )


def compare_scene(
    vid: str, gs_cfg: Config, nerf_cfg: Config, out: Path, iters: int | None = None,
    budget_s: float | None = None, reuse: bool = False, console: Console | None = None,
) -> tuple[dict, Path]:
    """Train (or, with ``reuse``, take ``out/VID/gs`` and ``out/VID/nerf``), refine and measure
    both backends; writes ``comparison.json`` and ``comparison.md`` to ``out/VID/compare[-k]``
    (fresh runs are trained inside it; an unfinished comparison with the same request is
    resumed) and returns the report and that folder."""
    console = console or Console()
    _check_same_frames(gs_cfg, nerf_cfg)
    if reuse and (iters is not None or budget_s is not None):
        raise LmfError("--reuse takes the runs as trained: it excludes --iters and --budget-s")
    # the NeRF backend trains as NeuralDiff, without fusion: the Gaussians do the same here
    gs_cfg = gs_cfg.model_copy(update={"train": gs_cfg.train.model_copy(update={"fusion": "none"})})
    gs_cfg, nerf_cfg, budget = apply_budget(vid, gs_cfg, nerf_cfg, iters, budget_s, console)
    mg = evaluate_scene(vid, "mg", gs_cfg, lambda: mg_predictor(Scene(vid, gs_cfg.data))).map
    request = {"reuse": reuse, "budget": budget, "gs": gs_cfg.model_dump(mode="json"),
               "nerf": nerf_cfg.model_dump(mode="json")}
    folder = resumable_dir(out / vid / "compare", request, "comparison.json")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / REQUEST).write_text(json.dumps(request))
    save_config(gs_cfg, folder / "gs_config.yaml")
    save_config(nerf_cfg, folder / "nerf_config.yaml")
    rows = []
    for name, cfg in (("gs", gs_cfg), ("nerf", nerf_cfg)):
        kind = BACKENDS[name]
        run_dir = (out / vid if reuse else folder) / name
        console.print(f"[bold]{vid}: {label(name)}[/bold] ({run_dir})")
        rows.append(_run_backend(kind, vid, cfg, run_dir, reuse, console))
    report = {"scene": vid, "split": gs_cfg.eval.split, "budget": budget,
              "device": {"gs": str(resolve_device(gs_cfg)), "nerf": str(resolve_device(nerf_cfg))},
              "mg": mg, "rows": [asdict(r) for r in rows]}
    (folder / "comparison.json").write_text(json.dumps(report, indent=1))
    (folder / "comparison.md").write_text(report_markdown(report))
    return report, folder


# -- tables ------------------------------------------------------------------------------------

HEADER = ["method", *(f"mAP {COLUMNS[m]}" for m in MOTION_TYPES), "PSNR held-out",
          "train s (steps)", "TR s/frame", "render ms/frame", "peak MB", "resolution"]


def label(name: str) -> str:
    return f"{BACKENDS[name].label} + TR + LMF"


def table_rows(report: dict) -> list[list[str]]:
    """Cells of the MG row and of one row per backend."""
    out = [["2D motion masks (MG)", *(fmt(report["mg"][m]) for m in MOTION_TYPES),
            *[""] * (len(HEADER) - 4)]]
    for r in report["rows"]:
        out.append([label(r["backend"]), *(fmt(r["map"][m]) for m in MOTION_TYPES),
                    fmt(r["psnr_heldout"]),
                    f"{fmt(r['train_seconds'], '.1f')} ({r['train_steps']})",
                    fmt(r["refine_seconds_per_frame"]), fmt(r["render_ms"], ".1f"),
                    fmt(r["peak_memory_mb"], ".0f"), r["resolution"]])
    return out


def speedups(report: dict) -> str:
    """One line: how much faster GS renders and refines than NeRF."""
    gs, nerf = report["rows"]
    return (f"GS vs NeRF: render {nerf['render_ms'] / gs['render_ms']:.0f}x faster, "
            f"TR {nerf['refine_seconds_per_frame'] / gs['refine_seconds_per_frame']:.1f}x "
            f"faster per frame")


def describe_budget(budget: dict) -> str:
    if budget["mode"] == "iterations":
        return f"same training iterations ({budget['iters']})"
    if budget["mode"] == "seconds":
        return f"same training wall-clock budget ({budget['seconds']:.0f} s)"
    return "each config's own training schedule"


def report_markdown(report: dict) -> str:
    head = [f"# {report['scene']}: Gaussian vs NeRF backend (UDOS {report['split']})", "",
            f"Budget: {describe_budget(report['budget'])}; devices: "
            + ", ".join(f"{k} {v}" for k, v in report["device"].items()) + ".", ""]
    return "\n".join([*head, markdown(HEADER, table_rows(report)), "", speedups(report), ""])


def report_table(report: dict) -> Table:
    return rich_table(HEADER, table_rows(report),
                      f"{report['scene']}: GS vs NeRF, {describe_budget(report['budget'])}")
