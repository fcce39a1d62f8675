"""``lmf-gs batch``: train, refine and evaluate many videos as one submitit job each (this
machine or SLURM), watch them live, and print the mean table over videos (the paper's Table 1)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, console, default_config, run_config
from cli.options import Backend, ConfigName, DataRoot, Out, Overrides, Scenes, make_config
from lmf_gs.config import Config
from lmf_gs.errors import DataError, Interrupted, LmfError

POLL_S = {"local": 1.0, "slurm": 20.0}


@dataclass(frozen=True)
class CliConfigs:
    """The configs a job uses, resolved exactly as ``train``, ``refine`` and ``evaluate`` do
    (`lmf_gs.batch.jobs.ConfigSource`); evaluated on the job's machine, so that the default
    config follows its GPU."""

    config: str | None
    overrides: tuple[str, ...]
    data_root: Path

    def fresh(self, backend: str) -> Config:
        return make_config(self.config or default_config(backend), list(self.overrides),
                           self.data_root)

    def of_run(self, run_dir: Path, own: bool) -> Config:
        return run_config(run_dir, None if own else self.config, list(self.overrides),
                          self.data_root)

    def plain(self) -> Config:
        return make_config(self.config, list(self.overrides), self.data_root)


def _steps(text: str) -> tuple[str, ...]:
    from lmf_gs.batch.jobs import STEPS

    steps = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in steps if s not in STEPS]
    if bad or not steps:
        raise LmfError(f"--steps {text!r}: expected a comma list of {', '.join(STEPS)}")
    return steps


def _positive(name: str, value: float | None, minimum: float = 1) -> None:
    if value is not None and value < minimum:
        raise LmfError(f"{name} {value}: must be at least {minimum}")


@app.command()
def batch(
    scene: Scenes,
    steps: Annotated[str, typer.Option(
        help="Comma list of train, refine, evaluate (always run in that order).")
    ] = "train,refine,evaluate",
    executor: Annotated[str, typer.Option(
        help="local (jobs on this machine) or slurm (a job array; run on a login node).")
    ] = "local",
    max_parallel: Annotated[int | None, typer.Option(
        help="At most N jobs at once (local default 1; slurm: the array's % limit).")] = None,
    slurm_partition: Annotated[str | None, typer.Option(help="SLURM partition.")] = None,
    gpus_per_job: Annotated[int, typer.Option(help="GPUs per job.")] = 1,
    timeout_min: Annotated[int, typer.Option(
        help="Time limit per job in minutes; a job that reaches it checkpoints and is "
        "requeued (up to 3 times).")] = 24 * 60,
    cpus_per_task: Annotated[int | None, typer.Option(
        help="CPU cores per job (slurm); also its torch threads.")] = None,
    mem_gb: Annotated[float | None, typer.Option(help="Memory per job in GB (slurm).")] = None,
    data_root: DataRoot = Path("data"),
    out: Out = Path("runs"),
    config: ConfigName = None,
    set_: Overrides = None,
    backend: Backend = "gs",
) -> None:
    """Train, refine (TR on the UDOS split frames) and evaluate every video as one job each,
    through submitit, with a live table of the jobs; then the mean over videos as in the paper's
    Table 1, written with the per-video rows to OUT/batch[-k]/. Finished steps are skipped and
    stopped ones resume: run the same command again after a failure."""
    from lmf_gs.backends import get_backend
    from lmf_gs.batch.jobs import BatchSpec, VideoJob
    from lmf_gs.batch.launch import EXECUTORS, ExecutorSettings, make_launcher
    from lmf_gs.batch.status import DONE, FAILED, JobView, watch
    from lmf_gs.batch.table import collect, means, table1, title, write_results
    from lmf_gs.core.runs import new_numbered_dir
    from lmf_gs.data.paths import ScenePaths
    from lmf_gs.experiments.evaluate import expand_scenes

    kind = get_backend(backend)
    chosen = _steps(steps)
    if executor not in EXECUTORS:
        raise LmfError(f"--executor {executor!r}: expected one of {', '.join(EXECUTORS)}")
    for name, value in (("--max-parallel", max_parallel), ("--timeout-min", timeout_min),
                        ("--cpus-per-task", cpus_per_task)):
        _positive(name, value)
    _positive("--gpus-per-job", gpus_per_job, 0)
    _positive("--mem-gb", mem_gb, 0.1)
    if executor == "local" and (slurm_partition or mem_gb):
        raise LmfError("--slurm-partition and --mem-gb apply to --executor slurm")
    cfg = make_config(config, set_, data_root)
    scenes = expand_scenes(scene, cfg.data)
    for vid in scenes:
        path = ScenePaths.from_config(vid, cfg.data).epic_fields
        if not path.is_file():
            raise DataError(f"{path}: no EPIC Fields camera file for {vid}")

    folder = new_numbered_dir(out / "batch")
    settings = ExecutorSettings(executor, folder / "logs", max_parallel, timeout_min,
                                gpus_per_job, slurm_partition, cpus_per_task, mem_gb)
    try:
        launcher = make_launcher(settings)
    except LmfError:
        folder.rmdir()
        raise
    threads = cpus_per_task
    if executor == "local" and threads is None and "OMP_NUM_THREADS" not in os.environ:
        threads = max(1, (os.cpu_count() or 1) // (max_parallel or 1))
    spec = BatchSpec(chosen, kind.name, out, CliConfigs(config, tuple(set_ or []), data_root),
                     folder / "steps", Path.cwd(), threads)
    (folder / "batch.json").write_text(json.dumps({
        "command": shlex.join(["lmf-gs", *sys.argv[1:]]), "scenes": scenes,
        "steps": list(chosen), "backend": kind.name, "executor": executor,
        "max_parallel": max_parallel, "timeout_min": timeout_min, "gpus_per_job": gpus_per_job,
        "slurm_partition": slurm_partition, "cpus_per_task": cpus_per_task, "mem_gb": mem_gb,
        "config": config, "overrides": list(set_ or []), "data_root": str(data_root),
        "out": str(out)}, indent=1))
    console.print(f"batch of {len(scenes)} videos ({', '.join(chosen)}) on {executor}: "
                  f"{folder}")

    views = [JobView(VideoJob(vid, spec)) for vid in scenes]
    try:
        watch(views, launcher, console, f"lmf-gs batch: {folder}", POLL_S[executor])
    except KeyboardInterrupt:
        raise Interrupted(f"batch {folder} stopped by Ctrl-C") from None

    done = {v.vid: v.result for v in views if v.state == DONE}
    failed = {v.vid: {"step": v.step, "error": v.error, "log": str(v.log)}
              for v in views if v.state == FAILED}
    rows = collect(done, kind.label)
    mean_rows = means(rows, list(done))
    paths = write_results(folder, rows, mean_rows, list(done), failed)
    if mean_rows:
        console.print(table1(mean_rows, title(list(done), list(failed))))
    console.print(f"wrote {', '.join(str(p) for p in paths)}")
    if failed:
        raise LmfError(f"{len(failed)} of {len(views)} jobs failed ({', '.join(failed)}; logs "
                       "above); run the same command again to resume them: finished steps are "
                       "skipped")
