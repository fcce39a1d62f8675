"""`lmf-gs compare`: both backends trained, refined and measured on one tiny video."""

import json

import numpy as np
import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from cli.main import app
from lmf_gs.backends.gaussian import GaussianBackend
from lmf_gs.config import load_config
from lmf_gs.data.synthetic import generate_scene
from lmf_gs.experiments.compare import PeakMemory, apply_budget
from lmf_gs.train.trainer import resolved_schedule

runner = CliRunner()
TINY_GS = ["train.densify_from=4", "train.densify_every=4", "train.log_every=4",
           "model.n_static=300", "model.n_semistatic=60", "model.n_dynamic=60",
           "train.checkpoint_every=6"]
TINY_NERF = ["nerf.width=16", "nerf.depth=4", "nerf.skips=[2]", "nerf.appearance_dim=4",
             "nerf.coarse_samples=8", "nerf.fine_samples=8", "nerf.batch_rays=64",
             "nerf.chunk=2048", "nerf.log_every=4"]
COMMON = ["train.holdout_every=4", "refine.iters_per_frame=2", "refine.min_iters=4",
          "data.downscale=1"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp") / "data"
    generate_scene(root, "SYN_T", n_frames=12, seed=3, width=114, height=64)
    return root


def _sets(items):
    return [a for s in items for a in ("--set", s)]


def test_compare_prints_both_backends_and_mg(data, tmp_path):
    out = tmp_path / "runs"
    args = ["compare", "--scene", "SYN_T", "--data-root", str(data), "--out", str(out),
            "--gs-config", "gs_cpu", "--nerf-config", "nerf_cpu", "--iters", "6",
            *_sets([*TINY_GS, *TINY_NERF, *COMMON])]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    folder = out / "SYN_T" / "compare"
    doc = json.loads((folder / "comparison.json").read_text())
    assert doc["budget"] == {"mode": "iterations", "iters": 6}
    assert [r["backend"] for r in doc["rows"]] == ["gs", "nerf"]
    for r in doc["rows"]:
        assert r["train_steps"] == 6 and r["render_ms"] > 0 and r["refine_seconds_per_frame"] > 0
        assert r["resolution"] == "114x64" and np.isfinite(r["peak_memory_mb"])
        assert set(r["map"]) == {"dynamic", "semistatic", "dynamic_semistatic"}
    assert (folder / "gs" / "refine-lmf-n0" / "metrics.json").is_file()
    assert (folder / "nerf" / "refine-lmf-n0" / "metrics.json").is_file()
    md = (folder / "comparison.md").read_text()
    for label in ("2D motion masks (MG)", "GS + TR + LMF", "NeRF + TR + LMF", "render ms/frame"):
        assert label in md
    assert "GS vs NeRF: render" in res.output and "GS vs NeRF: render" in md
    # the existing runs can be measured again without training, into compare-2
    (out / "SYN_T" / "gs").symlink_to(folder / "gs")
    (out / "SYN_T" / "nerf").symlink_to(folder / "nerf")
    res = runner.invoke(app, ["compare", "--scene", "SYN_T", "--data-root", str(data),
                              "--out", str(out), "--reuse"])
    assert res.exit_code == 0, res.output
    again = json.loads((out / "SYN_T" / "compare-2" / "comparison.json").read_text())
    assert [r["train_steps"] for r in again["rows"]] == [6, 6]


def test_compare_refuses_mismatched_frames_and_budgets(data, tmp_path):
    base = ["compare", "--scene", "SYN_T", "--data-root", str(data), "--out", str(tmp_path)]
    res = runner.invoke(app, [*base, "--iters", "3", "--budget-s", "5"])
    assert res.exit_code != 0 and "exclude each other" in str(res.exception)
    other = tmp_path / "other.yaml"
    other.write_text("train: {holdout_every: 3}\n")
    res = runner.invoke(app, [*base, "--gs-config", "gs_cpu", "--nerf-config", str(other)])
    assert res.exit_code != 0 and "must see the same frames" in str(res.exception)
    assert not (tmp_path / "SYN_T").exists()  # refused before anything was written


def test_gs_schedule_scales_with_iterations():
    cfg = load_config("gs_cpu")
    half = GaussianBackend.budgeted(cfg, cfg.train.iters // 2)
    assert half.train.iters == cfg.train.iters // 2
    full, part = resolved_schedule(cfg.train, 100), resolved_schedule(half.train, 100)
    assert (full.iters, full.densify_until, full.reset_opacity_every) == (1500, 1200, 1000)
    assert part.densify_until == round(full.densify_until / 2)
    assert part.reset_opacity_every == round(full.reset_opacity_every / 2)
    assert part.densify_every == full.densify_every
    ints = cfg.model_copy(update={"train": cfg.train.model_copy(update={"warmup": 500})})
    assert GaussianBackend.budgeted(ints, 750).train.warmup == 250  # iteration counts scale


def test_peak_memory_sees_an_allocation():
    with PeakMemory(torch.device("cpu")) as mem:
        x = torch.ones(64, 2**20)  # 256 MiB
        x += 1
        del x
    assert mem.mb > 128


def test_budget_gives_each_backend_the_iterations_its_speed_allows(data):
    sets = [f"data.root={data}", *TINY_GS, *TINY_NERF, *COMMON]
    gs, nerf = load_config("gs_cpu", sets), load_config("nerf_cpu", sets)
    gs2, nerf2, budget = apply_budget("SYN_T", gs, nerf, None, 3.0, Console(quiet=True))
    assert budget["mode"] == "seconds" and budget["gs_seconds_per_iter"] > 0
    assert gs2.train.max_seconds == 3.0 and nerf2.nerf.max_seconds == 3.0
    assert gs2.train.iters == max(1, int(3.0 / budget["gs_seconds_per_iter"]))
    assert nerf2.nerf.iters == max(1, int(3.0 / budget["nerf_seconds_per_iter"]))
