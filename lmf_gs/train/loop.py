"""The iteration loop shared by every optimiser (Gaussian and NeRF training, TR): progress bar,
JSONL log, checkpoints, wall-clock budget and the time spent, summed over resumes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class Steps(Protocol):
    """An optimiser the loop can drive: one step at a time, with a resumable state."""

    step: int
    elapsed: float  # seconds spent in the loop so far, over resumes

    def iteration(self) -> dict[str, float]: ...

    def state_dict(self) -> dict: ...


@dataclass
class LoopSettings:
    log_every: int
    checkpoint_every: int
    max_seconds: float | None = None


def run_loop(
    opt: Steps, iters: int, settings: LoopSettings, run_dir: Path | None,
    save: Callable[[dict], None] | None = None, description: str = "train",
    counts: Callable[[], dict[str, int]] | None = None,
) -> list[dict]:
    """Step ``opt`` up to ``iters`` (or ``settings.max_seconds`` of ``opt.elapsed``), logging to
    ``run_dir/train_log.jsonl`` every ``log_every`` steps (with ``counts()``, e.g. Gaussians
    per set) and calling ``save(state)`` every ``checkpoint_every`` steps and at the end."""
    log_path = None if run_dir is None else run_dir / "train_log.jsonl"
    history: list[dict] = []
    start, before = time.perf_counter(), opt.elapsed
    columns = (TextColumn("[bold]{task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
    console = Console()
    # without a terminal (CI, logs) print a plain line ~20 times per run instead of a bar
    every = 0 if console.is_terminal else max(settings.log_every, iters // 20)
    with Progress(*columns, console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task(description, total=iters, completed=opt.step, info="")
        while opt.step < iters:
            opt.elapsed = before + time.perf_counter() - start
            if settings.max_seconds is not None and opt.elapsed > settings.max_seconds:
                console.print(f"{description}: time budget of {settings.max_seconds:.0f} s "
                              f"spent at step {opt.step}")
                if save is not None:
                    save(opt.state_dict())
                break
            logs = opt.iteration()
            opt.elapsed = before + time.perf_counter() - start
            if opt.step % settings.log_every == 0 or opt.step == iters:
                extra = {} if counts is None else {"gaussians": counts()}
                entry = {"step": opt.step, **logs, **extra, "seconds": opt.elapsed}
                history.append(entry)
                if log_path is not None:
                    with log_path.open("a") as f:
                        f.write(json.dumps(entry) + "\n")
                info = f"loss {logs['loss']:.3f} psnr {logs['psnr']:.1f}" + "".join(
                    f" {k[:2]}:{v}" for k, v in extra.get("gaussians", {}).items())
                bar.update(task, info=info)
                if every and (opt.step % every < settings.log_every or opt.step == iters):
                    console.print(f"{description} {opt.step}/{iters} {info}", highlight=False)
            bar.update(task, completed=opt.step)
            if save is not None and (opt.step % settings.checkpoint_every == 0
                                     or opt.step == iters):
                save(opt.state_dict())
    return history
