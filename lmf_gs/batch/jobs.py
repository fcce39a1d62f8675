"""The per-video batch job: train, refine (TR), evaluate, through the same Python API as the
``train``, ``refine`` and ``evaluate`` commands.

Every step first looks at the run folders: a finished step is skipped, an unfinished training or
refinement resumes from its checkpoint, nothing finished is replaced. Under submitit, the
timeout/pre-emption signal (SIGUSR2) stops a running training or refinement at its next step
with a checkpoint (other work at the end of its step), then submitit calls
`VideoJob.checkpoint` and requeues the job.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import submitit
from rich.console import Console

from lmf_gs.backends import LayeredBackend, get_backend
from lmf_gs.config import Config, load_config
from lmf_gs.core import loop
from lmf_gs.core.frames import parse_frames
from lmf_gs.core.runs import RunDir, has_checkpoint
from lmf_gs.data.scene import Scene
from lmf_gs.errors import Interrupted, LmfError
from lmf_gs.experiments.evaluate import evaluate_method, metrics_path, write_metrics
from lmf_gs.experiments.refine import REQUEST, _request, refine_run
from lmf_gs.experiments.train import train_run

STEPS = ("train", "refine", "evaluate")
SUMMARY = "train_summary.json"
LOCKS = ".batch-locks"


class ConfigSource(Protocol):
    """How a job resolves its configs: the CLI's own rules (``cli.batch_commands.CliConfigs``)."""

    def fresh(self, backend: str) -> Config:
        """A new training run's config (``--config`` or the backend's default, ``--set``)."""
        ...

    def of_run(self, run_dir: Path, own: bool) -> Config:
        """A trained run's config: its config.yaml (``own``) or ``--config``, ``--set`` on top."""
        ...

    def plain(self) -> Config:
        """``--config`` (or the defaults) and ``--set``: what scoring the 2D masks uses."""
        ...


@dataclass(frozen=True)
class BatchSpec:
    """What every job of one ``batch`` call does."""

    steps: tuple[str, ...]
    backend: str
    out: Path
    configs: ConfigSource
    events: Path  # OUT/batch-k/steps: one JSONL event log per video
    cwd: Path  # relative paths mean what they meant in the submitting shell
    threads: int | None = None  # torch CPU threads per job (None: torch's default)


@dataclass
class Outcome:
    """What a step did: ``paths`` of the metrics files it wrote or found."""

    skipped: bool
    note: str
    paths: dict[str, str] = field(default_factory=dict)


# --- the event log ------------------------------------------------------------------------------

def log_event(path: Path, vid: str, attempt: int, step: str, event: str, detail: str = "") -> None:
    """Append one event (``start``, ``done``, ``skipped``, ``stopped``, ``failed``,
    ``requeued``) to a video's JSONL log."""
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"time": time.time(), "vid": vid, "attempt": attempt, "step": step, "event": event,
             "detail": detail, "host": socket.gethostname(), "pid": os.getpid()}
    with path.open("a") as f:
        f.write(json.dumps(entry) + "\n")


def read_events(path: Path) -> list[dict]:
    """The events of a video's log (a line being written is left out)."""
    if not path.is_file():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


# --- the steps ----------------------------------------------------------------------------------

