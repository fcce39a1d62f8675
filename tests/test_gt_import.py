"""`lmf-gs gt-masks`: human object masks -> UDOS annotations and split, read back by the loader."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_root
from PIL import Image
from test_cli_evaluate import independent_map
from typer.testing import CliRunner

from cli.main import app
from lmf_gs.config import DataConfig
from lmf_gs.data.gt_import import GtImportOptions, import_gt_masks
from lmf_gs.data.paths import ScenePaths
from lmf_gs.data.udos import load_gt, split_frames
from lmf_gs.errors import DataError

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
runner = CliRunner()
W, H = 12, 8  # frame size; the masks are twice as large


def write_frames(root: Path, vid: str, numbers: list[int], size=(W, H)) -> None:
    folder = root / "frames" / vid
    folder.mkdir(parents=True)
    for n in numbers:
        Image.new("RGB", size, (n, 0, 0)).save(folder / f"frame_{n:010d}.jpg")


def small_mask(k: int) -> np.ndarray:
    """The expected frame-size GT of source frame k: its first k + 1 pixels (row-major) set."""
    m = np.zeros(H * W, np.uint8)
    m[: k + 1] = 1
    return m.reshape(H, W)


def big(k: int) -> np.ndarray:
    """Source frame k's mask at twice the frame size (each pixel a 2x2 block), 0/1."""
    return np.kron(small_mask(k), np.ones((2, 2), np.uint8))


def write_masks(folder: Path, count: int, palette: bool = False) -> None:
    """Masks ``0.png .. {count-1}.png``: 0/255 grey, or palette PNGs with object index 2."""
    folder.mkdir(parents=True)
    for k in range(count):
        if palette:
            img = Image.fromarray(big(k) * 2, mode="L").convert("P")
            img.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
        else:
            img = Image.fromarray(big(k) * 255)
        img.save(folder / f"{k}.png")


def paths_of(root: Path, vid: str) -> ScenePaths:
    return ScenePaths.from_config(vid, DataConfig(root=root))


def gt_png(root: Path, motion: str, vid: str, number: int) -> np.ndarray:
    return np.asarray(Image.open(root / f"udos/annotations/test_{motion}/{vid}/"
                                        f"frame_{number:010d}.png"))


def test_numbering_values_every_and_split_merge(tmp_path):
    root, vid = tmp_path / "data", "MY_01"
    write_frames(root, vid, list(range(1, 12)))
    write_masks(tmp_path / "masks", 11)  # 0.png .. 10.png: natural order puts 2 before 10
    split_file = root / "udos/split/test.json"
    split_file.parent.mkdir(parents=True)
    other = {"within_action": ["frame_0000000005.jpg"], "outside_action": [],
             "outside_action_easy": []}
    split_file.write_text(json.dumps({"OTHER": other}))

    res = import_gt_masks(tmp_path / "masks", paths_of(root, vid), GtImportOptions(every=3))

    chosen = [1, 4, 7, 10]  # masks 0, 3, 6, 9 -> frames k + 1
    names = [f"frame_{n:010d}.jpg" for n in chosen]
    split = json.loads(split_file.read_text())
    assert split == {"OTHER": other, vid: {"within_action": names, "outside_action": [],
                                           "outside_action_easy": []}}
    for n in chosen:
        expected = small_mask(n - 1)
        assert np.array_equal(gt_png(root, "dynamic", vid, n), expected)
        assert np.array_equal(gt_png(root, "dynamic_semistatic", vid, n), expected)
        assert not gt_png(root, "semistatic", vid, n).any()
        assert Image.open(root / f"udos/annotations/test_dynamic/{vid}/frame_{n:010d}.png").mode \
            == "L"
    assert sorted(p.name for p in (root / "udos/annotations/test_dynamic" / vid).iterdir()) \
        == [n.replace(".jpg", ".png") for n in names]
    # chance level: mean over frames of (k + 1) / 96 pixels, k = 0, 3, 6, 9
    assert res.object_share == pytest.approx(np.mean([1, 4, 7, 10]) / (W * H))
    assert res.frames_with_object == 4 and res.plan.size == (W, H)

    # read back through the project's own loader
    paths = paths_of(root, vid)
    assert split_frames(paths.udos_split, vid) == names
    for n, name in zip(chosen, names, strict=True):
        dyn = load_gt(paths, "dynamic", name)
        assert np.array_equal(dyn.positive, small_mask(n - 1).astype(bool)) and dyn.evaluated.all()
        semi = load_gt(paths, "semistatic", name)
        assert not semi.positive.any() and semi.evaluated.all()
        both = load_gt(paths, "dynamic_semistatic", name)
        assert np.array_equal(both.positive, dyn.positive)


