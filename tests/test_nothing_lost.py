"""Nothing lost, nothing half-done (issue 12): validation before any change on disk, safe
--overwrite, Ctrl-C that checkpoints and resumes to the same result, results beside (not over)
earlier ones, one-line errors, no stub folders."""

import json
import shutil
import signal
import sys

import pytest
import torch
from PIL import Image

from cli.main import main
from lmf_gs.data.synthetic import generate_scene
from lmf_gs.train.trainer import Optimisation

VID = "SYN_T"
TINY = ["--config", "gs_cpu", "--set", "train.iters=12", "--set", "train.densify_from=4",
        "--set", "train.densify_every=4", "--set", "train.log_every=4",
        "--set", "model.n_static=300", "--set", "model.n_semistatic=60",
        "--set", "model.n_dynamic=60", "--set", "train.checkpoint_every=100",
        "--set", "train.holdout_every=4", "--set", "train.warmup=2"]
REFINE = ["--set", "refine.iters_per_frame=2", "--set", "refine.min_iters=8"]

pytestmark = pytest.mark.usefixtures("one_thread")


def lmf(capsys, *args) -> tuple[int, str]:
    """Run the CLI as a user does; returns (exit code, stderr)."""
    argv = sys.argv
    sys.argv = ["lmf-gs", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code or 0
    finally:
        sys.argv = argv
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("lost") / "data"
    generate_scene(root, VID, n_frames=12, seed=3, width=114, height=64)
    return root


@pytest.fixture
def trained(root, tmp_path, capsys):
    out = tmp_path / "runs"
    code, err = lmf(capsys, "train", "--scene", VID, "--data-root", root, "--out", out, *TINY)
    assert code == 0, err
    return out


def interrupt_at(monkeypatch, cls, step):
    """Send SIGINT to this process once ``cls`` has done ``step`` iterations."""
    original = cls.iteration

    def iteration(self):
        logs = original(self)
        if self.step == step:
            signal.raise_signal(signal.SIGINT)
        return logs

    monkeypatch.setattr(cls, iteration.__name__, iteration)


def model_state(path):
    return torch.load(path, weights_only=False)["model"]


def test_overwrite_with_bad_input_keeps_the_run(root, trained, capsys):
    run = trained / VID / "gs"
    before = sorted(p.name for p in run.iterdir())
    (run / "refine-lmf-n0").mkdir()  # a result that must survive
    for bad in (["--set", "train.iterz=5"], ["--set", "train.iters=-5"],
                ["--set", "render.device=cpuu"]):
        code, err = lmf(capsys, "train", "--scene", VID, "--data-root", root, "--out", trained,
                        "--overwrite", *bad)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
    code, err = lmf(capsys, "train", "--scene", VID, "--data-root", root / "typo", "--out",
                    trained, "--overwrite")
    assert code == 2 and "typo" in err
    assert sorted(p.name for p in run.iterdir()) == sorted([*before, "refine-lmf-n0"])


def test_overwrite_keeps_the_old_run_as_previous(root, trained, capsys):
    run = trained / VID / "gs"
    old = model_state(run / "ckpt.pt")
    code, err = lmf(capsys, "train", "--scene", VID, "--data-root", root, "--out", trained,
                    "--overwrite", *TINY, "--set", "train.seed=1")
    assert code == 0, err
    kept = run.with_name("gs.previous")
    assert all(torch.equal(v, model_state(kept / "ckpt.pt")[k]) for k, v in old.items())
    assert not torch.equal(old["sets.dynamic.means"], model_state(run / "ckpt.pt")[
        "sets.dynamic.means"])


def test_ctrl_c_checkpoints_and_resume_matches_an_uninterrupted_run(
        root, trained, tmp_path, capsys, monkeypatch):
    out = tmp_path / "again"
    interrupt_at(monkeypatch, Optimisation, 5)
    code, err = lmf(capsys, "train", "--scene", VID, "--data-root", root, "--out", out, *TINY)
    assert code == 130 and "SIGINT at step 5/12" in err and "resume" in err
    assert torch.load(out / VID / "gs" / "ckpt.pt", weights_only=False)["step"] == 5
    monkeypatch.undo()
    code, err = lmf(capsys, "train", "--scene", VID, "--data-root", root, "--out", out,
                    "--resume")
    assert code == 0, err
    a, b = model_state(trained / VID / "gs" / "ckpt.pt"), model_state(out / VID / "gs" /
                                                                       "ckpt.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_refine_resumes_after_ctrl_c_to_the_same_masks(root, trained, capsys, monkeypatch):
    where = ["--scene", VID, "--data-root", root, "--out", trained]
    code, err = lmf(capsys, "refine", *where, *REFINE)
    assert code == 0, err
    done = trained / VID / "gs" / "refine-lmf-n0"
    reference = json.loads((done / "metrics.json").read_text())["map"]
    (done / "metrics.json").rename(done / "reference.json")  # make room: run it again, stopped
    shutil.move(done, done.with_name("reference"))
    interrupt_at(monkeypatch, Optimisation, 3)
    code, err = lmf(capsys, "refine", *where, *REFINE)
    assert code == 130 and "checkpoint saved" in err
    assert (done / "ckpt.pt").is_file() and not (done / "metrics.json").exists()
    monkeypatch.undo()
    code, err = lmf(capsys, "refine", *where, *REFINE)  # the same command resumes
    assert code == 0, err
    assert not done.with_name("refine-lmf-n0-2").exists()
    assert json.loads((done / "metrics.json").read_text())["map"] == reference
    a, b = model_state(done / "refined.pt"), model_state(done.with_name("reference") /
                                                         "refined.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_run_stopped_before_its_first_checkpoint_restarts(root, tmp_path, capsys):
    out = tmp_path / "runs"
    run = out / VID / "gs"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("{}\n")  # what a run writes before its first checkpoint
    code, err = lmf(capsys, "train", "--scene", VID, "--data-root", root, "--out", out,
                    "--resume")
    assert code == 2 and "without --resume to restart" in err
    code, err = lmf(capsys, "train", "--scene", VID, "--data-root", root, "--out", out, *TINY)
    assert code == 0, err
    assert (run / "ckpt.pt").is_file()


def test_evaluate_under_other_settings_writes_beside(root, trained, capsys):
    where = ["--scene", VID, "--data-root", root, "--out", trained, "--method", "gs"]
    assert lmf(capsys, "evaluate", *where)[0] == 0
    first = (trained / VID / "gs" / "metrics.json").read_text()
    assert lmf(capsys, "evaluate", *where, "--set", "data.downscale=1")[0] == 0
    assert (trained / VID / "gs" / "metrics.json").read_text() == first
    beside = list((trained / VID / "gs").glob("metrics-*.json"))
    assert len(beside) == 1
    assert json.loads(beside[0].read_text())["settings"]["downscale"] == 1
    code = lmf(capsys, "report", "--scene", "all", "--out", trained)[0]
    assert code == 0


def test_one_line_errors_and_no_stub_folders(root, tmp_path, capsys):
    out = tmp_path / "runs"
    code, err = lmf(capsys, "synth", tmp_path / "s", "--frames", 3)
    assert code == 2 and "at least" in err and len(err.strip().splitlines()) == 1
    code, err = lmf(capsys, "train", "--scene", "P03_04", "--data-root", root, "--out", out)
    assert code == 2 and "P03_04" in err
    assert not (out / "P03_04").exists()
    code, err = lmf(capsys, "refine", "--scene", VID, "--data-root", root, "--out", out)
    assert code == 2 and not (out / VID / "gs").exists()


def test_corrupt_frame_and_wrong_size_mask_fail_before_anything(root, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(root, data)
    frames = sorted((data / "frames" / VID).glob("*.jpg"))
    frames[7].write_bytes(frames[7].read_bytes()[:200])  # a truncated JPEG
    out = tmp_path / "runs"
    code, err = lmf(capsys, "train", "--scene", VID, "--data-root", data, "--out", out, *TINY)
    assert code == 2 and frames[7].name in err
    assert not (out / VID).exists()
    shutil.copy(root / "frames" / VID / frames[7].name, frames[7])
    split = json.loads((data / "udos/split/test.json").read_text())[VID]["within_action"]
    mask = data / "motion_masks" / VID / split[0].replace(".jpg", ".png")
    Image.new("L", (50, 30)).save(mask)
    code, err = lmf(capsys, "evaluate", "--scene", VID, "--data-root", data, "--out", out)
    assert code == 2 and mask.name in err and "does not match the camera" in err