def _flat(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_differences(a: Config, b: Config) -> list[str]:
    """``key: a vs b`` for every field where two configs differ (``data.root`` compared as a
    resolved path)."""
    fa, fb = _flat(a.model_dump(mode="json")), _flat(b.model_dump(mode="json"))
    for f in (fa, fb):
        f["data.root"] = str(Path(f["data.root"]).resolve())
    return [f"{k}: {fa.get(k)!r} vs {fb.get(k)!r}" for k in sorted(set(fa) | set(fb))
            if fa.get(k) != fb.get(k)]


def _finished_training(train_dir: Path) -> dict:
    path = train_dir / SUMMARY
    if not path.is_file():
        raise LmfError(f"{train_dir}: no finished training ({SUMMARY}); add train to --steps")
    return json.loads(path.read_text())


def train_step(kind: type[LayeredBackend], vid: str, spec: BatchSpec, console: Console
               ) -> Outcome:
    """Train ``OUT/VID/BACKEND`` (``lmf-gs train``), resume it from its checkpoint, or skip a
    finished one; a run made under other settings is refused, never replaced."""
    run_dir = spec.out / vid / kind.name
    cfg = spec.configs.fresh(kind.name)
    finished = (run_dir / SUMMARY).is_file()
    if (finished or has_checkpoint(run_dir)) and (run_dir / "config.yaml").is_file():
        diff = config_differences(load_config(run_dir / "config.yaml"), cfg)
        if diff:
            more = f" (+{len(diff) - 3} more)" if len(diff) > 3 else ""
            raise LmfError(f"{run_dir} holds a run made under other settings than this batch "
                           f"({'; '.join(diff[:3])}{more}); use another --out, or the --config "
                           "and --set it was made with")
    if finished:
        return Outcome(True, f"finished run in {run_dir}")
    resume = has_checkpoint(run_dir)
    summary = train_run(kind, vid, cfg, RunDir(run_dir, resume=resume), console=console)
    return Outcome(False, f"{'resumed, ' if resume else ''}{summary['steps']} steps, held-out "
                          f"PSNR {summary['psnr_heldout']:.2f} dB")


def refine_request(kind: type[LayeredBackend], vid: str, cfg: Config, train_dir: Path) -> dict:
    """The request (frames and resolved config) `refine_run` stores for these settings."""
    cfg = kind.with_architecture(cfg, load_config(train_dir / "config.yaml"))
    return _request(cfg, parse_frames(None, Scene(vid, cfg.data), cfg.eval.split))


def finished_refinement(base: Path, request: dict) -> Path | None:
    """A finished run of ``base``'s family (``base``, ``base-2``, ...) with this request."""
    for d in sorted(base.parent.glob(f"{base.name}*")):
        if d.name != base.name and not d.name[len(base.name) + 1:].isdigit():
            continue
        if (d / "metrics.json").is_file() and (d / REQUEST).is_file() and json.loads(
                (d / REQUEST).read_text()) == request:
            return d
    return None


def refine_step(kind: type[LayeredBackend], vid: str, spec: BatchSpec, console: Console
                ) -> Outcome:
    """TR on the UDOS split frames (``lmf-gs refine``), unless a finished refinement with the
    same settings exists; `refine_run` itself resumes an unfinished one."""
    train_dir = spec.out / vid / kind.name
    _finished_training(train_dir)
    cfg = spec.configs.of_run(train_dir, own=True)
    fusion, neighbors = cfg.refine.fusion, cfg.refine.neighbors
    done = finished_refinement(train_dir / f"refine-{fusion}-n{neighbors}",
                               refine_request(kind, vid, cfg, train_dir))
    if done is not None:
        return Outcome(True, f"finished refinement in {done}",
                       {"refined": str(done / "metrics.json")})
    res = refine_run(kind, vid, cfg, train_dir, None, fusion, neighbors, console=console)
    return Outcome(False, f"{len(res.frames)} frames, {res.seconds_per_frame:.2f} s per frame",
                   {"refined": str(res.run_dir / "metrics.json")})


def evaluate_step(kind: type[LayeredBackend], vid: str, spec: BatchSpec, console: Console
                  ) -> Outcome:
    """Score the 2D masks and the trained model (``lmf-gs evaluate --method mg|BACKEND``),
    skipping a score that exists under the same settings (for the model: of its final
    checkpoint)."""
    paths, ran = {}, []
    cfg = spec.configs.plain()
    mg_dir = spec.out / vid / "mg"
    path = metrics_path(mg_dir, cfg)
    if not path.is_file():
        result, extra = evaluate_method("mg", vid, cfg, mg_dir)
        path = write_metrics(result, mg_dir, cfg, console, extra)
        ran.append("mg")
    paths["mg"] = str(path)

    train_dir = spec.out / vid / kind.name
    steps = _finished_training(train_dir)["steps"]
    cfg = spec.configs.of_run(train_dir, own=False)
    path = metrics_path(train_dir, cfg)
    if not (path.is_file() and json.loads(path.read_text()).get("checkpoint_step") == steps):
        result, extra = evaluate_method(kind.name, vid, cfg, train_dir)
        path = write_metrics(result, train_dir, cfg, console, extra)
        ran.append(kind.name)
    paths["trained"] = str(path)
    note = f"scored {', '.join(ran)}" if ran else "scores exist"
    return Outcome(not ran, note, paths)


STEP_RUNNERS: dict[str, Callable[[type[LayeredBackend], str, BatchSpec, Console], Outcome]] = {
    "train": train_step, "refine": refine_step, "evaluate": evaluate_step}


# --- the job ------------------------------------------------------------------------------------

@contextmanager
def video_lock(out: Path, vid: str) -> Iterator[None]:
    """Hold ``OUT/.batch-locks/VID.lock`` (released when the process ends, however it ends): two
    jobs never work on the same video."""
    path = out / LOCKS / f"{vid}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LmfError(f"{vid}: another batch job is working on this video (it holds "
                           f"{path}); wait for it to end or stop it") from None
        yield


def _running_loop_stop() -> Callable[[int, object], None] | None:
    """The stop-request handler of a running `run_loop` (it owns SIGTERM while it runs)."""
    handler = signal.getsignal(signal.SIGTERM)
    return handler if getattr(handler, "__module__", None) == loop.__name__ else None


@contextmanager
def requeue_on_notice() -> Iterator[Callable[[], None]]:
    """Inside a submitit job, act on submitit's timeout/pre-emption notice (SIGUSR2 unless
    SUBMITIT_PREEMPT_SIGNAL says otherwise) without cutting a file write short: a running
    training or refinement loop (or the next one to start) is asked to stop at its next step
    with a checkpoint, as on SIGTERM; the job is then handed to submitit, which calls
    `VideoJob.checkpoint` and requeues it. Yields ``at_boundary()``, to call between steps:
    it hands over when a notice came outside a loop."""
    in_job = bool(os.environ.get("SUBMITIT_EXECUTOR"))
    if not in_job or threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    sig = signal.Signals[f"SIG{submitit.JobEnvironment.USR_SIG}"]
    requeue = signal.getsignal(sig)  # submitit's checkpoint-and-requeue handler
    if not callable(requeue):
        yield lambda: None
        return
    notice, delivered, ended = threading.Event(), threading.Event(), threading.Event()

    def deliver() -> None:
        stop = _running_loop_stop()
        if notice.is_set() and not delivered.is_set() and stop is not None:
            stop(sig, None)  # a stop request: the loop checkpoints, then raises Interrupted
            delivered.set()

    def watch() -> None:  # a notice that came before a loop started reaches it here
        while not ended.wait(0.05):
            deliver()

    def on_notice(signum: int, frame: object) -> None:
        notice.set()
        deliver()

    def at_boundary() -> None:
        if notice.is_set():
            requeue(sig, None)  # exits the process once the job is requeued

    signal.signal(sig, on_notice)
    threading.Thread(target=watch, daemon=True).start()
    try:
        yield at_boundary
    except Interrupted:
        if not notice.is_set():
            raise  # SIGTERM or Ctrl-C: the job ends, its checkpoints stay
        at_boundary()
        raise
    finally:
        ended.set()
        signal.signal(sig, requeue)


class VideoJob(submitit.helpers.Checkpointable):
    """One video's steps (a subset of `STEPS`, run in that order); returns the metrics files
    (``mg``, ``trained``, ``refined``) its steps wrote or found."""

    def __init__(self, vid: str, spec: BatchSpec) -> None:
        self.vid, self.spec, self.attempt = vid, spec, 1

    @property
    def events(self) -> Path:
        return self.spec.events / f"{self.vid}.jsonl"

    def log(self, step: str, event: str, detail: str = "") -> None:
        log_event(self.events, self.vid, self.attempt, step, event, detail)

    def __call__(self) -> dict[str, str]:
        import torch

        os.chdir(self.spec.cwd)
        if self.spec.threads:
            torch.set_num_threads(self.spec.threads)
        kind = get_backend(self.spec.backend)
        console = Console()
        paths: dict[str, str] = {}
        with video_lock(self.spec.out, self.vid), requeue_on_notice() as at_boundary:
            for step in (s for s in STEPS if s in self.spec.steps):
                at_boundary()
                self.log(step, "start")
                try:
                    outcome = STEP_RUNNERS[step](kind, self.vid, self.spec, console)
                except BaseException as e:
                    self.log(step, "stopped" if isinstance(e, Interrupted) else "failed",
                             f"{type(e).__name__}: {e}")
                    raise
                paths.update(outcome.paths)
                self.log(step, "skipped" if outcome.skipped else "done", outcome.note)
        return paths

    def checkpoint(self) -> submitit.helpers.DelayedSubmission:
        """Called by submitit on a timeout or pre-emption notice: the steps' own checkpoints
        hold the state, so the same job is requeued."""
        self.log("job", "requeued", f"attempt {self.attempt + 1} follows")
        self.attempt += 1
        return submitit.helpers.DelayedSubmission(self)