def test_palette_masks_sparse_frames_and_semistatic_layer(tmp_path):
    """Frames as `prepare --every 2` writes them (1, 3, 5, 7); 7 palette masks (object index 2)."""
    root, vid = tmp_path / "data", "MY_02"
    write_frames(root, vid, [1, 3, 5, 7])
    write_masks(tmp_path / "masks", 7, palette=True)
    assert Image.open(tmp_path / "masks" / "0.png").mode == "P"
    res = import_gt_masks(tmp_path / "masks", paths_of(root, vid),
                          GtImportOptions(layer="semistatic"))
    assert res.plan.split == [f"frame_{n:010d}.jpg" for n in (1, 3, 5, 7)]
    for n in (1, 3, 5, 7):
        assert not gt_png(root, "dynamic", vid, n).any()
        assert np.array_equal(gt_png(root, "semistatic", vid, n), small_mask(n - 1))
        assert np.array_equal(gt_png(root, "dynamic_semistatic", vid, n), small_mask(n - 1))


def test_overwrite_replaces_and_leaves_no_staging(tmp_path):
    root, vid = tmp_path / "data", "MY_03"
    write_frames(root, vid, [1, 2, 3])
    write_masks(tmp_path / "a", 3)
    import_gt_masks(tmp_path / "a", paths_of(root, vid), GtImportOptions())
    before = gt_png(root, "dynamic", vid, 3).copy()
    with pytest.raises(DataError, match=r"already has MY_03.*--overwrite"):
        import_gt_masks(tmp_path / "a", paths_of(root, vid), GtImportOptions(every=2))
    assert np.array_equal(gt_png(root, "dynamic", vid, 3), before)
    import_gt_masks(tmp_path / "a", paths_of(root, vid), GtImportOptions(every=2, overwrite=True))
    assert sorted(p.name for p in (root / "udos/annotations/test_dynamic" / vid).iterdir()) \
        == ["frame_0000000001.png", "frame_0000000003.png"]
    assert sorted(p.name for p in (root / "udos/annotations").iterdir()) \
        == ["test_dynamic", "test_dynamic_semistatic", "test_semistatic"]


@pytest.mark.parametrize("case, match", [
    ("no_dir", "mask folder not found"),
    ("empty_dir", "no mask images"),
    ("corrupt", r"5\.png: cannot read mask image"),
    ("other_size", r"3\.png: 26x16 pixels, but 0\.png is 24x16"),
    ("aspect", r"0\.png: 24x24 pixels does not have the shape of the frames"),
    ("too_many", r"7 masks map to frames 1\.\.7, but .*MY_04 ends at frame 6"),
    ("too_few", r"5 masks map to frames 1\.\.5, but .*MY_04 ends at frame 6"),
    ("no_frames", "frames/MY_09: frame folder not found"),
    ("bad_split", r"test\.json: malformed JSON"),
    ("existing", r"test_dynamic/MY_04: annotation exists \(pass --overwrite"),
])
def test_bad_input_one_line_and_nothing_written(tmp_path, case, match):
    root, vid = tmp_path / "data", "MY_04"
    write_frames(root, vid, list(range(1, 7)))
    masks = tmp_path / "masks"
    write_masks(masks, {"too_many": 7, "too_few": 5}.get(case, 6))
    if case == "no_dir":
        shutil.rmtree(masks)
    elif case == "empty_dir":
        for p in masks.iterdir():
            p.unlink()
        (masks / "notes.txt").write_text("x")
    elif case == "corrupt":
        (masks / "5.png").write_text("not a png")
    elif case == "other_size":
        Image.new("L", (26, 16)).save(masks / "3.png")
    elif case == "aspect":
        for k in range(6):
            Image.new("L", (24, 24)).save(masks / f"{k}.png")
    elif case == "bad_split":
        (root / "udos/split").mkdir(parents=True)
        (root / "udos/split/test.json").write_text("{oops")
    elif case == "existing":
        (root / "udos/annotations/test_dynamic" / vid).mkdir(parents=True)
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    res = runner.invoke(app, ["gt-masks", str(masks), "--vid",
                              "MY_09" if case == "no_frames" else vid, "--data-root", str(root)])
    assert isinstance(res.exception, DataError), res.output
    msg = str(res.exception)
    assert "\n" not in msg
    assert re.search(match, msg), msg
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


