"""`prepare`: source -> sampled, resized frames -> pycolmap SfM -> canonical layout + report."""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from lmf_gs.data.epic_fields import frame_number
from lmf_gs.errors import Interrupted, LmfError
from lmf_gs.prepare.alignment import pose_jumps
from lmf_gs.prepare.layout import (
    Outputs,
    commit,
    epic_fields_doc,
    frame_ranges,
    refuse_overwrite,
    staging,
    write_frames,
)
from lmf_gs.prepare.sfm import PYCOLMAP_VERSION, SfmOptions, run_sfm
from lmf_gs.prepare.source import EPIC_LONGEST_SIDE, Sampling, open_source

REPORT_NAME = "sfm_report.json"


@dataclass(frozen=True)
class PrepareSettings:
    """Everything `prepare` is asked to do besides source, video id and data root."""

    sampling: Sampling = field(default_factory=Sampling)
    longest_side: int | None = EPIC_LONGEST_SIDE  # None or 0: keep the source size
    source_fps: float | None = None  # a folder's frame rate; overrides a video's own
    sfm: SfmOptions = field(default_factory=SfmOptions)
    min_registered: float = 0.5  # fraction of the frames given to SfM
    min_registered_frames: int = 3
    overwrite: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_registered <= 1.0:
            raise LmfError(f"--min-registered must be in [0, 1], got {self.min_registered}")
        if self.longest_side is not None and self.longest_side < 0:
            raise LmfError(f"--size must be positive (0: keep the source size), got "
                           f"{self.longest_side}")


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt (so the staging folder is removed) while inside."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                    disable=not console.is_terminal)


def prepare(source: Path, vid: str, root: Path, settings: PrepareSettings,
            console: Console | None = None) -> dict:
    """Frames, camera poses and points of ``source`` into ``root`` (canonical layout) as video
    ``vid``; returns the report also written to ``root/sfm/{vid}/sfm_report.json``.

    Source, options and existing results are checked before anything is written; all work
    happens in ``root/.prepare-{vid}-*`` and is moved in place only at the end.
    """
    console = console or Console()
    out = Outputs.of(root, vid)
    src = open_source(source, settings.source_fps)
    step = settings.sampling.step(src.fps)
    refuse_overwrite(out, settings.overwrite)
    start = time.perf_counter()
    try:
        with _sigterm_as_interrupt(), staging(root, vid) as stage:
            with _progress(console) as bar:
                frames = write_frames(src, stage / "frames", step, settings.longest_side, bar)
                seconds = {"frames": time.perf_counter() - start}
                console.print(f"frames: {len(frames.numbers)} of {frames.source_frames} source "
                              f"frames at {frames.size[0]}x{frames.size[1]} "
                              f"({seconds['frames']:.1f} s)")
                if len(frames.numbers) < settings.min_registered_frames:
                    raise LmfError(f"{source}: only {len(frames.numbers)} frames sampled; "
                                   "structure-from-motion needs at least "
                                   f"{settings.min_registered_frames}")
                need = max(settings.min_registered_frames,
                           math.ceil(settings.min_registered * len(frames.numbers)))
                # a smaller model could never be accepted: COLMAP need not keep one
                opts = replace(settings.sfm, min_model_size=need)
                (stage / "sfm").mkdir()
                sfm = run_sfm(stage / "frames", frames.names, stage / "sfm", opts, bar,
                              str(source), console.print)
            seconds |= sfm.seconds
            registered = sorted(frame_number(n) for n in sfm.poses)
            missing = sorted(set(frames.numbers) - set(registered))
            unregistered = frame_ranges(missing, frames.numbers)
            if len(registered) < need:
                raise LmfError(
                    f"{source}: only {len(registered)} of {len(frames.numbers)} frames "
                    f"registered (needs at least {need}; unregistered: frames {unregistered}); "
                    "try a larger --overlap, --loop-closure, denser sampling or a lower "
                    "--min-registered")
            jumps = pose_jumps(sfm.poses)
            if jumps:
                console.print("[yellow]warning:[/yellow] the camera turns abruptly between "
                              "registered frames " + ", ".join(
                                  f"{a}->{b} ({d:.0f} deg)" for a, b, d in jumps)
                              + ": those poses may be wrong", highlight=False)
            doc = epic_fields_doc(sfm, src.fps)
            seconds["total"] = time.perf_counter() - start
            report = {
                "vid": vid,
                "source": str(source),
                "source_kind": src.kind,
                "source_fps": src.fps,
                "source_frames": frames.source_frames,
                "source_size": list(frames.source_size),
                "sampling": {"every": settings.sampling.every, "fps": settings.sampling.fps,
                             "step": step},
                "size": list(frames.size),
                "frames_given": len(frames.numbers),
                "frames_registered": len(registered),
                "unregistered": unregistered,
                "points": len(sfm.points),
                "mean_reprojection_error_px": sfm.reprojection_error,
                "camera": {"colmap_model": sfm.camera_model, "colmap_params": sfm.camera_params,
                           "opencv_params": doc["camera"]["params"]},
                "models": sfm.model_sizes,
                "kept_model": f"sparse/{sfm.kept_model}",
                "image_pairs": sfm.pairs,
                "mapper_tries": sfm.tries,
                "rotation_jumps": [list(j) for j in jumps],
                "options": asdict(opts),
                "pycolmap": PYCOLMAP_VERSION,
                "seconds": seconds,
            }
            (stage / "epic_fields.json").write_text(json.dumps(doc))
            (stage / "sfm" / REPORT_NAME).write_text(json.dumps(report, indent=1))
            commit(stage, out)
    except KeyboardInterrupt:
        raise Interrupted(f"prepare {vid}: stopped; nothing was written to {root}") from None
    return report
