"""NeuralDiff backend end to end on a tiny synthetic video: train -> refine -> evaluate,
ablate."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from lmf_gs.backends.nerf import NerfBackend
from lmf_gs.config import load_config
from lmf_gs.core.runs import RunDir, load_checkpoint
from lmf_gs.data.scene import Scene
from lmf_gs.data.synthetic import generate_scene
from lmf_gs.experiments.evaluate import evaluate_scene, trained_predictor
from lmf_gs.experiments.refine import refine_backend, refine_run
from lmf_gs.experiments.train import train_run
from lmf_gs.nerf.model import MODULES

TINY = ["render.device=cpu", "nerf.width=16", "nerf.depth=4", "nerf.skips=[2]",
        "nerf.appearance_dim=4", "nerf.coarse_samples=8", "nerf.fine_samples=8",
        "nerf.batch_rays=64", "nerf.chunk=2048", "nerf.iters=8", "nerf.log_every=4",
        "nerf.checkpoint_every=4", "train.holdout_every=4", "refine.iters_per_frame=2",
        "refine.min_iters=4"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("nerf")
    root = base / "data"
    generate_scene(root, "SYN_T", n_frames=12, seed=3, width=114, height=64)
    cfg = load_config("nerf_cpu", [*TINY, f"data.root={root}"])
    run = base / "runs" / "SYN_T" / "nerf"
    summary = train_run(NerfBackend, "SYN_T", cfg, RunDir(run))
    return cfg, run, summary


def test_train_writes_run_dir_and_resumes(trained):
    cfg, run, summary = trained
    for name in ("config.yaml", "ckpt.pt", "train_log.jsonl", "train_summary.json"):
        assert (run / name).is_file(), name
    assert summary["steps"] == 8 and summary["heldout_frames"] > 0
    assert np.isfinite(summary["psnr_heldout"])
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [4, 8]
    more = cfg.model_copy(update={"nerf": cfg.nerf.model_copy(update={"iters": 12})})
    resumed = train_run(NerfBackend, "SYN_T", more, RunDir(run, resume=True))
    ckpt = load_checkpoint(run)
    assert resumed["steps"] == ckpt["step"] == 12
    assert resumed["seconds"] == ckpt["elapsed"] > summary["seconds"]  # summed over resumes


def test_time_budget_stops_training(trained, tmp_path):
    cfg, _, _ = trained
    short = cfg.model_copy(update={"nerf": cfg.nerf.model_copy(
        update={"iters": 10_000, "max_seconds": 0.0})})
    run = tmp_path / "nerf"
    summary = train_run(NerfBackend, "SYN_T", short, RunDir(run))
    assert summary["steps"] == 0 and summary["iters"] == 10_000
    assert (run / "ckpt.pt").is_file()  # stopped and checkpointed


def test_refine_and_evaluate(trained):
    cfg, run, _ = trained
    scene = Scene("SYN_T", cfg.data)
    before, _ = NerfBackend.load(run, scene, cfg)
    res = refine_run(NerfBackend, "SYN_T", cfg, run, None, "lmf", 0)
    assert res.run_dir.name == "refine-lmf-n0" and res.metrics.frame_count == len(res.frames)
    doc = json.loads((res.run_dir / "metrics.json").read_text())
    assert doc["method"] == "nerf+tr-lmf" and doc["seconds_per_frame"] > 0
    stem = res.frames[0].rsplit(".", 1)[0]
    mask = np.load(res.run_dir / "masks" / f"{stem}_dynamic.npy")
    assert mask.shape == (64, 114) and (mask >= 0).all()
    refined = torch.load(res.run_dir / "refined.pt", weights_only=False)["model"]
    for k, v in before.state_dict().items():
        if k.split(".")[0] in ("coarse", "fine", "appearance"):
            assert torch.equal(refined[k], v), k
    predict, extra = trained_predictor(NerfBackend, run, scene, cfg)
    result = evaluate_scene("SYN_T", "nerf", cfg, lambda: predict)
    assert set(result.map) == {"dynamic", "semistatic", "dynamic_semistatic"}
    assert extra["psnr_heldout"] is not None and extra["checkpoint_step"] >= 8


def test_ablate_cli(trained):
    cfg, run, _ = trained
    res = CliRunner().invoke(app, [
        "ablate", "--backend", "nerf", "--scene", "SYN_T", "--data-root", str(cfg.data.root),
        "--out", str(run.parent.parent), "--neighbors", "1",
        "--set", "refine.iters_per_frame=1", "--set", "refine.min_iters=2"])
    assert res.exit_code == 0, res.output
    rows = json.loads((run / "ablate" / "ablation.json").read_text())
    fused = ["", " + NMF", " + PMF", " + PMF + NMF"]
    assert [r["method"] for r in rows] == [
        "2D motion masks (MG)", "NeRF", *(f"NeRF{f}" for f in fused[1:]),
        *(f"NeRF + TR{f}" for f in fused), "NeRF + TR-1 + PMF + NMF"]
    assert all(r["seconds_per_frame"] > 0 for r in rows if "TR" in r["method"])
    assert all(r["seconds_per_frame"] is None for r in rows if "TR" not in r["method"])
    # the base row is the trained run as `evaluate --method nerf` scores it
    predict, _ = trained_predictor(NerfBackend, run, Scene("SYN_T", cfg.data), cfg)
    base = evaluate_scene("SYN_T", "nerf", cfg, lambda: predict).map
    assert rows[1]["map"] == pytest.approx(base, nan_ok=True)


def test_ablation_tr_moves_only_non_static_copy(trained):
    cfg, run, _ = trained
    base, _ = NerfBackend.load(run, Scene("SYN_T", cfg.data), cfg)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    model = base.copy()
    assert refine_backend(model, [0, 1], "lmf") > 0
    after = model.state_dict()
    for k, v in before.items():
        assert torch.equal(base.state_dict()[k], v), k  # the base is never touched
        if k.split(".")[0] in MODULES["static"]:
            assert torch.equal(after[k], v), k
    assert any(not torch.equal(after[k], v) for k, v in before.items()
               if k.startswith("dynamic."))


def test_train_cli_with_nerf_backend(trained, tmp_path):
    cfg, _, _ = trained
    sets = [a for kv in TINY for a in ("--set", kv)]
    res = CliRunner().invoke(app, ["train", "--backend", "nerf", "--scene", "SYN_T",
                                   "--data-root", str(cfg.data.root), "--out", str(tmp_path),
                                   "--config", "nerf_cpu", *sets])
    assert res.exit_code == 0, res.output
    assert "parameters" in res.output
    assert (tmp_path / "SYN_T" / "nerf" / "ckpt.pt").is_file()