def test_cli_then_evaluate_mg(tmp_path):
    """A tiny prepared-style root (non-contiguous frame numbers, motion masks): its own GT is
    removed, masks for every source frame from the second frame on are imported with
    --first-number, and `evaluate --method mg` scores exactly the imported frames."""
    t = make_tiny_root(tmp_path / "data")
    shutil.rmtree(t.root / "udos")
    frames = sorted(t.root.joinpath("frames", t.vid).iterdir())
    numbers = [int(p.stem.split("_")[1]) for p in frames]
    # one extra frame without a camera: annotated, but left out of the split
    shutil.copy(frames[-1], frames[-1].with_name(f"frame_{numbers[-1] + 1:010d}.jpg"))
    first, last = numbers[1], numbers[-1] + 1
    masks = tmp_path / "masks"
    masks.mkdir()
    for k in range(last - first + 1):  # 64x32 masks for 32x16 frames, named 00000.png ...
        m = np.zeros((32, 64), np.uint8)
        m[8:20, 10 + k: 30 + k] = 255
        Image.fromarray(m).save(masks / f"{k:05d}.png")
    res = runner.invoke(app, ["gt-masks", str(masks), "--vid", t.vid, "--data-root",
                              str(t.root), "--first-number", str(first)])
    assert res.exit_code == 0, res.output
    assert f"wrote {len(numbers)} frames" in res.output and "1 unregistered left out" in res.output
    expected = [f"frame_{n:010d}.jpg" for n in numbers[1:]]
    assert split_frames(t.root / "udos/split/test.json", t.vid) == expected
    gt = gt_png(t.root, "dynamic", t.vid, numbers[1])
    assert gt.shape == (16, 32) and gt[4:10, 5:15].all() and gt.sum() == 60

    out = tmp_path / "runs"
    res = runner.invoke(app, ["evaluate", "--scene", t.vid, "--method", "mg",
                              "--data-root", str(t.root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / t.vid / "mg" / "metrics.json").read_text())
    assert set(doc["per_frame"]["dynamic"]) == set(expected)
    for motion in ("dynamic", "dynamic_semistatic"):
        assert doc["map"][motion] == pytest.approx(independent_map(t.root, t.vid, motion),
                                                   abs=1e-4)


@pytest.mark.skipif(not (REAL / "davis").is_dir(), reason="real DAVIS samples absent")
def test_davis_scooter_black_equals_shipped_annotations(tmp_path):
    """Exact equality (every pixel of every frame and motion type, and the split entry) with
    the UDOS layout shipped for DAVIS_scooter_black."""
    davis, vid = REAL / "davis", "DAVIS_scooter_black"
    root = tmp_path / "data"
    shutil.copytree(davis / "data/frames" / vid, root / "frames" / vid)
    shutil.copytree(davis / "data/epic_fields", root / "epic_fields")
    res = import_gt_masks(davis / "raw480p/Annotations/scooter-black", paths_of(root, vid),
                          GtImportOptions())
    assert len(res.plan.masks) == 43 and res.plan.unregistered == 0
    ref_root = davis / "data/udos"
    ref = json.loads((ref_root / "split/test.json").read_text())[vid]
    assert json.loads((root / "udos/split/test.json").read_text())[vid] == ref
    for motion in ("dynamic", "semistatic", "dynamic_semistatic"):
        ref_dir = ref_root / f"annotations/test_{motion}" / vid
        ours = root / f"udos/annotations/test_{motion}" / vid
        assert sorted(p.name for p in ours.iterdir()) == sorted(p.name for p in ref_dir.iterdir())
        for p in ref_dir.iterdir():
            assert np.array_equal(np.asarray(Image.open(ours / p.name)),
                                  np.asarray(Image.open(p))), p.name
