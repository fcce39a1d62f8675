"""`lmf-gs train` / `refine` / `evaluate --method gs` end to end on a tiny synthetic video."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cli.main import app
from lmf_gs.core.runs import load_checkpoint
from lmf_gs.data.synthetic import generate_scene

runner = CliRunner()
TINY = ["--config", "gs_cpu", "--set", "train.iters=12", "--set", "train.densify_from=4",
        "--set", "train.densify_every=4", "--set", "train.log_every=4",
        "--set", "model.n_static=300", "--set", "model.n_semistatic=60",
        "--set", "model.n_dynamic=60", "--set", "train.checkpoint_every=6",
        "--set", "train.holdout_every=4"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("tr")
    root, out = base / "data", base / "runs"
    generate_scene(root, "SYN_T", n_frames=12, seed=3, width=114, height=64)
    res = runner.invoke(app, ["train", "--scene", "SYN_T", "--data-root", str(root),
                              "--out", str(out), *TINY])
    assert res.exit_code == 0, res.output
    return root, out


def test_train_writes_run_dir(trained):
    _, out = trained
    run = out / "SYN_T" / "gs"
    for name in ("config.yaml", "ckpt.pt", "train_log.jsonl", "train_summary.json"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["iters"] == 12 and summary["heldout_frames"] > 0
    assert np.isfinite(summary["psnr_heldout"])
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [4, 8, 12]


def test_train_refuses_to_overwrite_and_resumes(trained):
    root, out = trained
    summary_path = out / "SYN_T" / "gs" / "train_summary.json"
    first = json.loads(summary_path.read_text())["seconds"]
    res = runner.invoke(app, ["train", "--scene", "SYN_T", "--data-root", str(root),
                              "--out", str(out), *TINY])
    assert res.exit_code != 0 and "already holds a run" in str(res.exception)
    res = runner.invoke(app, ["train", "--scene", "SYN_T", "--data-root", str(root),
                              "--out", str(out), "--resume", "--set", "train.iters=16"])
    assert res.exit_code == 0, res.output
    ckpt = load_checkpoint(out / "SYN_T" / "gs")
    assert ckpt["step"] == 16
    assert ckpt["elapsed"] > first  # training time adds up over resumes
    assert json.loads(summary_path.read_text())["seconds"] == ckpt["elapsed"]


def test_evaluate_gs_scores_layer_masks(trained):
    root, out = trained
    res = runner.invoke(app, ["evaluate", "--scene", "SYN_T", "--method", "gs",
                              "--data-root", str(root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "SYN_T" / "gs" / "metrics.json").read_text())
    assert doc["method"] == "gs" and set(doc["map"]) == {"dynamic", "semistatic",
                                                         "dynamic_semistatic"}
    assert doc["psnr_heldout"] is not None and doc["checkpoint_step"] >= 12


def test_refine_freezes_static_and_never_overwrites(trained):
    root, out = trained
    before = load_checkpoint(out / "SYN_T" / "gs")["model"]
    args = ["refine", "--scene", "SYN_T", "--data-root", str(root), "--out", str(out),
            "--set", "refine.iters_per_frame=2", "--set", "refine.min_iters=6"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    run = out / "SYN_T" / "gs" / "refine-lmf-n0"
    refined = torch.load(run / "refined.pt", weights_only=False)["model"]
    static = [k for k in before if k.startswith("sets.static.")]
    assert static
    for k in static:
        assert torch.equal(refined[k], before[k]), k  # bit-identical
    changed = [k for k in before if k.startswith("sets.dynamic.")
               and not torch.equal(refined[k], before[k])]
    assert changed  # the dynamic set did move
    doc = json.loads((run / "metrics.json").read_text())
    frames = json.loads((root / "udos/split/test.json").read_text())["SYN_T"]["within_action"]
    assert doc["frames"] == len(frames) and doc["seconds_per_frame"] > 0
    stem = frames[0].rsplit(".", 1)[0]
    png = np.asarray(Image.open(run / "masks" / f"{stem}_dynamic.png"))
    npy = np.load(run / "masks" / f"{stem}_semistatic.npy")
    assert png.shape == npy.shape == (64, 114)  # GT resolution
    res = runner.invoke(app, [*args, "--frames", ",".join(frames[:1]), "--neighbors", "1"])
    assert res.exit_code == 0, res.output
    assert (out / "SYN_T" / "gs" / "refine-lmf-n1").is_dir()
    res = runner.invoke(app, args)
    assert (out / "SYN_T" / "gs" / "refine-lmf-n0-2").is_dir()  # the first one is kept


def test_refine_without_training_is_one_line_error(tmp_path):
    res = runner.invoke(app, ["refine", "--scene", "NOPE", "--data-root", str(tmp_path),
                              "--out", str(tmp_path)])
    assert res.exit_code != 0 and "no checkpoint" in str(res.exception)


def test_ablate_and_report_tables(trained):
    root, out = trained
    res = runner.invoke(app, ["ablate", "--scene", "SYN_T", "--data-root", str(root),
                              "--out", str(out), "--neighbors", "1",
                              "--set", "refine.iters_per_frame=1", "--set", "refine.min_iters=3"])
    assert res.exit_code == 0, res.output
    folder = out / "SYN_T" / "gs" / "ablate"
    rows = json.loads((folder / "ablation.json").read_text())
    names = [r["method"] for r in rows]
    assert names[:2] == ["2D motion masks (MG)", "GS"]
    for name in ("GS + TR + PMF + NMF", "GS + PMF", "GS + TR-1 + PMF + NMF"):
        assert name in names
    assert len(rows) == 2 + 3 + 4 + 1
    tr = next(r for r in rows if r["method"] == "GS + TR + NMF")
    assert tr["seconds_per_frame"] > 0 and set(tr["map"]) == {"dynamic", "semistatic",
                                                              "dynamic_semistatic"}
    md = (folder / "ablation.md").read_text()
    assert md.count("\n") == len(rows) + 2 and "%" in md
    res = runner.invoke(app, ["report", "--scene", "SYN_T", "--out", str(out)])
    assert res.exit_code == 0 and "gs/refine-lmf-n0" in res.output


def test_refinement_learning_rates(trained):
    """TR optimises the semi-static and dynamic sets only, at refine.lr_scale x the training
    learning rates (networks and readout alike), the semi-static set further x
    semistatic_lr_scale."""
    from lmf_gs.backends.gaussian import GaussianBackend
    from lmf_gs.config import load_config
    from lmf_gs.data.scene import Scene

    root, out = trained
    cfg = load_config(out / "SYN_T" / "gs" / "config.yaml",
                      [f"data.root={root}", "refine.lr_scale=0.3",
                       "refine.semistatic_lr_scale=0.5"])
    backend, _ = GaussianBackend.load(out / "SYN_T" / "gs", Scene("SYN_T", cfg.data), cfg)
    opt = backend.refinement([0, 1], "lmf")
    t = cfg.train
    assert set(opt.set_opts) == {"semistatic", "dynamic"}
    dyn, ss = opt.set_opts["dynamic"], opt.set_opts["semistatic"]
    assert dyn["opacities"].param_groups[0]["lr"] == pytest.approx(t.lr_opacities * 0.3)
    assert dyn["readout"].param_groups[0]["lr"] == pytest.approx(t.lr_readout * 0.3)
    assert ss["opacities"].param_groups[0]["lr"] == pytest.approx(t.lr_opacities * 0.3 * 0.5)
    nets = {g["layer"]: g["lr"] for g in opt.net_opt.param_groups}
    assert nets == pytest.approx({"dynamic": t.lr_networks * 0.3,
                                  "semistatic": t.lr_networks * 0.3 * 0.5})
