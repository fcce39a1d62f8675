"""Synthetic videos at EPIC's time base: frame numbers at 50 fps with a registration stride,
motion in seconds; the default (no stride) is the generator as it was."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from lmf_gs.config import Config
from lmf_gs.data.scene import Scene
from lmf_gs.data.synth.kitchen import Motion
from lmf_gs.data.synth.scene import KitchenScene
from lmf_gs.data.synthetic import generate_scene


def _digest(scene: KitchenScene) -> str:
    poses = np.stack([np.concatenate([scene.camera_to_world(k).ravel(),
                                      scene.part_poses(k).ravel()])
                      for k in range(len(scene.frame_numbers))])
    return hashlib.sha256(np.round(poses, 6).tobytes()).hexdigest()[:16]


def test_default_time_base_is_unchanged():
    # recorded with the generator before strides existed (commit bdc7fd0)
    scene = KitchenScene(3, 24, 114, 64, True)
    assert scene.frame_numbers.tolist() == [
        1290, 1291, 1294, 1295, 1297, 1299, 1301, 1304, 1307, 1311, 1313, 1316, 1337, 1339, 1340,
        1344, 1346, 1348, 1352, 1355, 1357, 1360, 1361, 1364]
    assert [round(e.t_grasp, 6) for e in scene.events] == [0.181289, 0.458461, 0.766466]
    assert _digest(scene) == "4e63ec89cf22d430"


def test_600_frames_at_stride_25_span_five_minutes_at_real_speed():
    scene = KitchenScene(0, 600, 114, 64, True, stride=25)
    steps = np.diff(scene.frame_numbers)
    assert steps.min() >= 19 and steps.max() <= 31
    assert scene.duration_s == pytest.approx(300, abs=5)
    np.testing.assert_allclose(scene.taus, (scene.frame_numbers - scene.frame_numbers[0]) / 50)
    events = sorted(scene.events, key=lambda e: e.t_grasp)
    carried = [e for e in events if scene.parts[e.part].motion is Motion.SEMI_STATIC]
    assert all(1.0 <= e.reach <= 2.0 for e in events)
    assert all(2.0 <= e.t_release - e.t_grasp <= 4.0 for e in carried)
    # each carried object moved three times over the 5 minutes, back and forth
    for part in {e.part for e in carried}:
        moves = [e for e in carried if e.part == part]
        assert len(moves) == 3
        np.testing.assert_allclose(moves[1].end, moves[0].start)
        np.testing.assert_allclose(moves[2].end, moves[0].end)
        k_mid = int(np.searchsorted(scene.taus, moves[1].t_release + 1.0))
        k_end = len(scene.taus) - 1
        np.testing.assert_allclose(scene.part_poses(k_mid)[part], moves[0].start)
        np.testing.assert_allclose(scene.part_poses(k_end)[part], moves[0].end)
    # hands at real speed: palm speed in the camera frame between consecutive registered
    # frames (0.5 s apart) of 9 cm/s median (measured; idle sway at 0.1-0.4 Hz)
    speed = [_palm_speed(scene, k) for k in range(0, 599, 7)]
    assert 0.03 < np.median(speed) < 0.3


def _palm_speed(scene: KitchenScene, k: int) -> float:
    """Right palm's mean speed (m/s, camera frame) from registered frame k to k + 1."""
    a, b = (scene.world_to_camera(j) @ scene.part_poses(j)[scene.hand_ids[1]][:, 3]
            for j in (k, k + 1))
    return float(np.linalg.norm((b - a)[:3]) / (scene.taus[k + 1] - scene.taus[k]))


def test_generate_scene_writes_the_time_base(tmp_path):
    res = generate_scene(tmp_path, "RT", 12, seed=1, width=57, height=32, stride=30, fps=60)
    raw = json.loads((tmp_path / "epic_fields" / "RT.json").read_text())
    assert raw["fps"] == 60
    scene = Scene("RT", Config().data.model_copy(update={"root": tmp_path}))
    assert scene.fps == 60 and scene.duration_s == pytest.approx(res.duration_s)
    assert res.duration_s == pytest.approx(11 * 30 / 60, rel=0.25)
    default = generate_scene(tmp_path, "D", 8, seed=1, width=57, height=32)
    assert "fps" not in json.loads((tmp_path / "epic_fields" / "D.json").read_text())
    assert default.duration_s == pytest.approx(
        (default.scene.frame_numbers[-1] - default.scene.frame_numbers[0]) / 50)
    with pytest.raises(ValueError, match="stride"):
        generate_scene(tmp_path, "BAD", 8, stride=0)
