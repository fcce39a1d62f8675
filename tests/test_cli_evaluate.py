"""`lmf-gs evaluate --method mg` end to end, against an independent reading of the protocol."""

import json

import numpy as np
import pytest
from conftest import make_tiny_root
from PIL import Image
from sklearn.metrics import average_precision_score
from typer.testing import CliRunner

from cli.main import app, main

runner = CliRunner()


def independent_map(root, vid, motion):
    """The official evaluator's logic, written out plainly."""
    split = json.loads((root / "udos/split/test.json").read_text())[vid]["within_action"]
    aps = []
    for frame in split:
        png = frame.replace(".jpg", ".png")
        gt_path = root / f"udos/annotations/test_{motion}/{vid}/{png}"
        gt = np.array(Image.open(gt_path)).astype(float)
        if gt.max() == 255:
            gt = gt / 255
        if motion == "dynamic":
            valid, keep = gt, np.ones_like(gt, bool)
        elif motion == "semistatic":
            valid, keep = gt == 1, gt != 2
        else:
            valid, keep = (gt == 1) | (gt == 3), gt != 2
        if valid.sum() == 0:
            continue
        pred = np.array(Image.open(root / f"motion_masks/{vid}/{png}")) / 255
        aps.append(100 * average_precision_score(valid[keep].reshape(-1), pred[keep].reshape(-1)))
    return float(np.mean(aps))


def test_evaluate_mg_matches_independent_protocol(tmp_path):
    t = make_tiny_root(tmp_path / "data")
    out = tmp_path / "runs"
    res = runner.invoke(app, ["evaluate", "--scene", t.vid, "--method", "mg",
                              "--data-root", str(t.root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / t.vid / "mg" / "metrics.json").read_text())
    assert doc["scene"] == t.vid and doc["method"] == "mg" and doc["split"] == "within_action"
    for motion in ("dynamic", "semistatic", "dynamic_semistatic"):
        assert doc["map"][motion] == pytest.approx(independent_map(t.root, t.vid, motion), abs=1e-4)
        assert doc["frames"][motion]["scored"] == len(t.test_frames)
        assert set(doc["per_frame"][motion]) == set(t.test_frames)
    assert (out / t.vid / "mg" / "eval_config.yaml").exists()
    assert "mAP Dyn" in res.output


def test_evaluate_several_scenes_and_all(tmp_path):
    a = make_tiny_root(tmp_path / "data", vid="P90_01", seed=1)
    make_tiny_root(tmp_path / "data", vid="P91_02", seed=2)
    out = tmp_path / "runs"
    res = runner.invoke(app, ["evaluate", "--scene", "all", "--data-root", str(a.root),
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary_mg.json").read_text())
    assert summary["scenes"] == ["P90_01", "P91_02"]
    per = [independent_map(a.root, v, "dynamic") for v in ("P90_01", "P91_02")]
    assert summary["map"]["dynamic"] == pytest.approx(np.mean(per), abs=1e-4)
    assert "mean" in res.output


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: (t.root / "udos/split/test.json").unlink(), "UDOS split file not found"),
        (lambda t: (t.root / "udos/split/test.json").write_text("{oops"), "malformed JSON"),
        (lambda t: (t.root / "motion_masks" / t.vid / t.test_frames[0].replace(".jpg", ".png"))
         .unlink(), "no 2D motion mask for P90_01/"),
        (lambda t: (t.root / "udos/annotations/test_semistatic" / t.vid /
                    t.test_frames[0].replace(".jpg", ".png")).unlink(), "file not found"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, monkeypatch, capsys, mutate, message):
    t = make_tiny_root(tmp_path / "data")
    mutate(t)
    monkeypatch.setattr("sys.argv", ["lmf-gs", "evaluate", "--scene", t.vid,
                                     "--data-root", str(t.root), "--out", str(tmp_path / "r")])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_unknown_scene_and_method(tmp_path, monkeypatch, capsys):
    t = make_tiny_root(tmp_path / "data")
    for argv, message in [
        (["evaluate", "--scene", "P99_99"], "unknown scene 'P99_99'"),
        (["evaluate", "--scene", t.vid, "--method", "foo"], "unknown method 'foo'"),
    ]:
        monkeypatch.setattr("sys.argv", ["lmf-gs", *argv, "--data-root", str(t.root),
                                         "--out", str(tmp_path / "r")])
        with pytest.raises(SystemExit) as e:
            main()
        assert e.value.code == 2 and message in capsys.readouterr().err
