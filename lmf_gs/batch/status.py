"""The live view of a batch: one row per video (queued / running / done / failed, its current
step, the log of a failure), polled until every job has ended."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import submitit
from rich.console import Console
from rich.live import Live
from rich.table import Table

from lmf_gs.batch.jobs import VideoJob, read_events
from lmf_gs.batch.launch import Launcher

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STYLE = {QUEUED: "dim", RUNNING: "cyan", DONE: "green", FAILED: "red"}
RESULT_GRACE_S = 20.0  # a job that ended waits this long for its result file (slow shared disks)


def _failure_line(exc: Exception) -> str:
    """The last line of a job's traceback (submitit wraps it between dashed lines)."""
    text = str(exc)
    parts = text.split("-" * 22)
    body = parts[1] if len(parts) >= 3 else text
    lines = [ln.strip() for ln in body.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


@dataclass
class JobView:
    """One video's job as the view shows it."""

    job: VideoJob
    handle: submitit.Job | None = None  # None until submitted
    state: str = QUEUED
    step: str = ""  # the step of the last event
    event: str = ""  # the last event (start, done, skipped, stopped, failed, requeued)
    error: str = ""
    result: dict[str, str] = field(default_factory=dict)
    started: float | None = None
    ended: float | None = None
    _gone_since: float | None = None

    @property
    def vid(self) -> str:
        return self.job.vid

    @property
    def log(self) -> Path | None:
        return None if self.handle is None else self.handle.paths.stderr

    def update(self) -> bool:
        """Poll the job; True when its state changed."""
        if self.handle is None or self.state in (DONE, FAILED):
            return False
        before = self.state
        events = read_events(self.job.events)
        if events:
            last = events[-1]
            self.step, self.event = last["step"], last["event"]
            if last["event"] in ("failed", "stopped"):
                self.error = last["detail"]
        if self.handle.paths.result_pickle.exists():
            exc = self.handle.exception()
            if exc is None:
                self.state, self.result = DONE, self.handle.result()
            else:
                self.state, self.error = FAILED, self.error or _failure_line(exc)
        elif self.handle.done():  # ended without a result: killed, or the file is late
            self._gone_since = self._gone_since or time.time()
            if time.time() - self._gone_since > RESULT_GRACE_S:
                self.state = FAILED
                self.error = self.error or ("the job ended without a result (killed?); "
                                            f"submitit state {self.handle.state}")
        elif (events and events[-1]["event"] != "requeued") or self.handle.state == "RUNNING":
            self.state = RUNNING
        else:
            self.state = QUEUED
        now = time.time()
        if self.state == RUNNING and self.started is None:
            self.started = now
        if self.state in (DONE, FAILED):
            self.ended = now
        return self.state != before

    def line(self) -> str:
        """One log line for a change of state."""
        text = f"{self.vid}: {self.state}"
        if self.state == FAILED:
            text += f" in {self.step or 'start-up'}: {self.error} (log: {self.log})"
        elif self.step:
            text += f" ({self.step} {self.event})"
        return text


def _elapsed(v: JobView) -> str:
    if v.started is None:
        return ""
    s = int((v.ended or time.time()) - v.started)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def render(views: list[JobView], title: str) -> Table:
    counts = {s: sum(v.state == s for v in views) for s in (QUEUED, RUNNING, DONE, FAILED)}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    table = Table(title=f"{title} ({summary})")
    for name in ("video", "job", "state", "step", "time", "failure / log"):
        table.add_column(name, no_wrap=name in ("video", "job", "state"))
    for v in views:
        note = f"{v.error} (log: {v.log})" if v.state == FAILED else ""
        table.add_row(v.vid, "" if v.handle is None else v.handle.job_id,
                      f"[{STYLE[v.state]}]{v.state}[/]", f"{v.step} {v.event}".strip(),
                      _elapsed(v), note)
    return table


def watch(views: list[JobView], launcher: Launcher, console: Console, title: str,
          poll_s: float) -> None:
    """Submit the jobs as the launcher allows and poll them until all have ended, in a live
    table; every change of state is also printed as a line (for logs). Ctrl-C stops watching
    and tells what happens to the jobs."""
    with Live(render(views, title), console=console, auto_refresh=False) as live:
        try:
            while True:
                waiting = [v for v in views if v.handle is None]
                if waiting:
                    for v, h in zip(waiting, launcher.submit_ready([v.job for v in waiting]),
                                    strict=False):
                        v.handle = h
                for v in views:
                    if v.update():
                        live.console.print(v.line(), highlight=False, soft_wrap=True)
                live.update(render(views, title), refresh=True)
                if all(v.state in (DONE, FAILED) for v in views):
                    break
                time.sleep(poll_s)
        except KeyboardInterrupt:
            note = launcher.stop([v.handle for v in views if v.handle is not None])
            live.console.print(f"[yellow]{note}[/yellow]", soft_wrap=True)
            raise
    if not console.is_terminal:
        console.print()  # the last frame of a live display ends without a newline in a log
