"""`lmf-gs batch` with submitit's local executor on two tiny synthetic videos: the whole chain, a
failed job resumed by a second call without redoing the other video's steps, a pre-emption
notice (SIGUSR2) that checkpoints and requeues a training, the mean table against the per-video
metrics files; and the sbatch script of a SLURM submission (fake `sbatch`, no cluster)."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import stat
import threading
import time
from pathlib import Path

import pytest
import submitit
import torch
from rich.console import Console
from typer.testing import CliRunner

from cli.batch_commands import CliConfigs
from cli.main import app
from lmf_gs.backends import get_backend
from lmf_gs.batch.jobs import BatchSpec, VideoJob, read_events, requeue_on_notice, train_step
from lmf_gs.batch.launch import ExecutorSettings, make_launcher
from lmf_gs.config import MOTION_TYPES
from lmf_gs.core.loop import LoopSettings, run_loop
from lmf_gs.data.synthetic import generate_scene
from lmf_gs.errors import LmfError
from lmf_gs.eval.udos_metric import mean_over_videos

runner = CliRunner()
ITERS = 40
TINY = ["--config", "gs_cpu", "--set", f"train.iters={ITERS}", "--set", "train.densify_from=4",
        "--set", "train.densify_every=4", "--set", "train.log_every=4",
        "--set", "model.n_static=300", "--set", "model.n_semistatic=60",
        "--set", "model.n_dynamic=60", "--set", "train.checkpoint_every=4",
        "--set", "train.holdout_every=4", "--set", "refine.iters_per_frame=2",
        "--set", "refine.min_iters=6"]
VIDS = ("SYN_A", "SYN_B")
OUTPUTS = ("gs/ckpt.pt", "gs/train_summary.json", "gs/metrics.json", "mg/metrics.json",
           "gs/refine-lmf-n0/metrics.json")


def _preempt_training(run_dir: Path, events: Path, stop: threading.Event) -> None:
    """Send SIGUSR2 (submitit's timeout/pre-emption notice) to the job once its training has
    written its first checkpoint."""
    while not stop.is_set():
        pids = [e["pid"] for e in read_events(events) if e["step"] == "train"]
        if pids and (run_dir / "ckpt.pt").is_file():
            os.kill(pids[-1], signal.SIGUSR2)
            return
        time.sleep(0.01)


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    """Call 1: SYN_B has a truncated frame (its job fails), SYN_A's training gets a pre-emption
    notice. Call 2 (after repairing the frame, with --scene all): the rest."""
    base = tmp_path_factory.mktemp("batch")
    root, out = base / "data", base / "runs"
    for k, vid in enumerate(VIDS):
        generate_scene(root, vid, n_frames=12, seed=k + 1, width=114, height=64)
    frame = sorted((root / "frames" / "SYN_B").iterdir())[5]
    good = frame.read_bytes()
    frame.write_bytes(good[: len(good) // 2])
    args = ["batch", "--data-root", str(root), "--out", str(out), "--max-parallel", "2", *TINY]

    stop = threading.Event()
    watcher = threading.Thread(target=_preempt_training, args=(
        out / "SYN_A" / "gs", out / "batch" / "steps" / "SYN_A.jsonl", stop), daemon=True)
    watcher.start()
    first = runner.invoke(app, [*args, "--scene", "SYN_A", "--scene", "SYN_B"])
    stop.set()
    mtimes = {p: (out / "SYN_A" / p).stat().st_mtime_ns for p in OUTPUTS
              if (out / "SYN_A" / p).exists()}
    assert not (out / "SYN_B").exists()  # the failed job was refused before writing anything

    frame.write_bytes(good)
    second = runner.invoke(app, [*args, "--scene", "all"])
    return out, first, second, mtimes


def test_failed_job_leaves_the_other_video_done(batches):
    out, first, _, mtimes = batches
    assert isinstance(first.exception, LmfError), first.output
    assert "1 of 2 jobs failed (SYN_B" in str(first.exception)
    assert "SYN_B: failed in train: DataError:" in first.output
    log = first.output.split("(log: ")[1].split(")")[0]
    assert log.endswith("_log.err") and Path(log).is_file()
    assert set(mtimes) == set(OUTPUTS)  # SYN_A ran the whole chain
    rows = list(csv.DictReader((out / "batch" / "per_video.csv").open()))
    assert [r["scene"] for r in rows] == ["SYN_A"] * 3
    doc = json.loads((out / "batch" / "results.json").read_text())
    assert doc["scenes"] == ["SYN_A"] and list(doc["failed"]) == ["SYN_B"]


def test_preempted_training_is_requeued_and_resumes(batches):
    out = batches[0]
    events = read_events(out / "batch" / "steps" / "SYN_A.jsonl")
    seen = [(e["attempt"], e["step"], e["event"]) for e in events]
    assert seen[:4] == [(1, "train", "start"), (1, "train", "stopped"), (1, "job", "requeued"),
                        (2, "train", "start")], seen
    assert "SIGUSR2" in events[1]["detail"]
    stopped_at = int(events[1]["detail"].split(" at step ")[1].split("/")[0])
    assert 4 <= stopped_at < ITERS
    done = next(e for e in events if e["step"] == "train" and e["event"] == "done")
    assert done["attempt"] == 2 and done["detail"].startswith(f"resumed, {ITERS} steps")
    assert events[1]["pid"] != done["pid"]  # submitit restarted the job in a new process
    log = [json.loads(line) for line in
           (out / "SYN_A" / "gs" / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == list(range(4, ITERS + 1, 4))  # no step lost or redone


def test_second_call_resumes_without_redoing_finished_steps(batches):
    out, _, second, mtimes = batches
    assert second.exit_code == 0, second.output
    events = read_events(out / "batch-2" / "steps" / "SYN_A.jsonl")
    assert [(e["step"], e["event"]) for e in events if e["event"] != "start"] == [
        ("train", "skipped"), ("refine", "skipped"), ("evaluate", "skipped")]
    assert {p: (out / "SYN_A" / p).stat().st_mtime_ns for p in OUTPUTS} == mtimes
    events = read_events(out / "batch-2" / "steps" / "SYN_B.jsonl")
    assert [e["event"] for e in events if e["event"] != "start"] == ["done"] * 3
    assert not (out / "SYN_A" / "gs" / "refine-lmf-n0-2").exists()


def test_table_is_the_mean_of_the_metrics_files(batches):
    out, _, second, _ = batches
    doc = json.loads((out / "batch-2" / "results.json").read_text())
    assert doc["scenes"] == list(VIDS) and doc["failed"] == {}
    files = {"mg": "mg/metrics.json", "trained": "gs/metrics.json",
             "refined": "gs/refine-lmf-n0/metrics.json"}
    md = (out / "batch-2" / "table.md").read_text()
    assert [r["key"] for r in doc["mean"]] == list(files)
    for row in doc["mean"]:
        maps = [json.loads((out / vid / files[row["key"]]).read_text())["map"] for vid in VIDS]
        for m in MOTION_TYPES:
            expected = mean_over_videos(math.nan if d[m] is None else d[m] for d in maps)
            assert row["map"][m] == pytest.approx(expected, abs=1e-12)
        cells = f"| {row['method']} | " + " | ".join(f"{row['map'][m]:.2f}"
                                                   for m in MOTION_TYPES) + " |"
        assert cells in md
        assert row["method"] in second.output
    assert [r["method"] for r in doc["mean"]] == ["MG (2D motion masks)", "GS", "GS + TR + LMF"]
    rows = list(csv.DictReader((out / "batch-2" / "per_video.csv").open()))
    assert [(r["scene"], r["key"]) for r in rows] == [(v, k) for v in VIDS for k in files]


def test_finished_run_under_other_settings_is_refused(batches):
    out = batches[0]
    root = out.parent / "data"
    overrides = [a for a in TINY[2:] if a != "--set"]
    spec = BatchSpec(("train",), "gs", out, CliConfigs(
        "gs_cpu", (*overrides, "train.iters=41"), root), out / "unused", Path.cwd())
    before = (out / "SYN_A" / "gs" / "ckpt.pt").stat().st_mtime_ns
    with pytest.raises(LmfError, match=r"other settings than this batch.*train.iters: 40 vs 41"):
        train_step(get_backend("gs"), "SYN_A", spec, Console())
    assert (out / "SYN_A" / "gs" / "ckpt.pt").stat().st_mtime_ns == before


class Counter:
    """A stand-in optimiser for `run_loop`: 2 ms per step, 10,000 steps."""

    def __init__(self) -> None:
        self.step, self.iters, self.elapsed = 0, 10_000, 0.0
        self.settings = LoopSettings(log_every=10**9, checkpoint_every=10**9)

    def iteration(self) -> dict[str, torch.Tensor]:
        time.sleep(0.002)
        self.step += 1
        return {"loss": torch.zeros(()), "psnr": torch.zeros(())}

    def state_dict(self) -> dict:
        return {"step": self.step}


@pytest.fixture
def fake_submitit(monkeypatch):
    """A submitit job's environment whose requeue handler records its calls and exits."""
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "local")
    calls: list[int] = []

    def requeue(signum: int, frame: object) -> None:
        calls.append(signum)
        raise SystemExit(144)

    old = signal.signal(signal.SIGUSR2, requeue)
    yield calls
    signal.signal(signal.SIGUSR2, old)


