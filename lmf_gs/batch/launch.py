"""Submitting the jobs: submitit's local executor with a cap on parallel jobs (each job gets its
own GPU when there are enough), or a SLURM job array through submitit's AutoExecutor."""

from __future__ import annotations

import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import submitit

from lmf_gs.batch.jobs import VideoJob
from lmf_gs.errors import LmfError

EXECUTORS = ("local", "slurm")
JOB_NAME = "lmf-gs-batch"


@dataclass(frozen=True)
class ExecutorSettings:
    """Resources of each job; ``max_parallel`` caps the jobs running at once (SLURM: the
    array's parallelism)."""

    kind: str
    folder: Path  # submitit's logs and pickles, one subfolder per job
    max_parallel: int | None = None
    timeout_min: int = 24 * 60
    gpus_per_job: int = 1
    partition: str | None = None
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    max_requeues: int = 3  # timeouts after which a job is no longer requeued


class Launcher(Protocol):
    def submit_ready(self, waiting: list[VideoJob]) -> list[submitit.Job]:
        """Submit the jobs of ``waiting`` whose turn has come; returns their handles, in order
        (the first ``len(result)`` of ``waiting``)."""
        ...

    def stop(self, jobs: list[submitit.Job]) -> str:
        """What Ctrl-C in the watching process does to the submitted jobs; a one-line note."""
        ...


def visible_gpus() -> list[int]:
    """GPU ids this process may hand to local jobs (CUDA_VISIBLE_DEVICES when set)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [int(x) for x in env.split(",") if x.strip().isdigit()]
    import torch

    return list(range(torch.cuda.device_count()))


class LocalLauncher:
    """submitit's LocalExecutor: at most ``max_parallel`` jobs at once (default 1), job k on the
    GPUs of its slot (round robin over the visible ones; none on a CPU machine)."""

    def __init__(self, settings: ExecutorSettings) -> None:
        self.cap = settings.max_parallel or 1
        self.gpus_per_job = settings.gpus_per_job
        self.gpus = visible_gpus()
        self.executor = submitit.LocalExecutor(folder=settings.folder,
                                               max_num_timeout=settings.max_requeues)
        self.executor.update_parameters(timeout_min=settings.timeout_min)
        self.slots: list[submitit.Job | None] = [None] * self.cap

    def submit_ready(self, waiting: list[VideoJob]) -> list[submitit.Job]:
        jobs: list[submitit.Job] = []
        n = self.gpus_per_job if self.gpus else 0
        for slot, held in enumerate(self.slots):
            if len(jobs) == len(waiting):
                break
            if held is not None and not held.done():
                continue
            ids = tuple(self.gpus[(slot * n + j) % len(self.gpus)] for j in range(n))
            self.executor.update_parameters(gpus_per_node=n, visible_gpus=ids)
            self.slots[slot] = self.executor.submit(waiting[len(jobs)])
            jobs.append(self.slots[slot])
        return jobs

    def stop(self, jobs: list[submitit.Job]) -> str:
        for job in jobs:
            if not job.done():
                os.kill(int(job.job_id), signal.SIGTERM)  # forwarded to the job
        return ("stopping the local jobs; each resumes from its last checkpoint when the same "
                "command runs again")


class SlurmLauncher:
    """All jobs as one SLURM array (``--max-parallel`` = its ``%`` limit), submitted through
    submitit's AutoExecutor; SLURM signals USR2 ``signal_delay_s`` before the time limit."""

    def __init__(self, settings: ExecutorSettings) -> None:
        if shutil.which("srun") is None:
            raise LmfError("--executor slurm: no `srun` on PATH; run `lmf-gs batch` on a SLURM "
                           "login node (or use --executor local)")
        self.executor = submitit.AutoExecutor(folder=settings.folder, cluster="slurm",
                                              slurm_max_num_timeout=settings.max_requeues)
        params: dict[str, object] = {
            "name": JOB_NAME, "timeout_min": settings.timeout_min,
            "gpus_per_node": settings.gpus_per_job, "cpus_per_task": settings.cpus_per_task,
            "mem_gb": settings.mem_gb, "slurm_partition": settings.partition,
            "slurm_array_parallelism": settings.max_parallel}
        self.executor.update_parameters(**{k: v for k, v in params.items() if v is not None})

    def submit_ready(self, waiting: list[VideoJob]) -> list[submitit.Job]:
        with self.executor.batch():
            jobs = [self.executor.submit(job) for job in waiting]
        return jobs

    def stop(self, jobs: list[submitit.Job]) -> str:
        ids = " ".join(j.job_id for j in jobs if not j.done())
        return (f"the jobs keep running on the cluster (stop them with `scancel {ids}`); run the "
                "same command again once they end to collect the table")


def make_launcher(settings: ExecutorSettings) -> Launcher:
    if settings.kind not in EXECUTORS:
        raise LmfError(f"--executor {settings.kind!r}: expected one of {', '.join(EXECUTORS)}")
    return LocalLauncher(settings) if settings.kind == "local" else SlurmLauncher(settings)
