"""Training with densification, then TR + LMF, on each device: the CPU with the torch rasteriser
and, where CUDA exists, the GPU with gsplat (the design's main path; skipped without CUDA).

The data root is hand-built (conftest.make_tiny_root), so the test needs no open3d and runs on
the GPU machine as it is (benchmarks/gpu_check.sh).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import make_tiny_root
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA"))]
# every step from 2 on densifies (no gradient threshold), so the sets grow during training
TINY = ["--config", "gs_cpu", "--set", "render.backend=auto", "--set", "train.iters=12",
        "--set", "train.warmup=2", "--set", "train.densify_from=2",
        "--set", "train.densify_every=2", "--set", "train.grad_threshold=0.0",
        "--set", "train.grow_fraction=0.5", "--set", "train.log_every=2",
        "--set", "train.checkpoint_every=100", "--set", "train.holdout_every=3",
        "--set", "model.n_static=200", "--set", "model.n_semistatic=50",
        "--set", "model.n_dynamic=50"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("device", DEVICES)
def test_train_densify_and_refine(tmp_path, device):
    tiny = make_tiny_root(tmp_path / "data", n=8)
    out = tmp_path / "runs"
    where = ["--data-root", str(tiny.root), "--out", str(out)]
    res = runner.invoke(app, ["train", "--scene", tiny.vid, *where, *TINY,
                              "--set", f"render.device={device}"])
    assert res.exit_code == 0, res.output
    assert f"device {device}" in res.output
    run = out / tiny.vid / "gs"
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    first, last = log[0]["gaussians"], log[-1]["gaussians"]
    assert any(last[k] > first[k] for k in first), (first, last)  # densification grew a set
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["steps"] == 12 and summary["gaussians"] == last
    assert math.isfinite(summary["psnr_heldout"])
    before = torch.load(run / "ckpt.pt", weights_only=False)["model"]
    assert all(torch.isfinite(v).all() for v in before.values() if v.is_floating_point())

    res = runner.invoke(app, ["refine", "--scene", tiny.vid, *where,
                              "--set", "refine.iters_per_frame=3", "--set", "refine.min_iters=6",
                              "--set", f"render.device={device}"])
    assert res.exit_code == 0, res.output
    refine_dir = run / "refine-lmf-n0"
    refined = torch.load(refine_dir / "refined.pt", weights_only=False)["model"]
    static = [k for k in before if k.startswith("sets.static.")]
    assert static and all(torch.equal(refined[k], before[k]) for k in static)
    assert any(not torch.equal(refined[k], before[k]) for k in before
               if k.startswith("sets.dynamic."))
    doc = json.loads((refine_dir / "metrics.json").read_text())
    assert doc["frames"] == len(tiny.test_frames) and doc["seconds_per_frame"] > 0
    stem = tiny.test_frames[0].rsplit(".", 1)[0]
    assert (refine_dir / "masks" / f"{stem}_dynamic.png").is_file()
