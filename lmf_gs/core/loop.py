"""The iteration loop shared by every optimiser (Gaussian and NeRF training, TR): progress bar,
JSONL log, checkpoints, wall-clock budget, the time spent (summed over resumes), and a clean
stop on Ctrl-C / SIGTERM that checkpoints first."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import Tensor

from lmf_gs.errors import Interrupted


@dataclass
class LoopSettings:
    log_every: int
    checkpoint_every: int
    max_seconds: float | None = None


class Steps(Protocol):
    """An optimiser the loop can drive: one step at a time, with a resumable state."""

    step: int
    iters: int  # the step the run ends at
    elapsed: float  # seconds spent in the loop so far, over resumes
    settings: LoopSettings

    def iteration(self) -> dict[str, Tensor]: ...

    def state_dict(self) -> dict: ...


@contextmanager
def stop_requests() -> Iterator[list[int]]:
    """Turn SIGINT/SIGTERM into a request (the received signal numbers) that the loop honours
    between two steps; a second Ctrl-C stops at once."""
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signum)

    try:
        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: no handlers, the caller's own stop applies
        yield received
        return
    try:
        yield received
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_loop(
    opt: Steps, run_dir: Path | None, save: Callable[[dict], None] | None = None,
    description: str = "train", counts: Callable[[], dict[str, int] | None] | None = None,
) -> list[dict]:
    """Step ``opt`` up to ``opt.iters`` (or ``settings.max_seconds`` of ``opt.elapsed``), logging
    to ``run_dir/train_log.jsonl`` every ``log_every`` steps (with ``counts()``, e.g. Gaussians
    per set) and calling ``save(state)`` every ``checkpoint_every`` steps and at the end.

    Logged values are read from the device only every ``log_every`` steps. On SIGINT/SIGTERM the
    current step finishes, ``save`` is called and `Interrupted` is raised.
    """
    settings, iters = opt.settings, opt.iters
    log_path = None if run_dir is None else run_dir / "train_log.jsonl"
    history: list[dict] = []
    start, before = time.perf_counter(), opt.elapsed
    columns = (TextColumn("[bold]{task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
    console = Console()
    # without a terminal (CI, logs) print a plain line ~20 times per run instead of a bar
    every = 0 if console.is_terminal else max(settings.log_every, iters // 20)
    with (stop_requests() as stop,
          Progress(*columns, console=console, disable=not console.is_terminal) as bar):
        task = bar.add_task(description, total=iters, completed=opt.step, info="")
        while opt.step < iters:
            opt.elapsed = before + time.perf_counter() - start
            if stop:
                if save is not None:
                    save(opt.state_dict())
                raise Interrupted(
                    f"{description}: stopped by {signal.Signals(stop[0]).name} at step "
                    f"{opt.step}/{iters}" + ("" if save is None else
                    ", checkpoint saved; run the same command again to resume (train: add "
                    "--resume)"))
            if settings.max_seconds is not None and opt.elapsed > settings.max_seconds:
                console.print(f"{description}: time budget of {settings.max_seconds:.0f} s "
                              f"spent at step {opt.step}")
                if save is not None:
                    save(opt.state_dict())
                break
            logs = opt.iteration()
            opt.elapsed = before + time.perf_counter() - start
            if opt.step % settings.log_every == 0 or opt.step == iters:
                values = {k: float(v) for k, v in logs.items()}
                sizes = None if counts is None else counts()
                extra = {} if sizes is None else {"gaussians": sizes}
                entry = {"step": opt.step, **values, **extra, "seconds": opt.elapsed}
                history.append(entry)
                if log_path is not None:
                    with log_path.open("a") as f:
                        f.write(json.dumps(entry) + "\n")
                info = f"loss {values['loss']:.3f} psnr {values['psnr']:.1f}" + "".join(
                    f" {k[:2]}:{v}" for k, v in extra.get("gaussians", {}).items())
                bar.update(task, info=info)
                if every and (opt.step % every < settings.log_every or opt.step == iters):
                    console.print(f"{description} {opt.step}/{iters} {info}", highlight=False)
            bar.update(task, completed=opt.step)
            if save is not None and (opt.step % settings.checkpoint_every == 0
                                     or opt.step == iters):
                save(opt.state_dict())
    return history
