"""EPIC Fields reader, frame stores, motion masks and the Scene."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REAL_DIR, make_tiny_root, write_png

from lmf_gs.config import DataConfig
from lmf_gs.data import Scene
from lmf_gs.data.camera import camera_centers
from lmf_gs.data.epic_fields import load_epic_fields, near_far_from_points
from lmf_gs.errors import DataError


def test_frames_sorted_by_number_and_poses_follow(tiny):
    ef = load_epic_fields(tiny.root / "epic_fields" / f"{tiny.vid}.json")
    assert ef.frames == tiny.frames  # JSON was written shuffled
    nums = [int(f[6:16]) for f in ef.frames]
    assert nums == sorted(nums) and np.diff(nums).max() > 1  # non-contiguous
    # pose i was written as yaw 0.05 i, t = (0.1 i, 0, 0)
    np.testing.assert_allclose(ef.w2c[:, 0, 3], 0.1 * np.arange(len(nums)))
    np.testing.assert_allclose(ef.w2c[3, 0, 2], np.sin(0.15), atol=1e-12)
    assert ef.points.shape == (200, 3) and ef.point_colors.dtype == np.uint8


def test_near_far_are_point_depth_quantiles():
    w2c = np.eye(4)[None]
    z = np.concatenate([np.linspace(1, 10, 1001), [-5.0]])  # the point behind is ignored
    pts = np.stack([np.zeros_like(z), np.zeros_like(z), z], axis=1)
    nf = near_far_from_points(w2c, pts)
    np.testing.assert_allclose(nf[0], [1.009, 9.991], atol=1e-9)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "malformed JSON"),
        ('{"camera": {}}', "expected keys 'camera' and 'images'"),
        ('{"camera": {"model": "OPENCV", "width": 4, "height": 2, "params": [1]}, "images": {}}',
         "bad 'camera' entry"),
        ('{"camera": {"model": "PINHOLE", "width": 4, "height": 2, "params": [1, 1, 2, 1]},'
         ' "images": {"frame_0000000001.jpg": [1, 0, 0]}}', r"\[qw, qx, qy, qz, tx, ty, tz\]"),
        ('{"camera": {"model": "PINHOLE", "width": 4, "height": 2, "params": [1, 1, 2, 1]},'
         ' "images": {"img1.png": [1, 0, 0, 0, 0, 0, 0]}}', "not an EPIC frame name"),
        ('{"camera": {"model": "PINHOLE", "width": 4, "height": 2, "params": [1, 1, 2, 1]},'
         ' "images": {"frame_0000000001.jpg": [2, 0, 0, 0, 0, 0, 0]}}', "non-unit quaternion"),
    ],
)
def test_bad_camera_files_give_one_line_errors(tmp_path, content, message):
    p = tmp_path / "P01_01.json"
    p.write_text(content)
    with pytest.raises(DataError, match=message) as e:
        load_epic_fields(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_missing_camera_file(tmp_path):
    with pytest.raises(DataError, match="camera file not found"):
        load_epic_fields(tmp_path / "nope.json")


@pytest.mark.parametrize("as_tar", [False, True])
def test_scene_reads_frames_from_folder_or_tar(tmp_path, as_tar):
    t = make_tiny_root(tmp_path / "d", as_tar=as_tar)
    ref = make_tiny_root(tmp_path / "ref")  # same seed: identical JPEG bytes, folder layout
    scene = Scene(t.vid, DataConfig(root=t.root))
    ref_scene = Scene(ref.vid, DataConfig(root=ref.root))
    assert scene.frame_store.path.suffix == (".tar" if as_tar else "")
    for f in t.frames:
        np.testing.assert_array_equal(scene.image(f), ref_scene.image(f))
    img = scene.image(0)
    assert img.shape == (16, 32, 3) and img.dtype == np.float32 and 0 <= img.min() <= img.max() <= 1


def test_scene_missing_frame_is_reported(tmp_path):
    t = make_tiny_root(tmp_path / "d")
    (t.root / "frames" / t.vid / t.frames[2]).unlink()
    scene = Scene(t.vid, DataConfig(root=t.root))
    with pytest.raises(DataError, match=f"missing frame {t.frames[2]}"):
        scene.image(0)


def test_scene_missing_frames_location(tmp_path):
    t = make_tiny_root(tmp_path / "d", as_tar=True)
    (t.root / "frames" / f"{t.vid}.tar").unlink()
    with pytest.raises(DataError, match="frames not found"):
        Scene(t.vid, DataConfig(root=t.root)).image(0)


def test_scene_times_intrinsics_and_downscale(tiny):
    scene = Scene(tiny.vid, DataConfig(root=tiny.root, downscale=2))
    assert scene.times[0] == -1 and scene.times[-1] == 1 and np.all(np.diff(scene.times) > 0)
    nums = scene.frame_numbers
    np.testing.assert_allclose(scene.times, 2 * (nums - nums[0]) / (nums[-1] - nums[0]) - 1,
                               rtol=1e-6)
    assert (scene.width, scene.height) == (16, 8)
    assert scene.intrinsics.dist == (0, 0, 0, 0) and scene.intrinsics.fx == 10.0
    assert scene.image(1).shape == (8, 16, 3)
    np.testing.assert_allclose(scene.c2w @ scene.w2c, np.broadcast_to(np.eye(4), scene.w2c.shape),
                               atol=1e-12)
    assert scene.near_far.shape == (len(scene), 2) and (scene.near_far[:, 0] > 0).all()


def test_motion_masks_fall_back_to_mg_cache_and_none_without(tiny):
    scene = Scene(tiny.vid, DataConfig(root=tiny.root))
    last = tiny.frames[0]
    assert scene.motion_mask(last) is None
    cached = np.full((16, 32), 128, np.uint8)
    write_png(tiny.root / "udos/cache/task2-2d/test/soft_scores" / tiny.vid /
              last.replace(".jpg", ".png"), cached)
    assert scene.motion_mask(last) is None  # a Scene remembers that a frame has no mask
    scene = Scene(tiny.vid, DataConfig(root=tiny.root))  # a new one finds the mask written since
    m = scene.motion_mask(last)
    assert m is not None and m.shape == (16, 32)
    np.testing.assert_allclose(m, 128 / 255, atol=1e-6)
    # motion_masks/ has priority over the cache
    f1 = tiny.frames[1]
    write_png(tiny.root / "udos/cache/task2-2d/test/soft_scores" / tiny.vid /
              f1.replace(".jpg", ".png"), cached)
    assert abs(scene.motion_mask(f1).mean() - tiny.masks[f1].mean() / 255) < 0.02


def test_mask_size_mismatch_is_reported(tiny):
    f = tiny.frames[0]
    write_png(tiny.root / "motion_masks" / tiny.vid / f.replace(".jpg", ".png"),
              np.zeros((10, 10), np.uint8))
    with pytest.raises(DataError, match=r"size 10x10 does not match the camera \(32x16"):
        Scene(tiny.vid, DataConfig(root=tiny.root)).motion_mask(f)


def test_split_frame_not_registered_is_reported(tiny):
    split = tiny.root / "udos/split/test.json"
    doc = json.loads(split.read_text())
    doc[tiny.vid]["within_action"].append("frame_0000099999.jpg")
    split.write_text(json.dumps(doc))
    scene = Scene(tiny.vid, DataConfig(root=tiny.root))
    with pytest.raises(DataError, match=r"frame_0000099999\.jpg of P90_01 is not registered"):
        scene.split_frames()


def test_unknown_scene_in_split(tiny):
    tiny_cfg = DataConfig(root=tiny.root)
    (tiny.root / "epic_fields" / "P91_01.json").write_text(
        (tiny.root / "epic_fields" / f"{tiny.vid}.json").read_text())
    with pytest.raises(DataError, match="unknown scene 'P91_01'"):
        Scene("P91_01", tiny_cfg).split_frames()


def test_to_gt_grid_redistorts_to_original_size(tiny):
    scene = Scene(tiny.vid, DataConfig(root=tiny.root, downscale=2))
    pred = np.ones((8, 16), np.float32)
    out = scene.to_gt_grid(pred)
    assert out.shape == (16, 32)
    np.testing.assert_allclose(out, 1.0, atol=1e-6)


def test_path_templates_are_overridable(tmp_path):
    t = make_tiny_root(tmp_path / "elsewhere")
    moved = tmp_path / "cams" / "P90_01_cameras.json"
    moved.parent.mkdir()
    (t.root / "epic_fields" / "P90_01.json").rename(moved)
    cfg = DataConfig(root=t.root, epic_fields=str(tmp_path / "cams" / "{vid}_cameras.json"))
    assert len(Scene("P90_01", cfg)) == len(t.frames)


@pytest.mark.skipif(not (REAL_DIR / "P28_101_slice.json").exists(), reason="real samples absent")
def test_real_p28_101_camera_file():
    ef = load_epic_fields(REAL_DIR / "P28_101_slice.json")
    intr = ef.intrinsics
    assert (intr.width, intr.height, intr.cx, intr.cy) == (456, 256, 228.0, 128.0)
    assert 239 < intr.fx < 240 and 243 < intr.fy < 244
    assert len(ef.frames) == 87 and ef.frames[0] == "frame_0000000120.jpg"
    R = ef.w2c[:, :3, :3]
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape),
                               atol=1e-9)
    C = camera_centers(ef.w2c)
    nums = np.array([int(f[6:16]) for f in ef.frames])
    step = np.linalg.norm(np.diff(C, axis=0), axis=1)
    consecutive = np.diff(nums) == 1
    # a smooth head trajectory: consecutive frames move little and similarly
    assert np.median(step[consecutive]) < 0.05 and step[consecutive].max() < 5 * np.median(
        step[consecutive]) + 1e-3
    fwd = R[:, 2, :]  # optical axis in world coordinates
    turn = np.degrees(np.arccos(np.clip((fwd[1:] * fwd[:-1]).sum(1), -1, 1)))
    assert turn[consecutive].max() < 10


@pytest.mark.skipif(not (REAL_DIR / "P28_101_frames").exists(), reason="real samples absent")
def test_real_frames_folder_reads(tmp_path: Path):
    from lmf_gs.data.frames import FrameStore

    store = FrameStore(REAL_DIR / "P28_101_frames")
    img = store.read("frame_0000000080.jpg")
    assert img.shape == (256, 456, 3) and img.dtype == np.uint8