def test_notice_between_steps_waits_for_the_boundary(fake_submitit):
    with pytest.raises(SystemExit), requeue_on_notice() as at_boundary:
        os.kill(os.getpid(), signal.SIGUSR2)
        time.sleep(0.2)
        assert fake_submitit == []  # no file write is cut short
        at_boundary()
    assert fake_submitit == [signal.SIGUSR2]


def test_notice_before_a_loop_stops_it_with_a_checkpoint(fake_submitit):
    saved: list[dict] = []
    with pytest.raises(SystemExit), requeue_on_notice():
        os.kill(os.getpid(), signal.SIGUSR2)
        run_loop(Counter(), None, saved.append, "test loop")
    assert fake_submitit == [signal.SIGUSR2]
    assert len(saved) == 1 and 0 < saved[0]["step"] < 10_000


def test_slurm_array_submission(tmp_path, monkeypatch):
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir()
    record.mkdir()
    (bin_dir / "sbatch").write_text(
        f'#!/bin/sh\necho "$@" >> {record}/args\ncp "$1" {record}/script.sh\n'
        'echo "Submitted batch job 123"\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IXUSR)

    args = ["batch", "--scene", "X", "--executor", "slurm", "--out", str(tmp_path / "runs"),
            "--data-root", str(tmp_path)]
    res = runner.invoke(app, args)
    assert isinstance(res.exception, LmfError) and "epic_fields/X.json" in str(res.exception)
    (tmp_path / "epic_fields").mkdir()
    (tmp_path / "epic_fields" / "X.json").write_text("{}")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    res = runner.invoke(app, args)
    assert isinstance(res.exception, LmfError) and "no `srun` on PATH" in str(res.exception)
    assert not (tmp_path / "runs" / "batch").exists()  # nothing left behind
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.defpath}")
    settings = ExecutorSettings("slurm", tmp_path / "logs", max_parallel=1, timeout_min=90,
                                gpus_per_job=1, partition="gpu", cpus_per_task=4, mem_gb=16)
    spec = BatchSpec(("train", "refine"), "gs", tmp_path / "runs",
                     CliConfigs(None, (), tmp_path), tmp_path / "steps", tmp_path)
    jobs = make_launcher(settings).submit_ready([VideoJob(v, spec) for v in VIDS])
    assert [j.job_id for j in jobs] == ["123_0", "123_1"]
    script = (record / "script.sh").read_text()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1", "#SBATCH --time=90",
                 "#SBATCH --array=0-1%1", "#SBATCH --cpus-per-task=4", "#SBATCH --mem=16GB",
                 "#SBATCH --signal=USR2@90", "#SBATCH --job-name=lmf-gs-batch",
                 "export SUBMITIT_EXECUTOR=slurm"):
        assert line in script.splitlines(), line
    command = script.strip().splitlines()[-1]
    assert command.startswith("srun --unbuffered --output")
    assert f"-u -m submitit.core._submit {tmp_path / 'logs'}" in command
    assert (record / "args").read_text().split()[0].endswith(".sh")
    for job, vid in zip(jobs, VIDS, strict=True):
        submitted = submitit.helpers.DelayedSubmission.load(job.paths.submitted_pickle)
        assert isinstance(submitted.function, VideoJob) and submitted.function.vid == vid
        assert submitted.function.spec.steps == ("train", "refine")
