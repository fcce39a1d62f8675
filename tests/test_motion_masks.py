"""`lmf-gs motion-masks`: rigid flow and epipolar geometry against hand-computed values, robust
scores, and the whole command on a tiny scene with known depth, camera motion and one
independently moving patch."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score
from typer.testing import CliRunner

from cli.main import app, main
from lmf_gs.config import DataConfig
from lmf_gs.data.motion.estimate import MotionEstimator, MotionOptions
from lmf_gs.data.motion.flow import fb_error, leaves_frame
from lmf_gs.data.motion.rigid import (
    densify_depth,
    epipolar_distance,
    epipolar_lines,
    fundamental,
    relative_pose,
    rigid_flow,
    rotation_flow,
    sfm_depth,
)
from lmf_gs.data.motion.score import combine, robust_scale, squash
from lmf_gs.data.motion.writer import MaskFolderWriter
from lmf_gs.data.scene import Scene
from lmf_gs.errors import LmfError

runner = CliRunner()
K = np.array([[100.0, 0, 49.5], [0, 100.0, 39.5], [0, 0, 1]])


def pose(R: np.ndarray, t) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    return T


def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


# -- geometry ---------------------------------------------------------------------------------


def test_rigid_flow_of_a_translation_is_fx_t_over_z():
    depth = np.full((80, 100), 2.0)
    flow = rigid_flow(depth, K, pose(np.eye(3), [0.1, 0.0, 0.0]))
    # a fronto-parallel plane at z = 2 moved by 0.1 along x: 100 * 0.1 / 2 = 5 px everywhere
    assert np.allclose(flow[..., 0], 5.0) and np.allclose(flow[..., 1], 0.0, atol=1e-9)
    # towards the plane by 1: pixel (x, y) = (89, 39), centre (89.5, 39.5), 40 px right of the
    # principal point, goes to 49.5 + 40 * 2 / 1 = 129.5: 40 px of flow; the centre does not move
    flow = rigid_flow(depth, K, pose(np.eye(3), [0.0, 0.0, -1.0]))
    assert flow[39, 89] == pytest.approx([40.0, 0.0], abs=1e-5)
    assert flow[39, 49] == pytest.approx([0.0, 0.0], abs=1e-5)


def test_rigid_flow_of_a_rotation_is_depth_free():
    a = 0.1
    for z in (1.0, 7.0):
        flow = rigid_flow(np.full((80, 100), z), K, pose(rot_y(a), [0, 0, 0]))
        # the principal point goes to cx + fx tan(a) = 100 * tan(0.1) = 10.0335 px to the right
        assert flow[39, 49] == pytest.approx([100 * np.tan(a), 0.0], abs=1e-4)


def test_rigid_flow_of_a_point_behind_the_target_camera_is_nan():
    flow = rigid_flow(np.full((80, 100), 2.0), K, pose(np.eye(3), [0.0, 0.0, -3.0]))
    assert np.isnan(flow).all()


def test_relative_pose_composes_world_to_camera_poses():
    rng = np.random.default_rng(0)
    a = pose(rot_y(0.3), rng.normal(size=3))
    b = pose(rot_y(-0.2), rng.normal(size=3))
    X = np.append(rng.normal(size=3), 1.0)
    assert np.allclose(relative_pose(a, b) @ (a @ X), b @ X)


def test_epipolar_distance_is_the_off_line_motion_whatever_the_depth():
    rng = np.random.default_rng(1)
    T = pose(rot_y(0.05), [0.2, 0.05, 0.02])
    depth = rng.uniform(1.0, 5.0, size=(80, 100))
    rig = rigid_flow(depth, K, T)
    lines = epipolar_lines(fundamental(K, T), 100, 80)
    # every rigid correspondence satisfies x_dst^T F x_src = 0, whatever its depth
    u, v = np.meshgrid(np.arange(100) + 0.5, np.arange(80) + 0.5)
    dst = np.stack([u + rig[..., 0], v + rig[..., 1], np.ones_like(u)], -1)
    assert np.abs((dst * lines).sum(-1)).max() < 1e-6
    # 3 px across the line and 4 px along it: distance 3, also when judged with a wrong depth
    normal, direction = lines[..., :2], lines[..., [1, 0]] * [1, -1]
    flow = rig + 3 * normal + 4 * direction
    assert np.allclose(epipolar_distance(flow, rig, lines), 3.0, atol=1e-4)
    wrong = rigid_flow(depth * 1.7, K, T)
    assert np.allclose(epipolar_distance(flow, wrong, lines), 3.0, atol=1e-3)
    assert np.abs(np.linalg.norm(flow - wrong, axis=-1) - 3.0).max() > 1.0


def test_without_translation_the_rotation_flow_explains_everything():
    T = pose(rot_y(0.05), [0, 0, 0])
    lines = epipolar_lines(fundamental(K, T), 100, 80)
    assert not lines.any()
    rig = rigid_flow(np.full((80, 100), 3.0), K, T)
    # no epipolar line: the whole residual counts
    assert np.allclose(epipolar_distance(rig + np.array([3.0, 4.0]), rig, lines), 5.0, atol=1e-4)
    # the rotation alone, as the rigid flow of points at any depth
    assert np.allclose(rotation_flow(K, pose(rot_y(0.05), [1.0, 0, 0]), 100, 80), rig, atol=1e-4)


def test_densified_sfm_depth_is_exact_on_a_plane():
    # world plane z = 2 + 0.5 x seen by the identity camera: inverse depth is affine in pixels
    rng = np.random.default_rng(2)
    xy = rng.uniform(-0.9, 0.9, size=(300, 2))
    pts = np.column_stack([xy, 2 + 0.5 * xy[:, 0]])
    depth = sfm_depth(pts, np.eye(4), K, 100, 80, smooth=0.0)
    u, v = np.meshgrid(np.arange(100) + 0.5, np.arange(80) + 0.5)
    x = (u - 49.5) / 100  # ray x / z; the plane z = 2 + 0.5 x z gives z = 2 / (1 - 0.5 x)
    truth = 2 / (1 - 0.5 * x)
    inside = (np.abs(u - 49.5) < 30) & (np.abs(v - 39.5) < 25)
    assert np.allclose(depth[inside], truth[inside], rtol=1e-6)
    assert densify_depth(np.zeros((2, 2)), np.ones(2), 10, 10) is None


# -- scores -----------------------------------------------------------------------------------


def test_robust_scale_squash_and_combine():
    v = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    # median 3, MAD median(|-2, -1, 0, 1, 97|) = 1: 3 + 3 * 1
    assert robust_scale(v, np.ones(5, bool), k=3.0) == pytest.approx(6.0)
    assert robust_scale(v, np.array([1, 1, 1, 0, 0], bool), k=1.0) == pytest.approx(2 + 1)
    assert squash(np.array([0.0, 1.0, 3.0])) == pytest.approx([0.0, 0.5, 0.9])
    a, b = np.array([0.2, 0.8]), np.array([0.6, 0.4])
    ra, rb = np.array([True, False]), np.array([True, False])
    # pixel 1 is reliable nowhere: all neighbours count
    assert combine([a, b], [ra, rb]) == pytest.approx([0.4, 0.6])
    # pixel 0 is reliable in a only
    assert combine([a, b], [ra, ~rb]) == pytest.approx([0.2, 0.4])


def test_forward_backward_error_and_leaving_the_frame():
    fwd = np.zeros((10, 12, 2), np.float32)
    fwd[..., 0] = 2.0
    assert np.allclose(fb_error(fwd, -fwd), 0.0)
    assert np.allclose(fb_error(fwd, fwd), 4.0)
    out = leaves_frame(fwd)
    assert out[:, -2:].all() and not out[:, :-2].any()


# -- a tiny video with known depth, camera motion and one moving patch --------------------------

W, H, N, VID = 96, 64, 6, "TINY_01"
KT = np.array([[80.0, 0, 48.0], [0, 80.0, 32.0], [0, 0, 1]])
PLANE_Z, PATCH = 2.0, 16


def patch_box(i: int) -> tuple[int, int]:
    """Top-left (x, y) of the moving patch in frame i: 1 px left and 3 px down per frame (the
    camera moves right and down 3:1, so the patch also leaves its epipolar lines)."""
    return 40 - i, 8 + 3 * i


def make_patch_video(root: Path, numbers=(10, 13, 16, 19, 22, 25)) -> list[str]:
    """A textured wall at z = 2 seen by a camera translating and turning, plus a textured
    square that moves independently in the image."""
    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur(rng.uniform(0, 255, (400, 400, 3)).astype(np.float32), (0, 0), 2.0)
    tex = np.clip((tex - tex.mean()) * 4 + 128, 0, 255)
    ptex = cv2.GaussianBlur(rng.uniform(0, 255, (PATCH, PATCH, 3)).astype(np.float32), (0, 0), 1.0)
    ptex = (ptex - ptex.min()) / (ptex.max() - ptex.min()) * 255
    frames = [f"frame_{n:010d}.jpg" for n in numbers]
    images, w2cs = {}, []
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    rays = np.stack([(u - KT[0, 2]) / KT[0, 0], (v - KT[1, 2]) / KT[1, 1], np.ones_like(u)], -1)
    (root / "frames" / VID).mkdir(parents=True)
    for i, f in enumerate(frames):
        R, c = rot_y(0.01 * i), np.array([0.03 * i, 0.01 * i, 0.0])
        w2cs.append(pose(R, -R @ c))
        d = rays @ R  # world directions (R^T applied to each ray)
        s = (PLANE_Z - c[2]) / d[..., 2]
        X, Y = c[0] + s * d[..., 0], c[1] + s * d[..., 1]
        img = cv2.remap(tex, ((X + 1.5) * 100 - 0.5).astype(np.float32),
                        ((Y + 1.5) * 100 - 0.5).astype(np.float32), cv2.INTER_LINEAR)
        x0, y0 = patch_box(i)
        img[y0:y0 + PATCH, x0:x0 + PATCH] = ptex
        images[f] = img
        Image.fromarray(img.astype(np.uint8)).save(root / "frames" / VID / f, quality=95)
    xy = rng.uniform(-0.8, 0.9, size=(150, 2))
    pts = np.column_stack([xy, np.full(150, PLANE_Z), rng.integers(0, 256, (150, 3))])
    qs = [_quat(T[:3, :3]) for T in w2cs]
    doc = {"camera": {"id": 1, "model": "PINHOLE", "width": W, "height": H,
                      "params": [KT[0, 0], KT[1, 1], KT[0, 2], KT[1, 2]]},
           "images": {f: [*q, *T[:3, 3]] for f, q, T in zip(frames, qs, w2cs, strict=True)},
           "points": pts.tolist()}
    (root / "epic_fields").mkdir(parents=True)
    (root / "epic_fields" / f"{VID}.json").write_text(json.dumps(doc))
    return frames


def _quat(R: np.ndarray) -> list[float]:
    """Scalar-first quaternion of a rotation about y."""
    a = np.arctan2(R[0, 2], R[0, 0])
    return [float(np.cos(a / 2)), 0.0, float(np.sin(a / 2)), 0.0]


def patch_gt(i: int) -> np.ndarray:
    gt = np.zeros((H, W), bool)
    x0, y0 = patch_box(i)
    gt[y0:y0 + PATCH, x0:x0 + PATCH] = True
    return gt


@pytest.fixture
def patch_root(tmp_path: Path) -> Path:
    make_patch_video(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("options", "min_ap", "max_wall"), [
    (MotionOptions(), 0.8, 0.05),
    (MotionOptions(photometric=0.0), 0.85, 0.3),  # without the check the wall stays grey
    (MotionOptions(residual="epipolar"), 0.65, 0.2),
])
def test_moving_patch_scores_high_and_the_static_wall_low(patch_root, options, min_ap, max_wall):
    sc = Scene(VID, DataConfig(root=patch_root))
    est = MotionEstimator(sc, options)
    for i in range(len(sc)):
        m = est.frame(i)
        assert m.shape == (H, W) and m.dtype == np.float32 and m.min() >= 0 and m.max() <= 1
        gt = patch_gt(i)
        wall = cv2.dilate(gt.astype(np.uint8), np.ones((9, 9))) == 0  # away from the patch
        assert average_precision_score(gt.ravel(), m.ravel()) > min_ap, i
        assert m[gt].mean() > 0.6 and m[wall].mean() < max_wall, i
    assert est.frames_without_depth == 0


@pytest.mark.parametrize("residual", ["depth", "epipolar"])
def test_a_neighbour_turned_away_gives_finite_scores(patch_root, residual):
    # after a 100 degree turn part of what frame 2 sees lies behind camera 3
    sc = Scene(VID, DataConfig(root=patch_root))
    sc.w2c[3] = pose(rot_y(1.75), sc.w2c[3][:3, 3])
    m = MotionEstimator(sc, MotionOptions(residual=residual)).frame(2)
    assert np.isfinite(m).all() and m.min() >= 0 and m.max() <= 1


def test_a_given_depth_replaces_the_sfm_depth_and_invalid_pixels_fall_back(patch_root):
    sc = Scene(VID, DataConfig(root=patch_root))
    est = MotionEstimator(sc, depth=lambda i: np.full((H, W), np.nan))
    sfm = MotionEstimator(sc).depth(0)
    assert np.allclose(est.depth(0), sfm)
    near = MotionEstimator(sc, depth=lambda i: np.full((H, W), 0.5))
    assert np.allclose(near.depth(0), 0.5)
    with pytest.raises(Exception, match="shape"):
        MotionEstimator(sc, depth=lambda i: np.ones((3, 3))).depth(0)


def test_command_writes_masks_that_scene_reads_back(patch_root):
    res = runner.invoke(app, ["motion-masks", "--scene", VID, "--data-root", str(patch_root)])
    assert res.exit_code == 0, res.output
    assert f"wrote {N} motion masks" in res.output
    folder = patch_root / "motion_masks" / VID
    pngs = sorted(p.name for p in folder.iterdir())
    assert pngs == [f"frame_{n:010d}.png" for n in (10, 13, 16, 19, 22, 25)]
    assert not [p for p in patch_root.joinpath("motion_masks").iterdir() if p.name != VID]
    arr = np.asarray(Image.open(folder / pngs[2]))
    assert arr.dtype == np.uint8 and arr.shape == (H, W)
    sc = Scene(VID, DataConfig(root=patch_root))
    est = MotionEstimator(sc)
    for i in range(N):
        assert np.abs(sc.motion_mask(i) - est.frame(i)).max() <= 0.5 / 255 + 1e-6


def test_command_with_a_model_uses_its_static_depth(patch_root):
    from cli.motion_commands import model_depth
    from lmf_gs.backends import get_backend
    from lmf_gs.config import load_config
    from lmf_gs.core.runs import save_checkpoint

    # an untrained model: its static Gaussians sit on the SfM points of the wall at z = 2
    cfg = load_config(None, [f"data.root={patch_root}", "model.n_static=600",
                             "model.n_semistatic=20", "model.n_dynamic=20"])
    sc = Scene(VID, cfg.data)
    run = patch_root / "runs" / VID / "gs"
    run.mkdir(parents=True)
    backend = get_backend("gs").initialise(sc, cfg, list(range(N)))
    save_checkpoint(run, {"model": backend.state_dict(), "step": 0}, cfg)
    depth = model_depth(run, sc, cfg)(2)
    assert depth.shape == (H, W)
    covered = depth > 0
    assert covered.mean() > 0.3 and np.allclose(depth[covered], 2.0, rtol=0.1)
    res = runner.invoke(app, ["motion-masks", "--scene", VID, "--data-root", str(patch_root),
                              "--model", str(run)])
    assert res.exit_code == 0, res.output
    assert f"depth from {run}" in res.output.replace("\n", "")
    assert len(list((patch_root / "motion_masks" / VID).iterdir())) == N


def run_main(monkeypatch, capsys, *argv):
    monkeypatch.setattr("sys.argv", ["lmf-gs", "motion-masks", *argv])
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_refuses_to_overwrite_unless_asked(patch_root, monkeypatch, capsys):
    args = ["--scene", VID, "--data-root", str(patch_root)]
    assert runner.invoke(app, ["motion-masks", *args]).exit_code == 0
    folder = patch_root / "motion_masks" / VID
    first = folder / "frame_0000000016.png"
    first.write_bytes(b"marker")
    err = run_main(monkeypatch, capsys, *args)
    assert "already holds 6 file(s)" in err and "--overwrite" in err
    assert first.read_bytes() == b"marker"
    res = runner.invoke(app, ["motion-masks", *args, "--overwrite", "--residual", "epipolar"])
    assert res.exit_code == 0, res.output
    assert np.asarray(Image.open(first)).shape == (H, W)
    assert sorted(p.name for p in (patch_root / "motion_masks").iterdir()) == [VID]


def test_a_failure_midway_leaves_the_earlier_masks_untouched(tmp_path):
    dest = tmp_path / "motion_masks" / "V"
    dest.mkdir(parents=True)
    (dest / "old.png").write_bytes(b"old")
    with pytest.raises(RuntimeError), MaskFolderWriter(dest, overwrite=True) as w:
        w.write("frame_0000000001.jpg", np.zeros((4, 4)))
        raise RuntimeError("stop")
    assert [p.name for p in (tmp_path / "motion_masks").iterdir()] == ["V"]
    assert [p.name for p in dest.iterdir()] == ["old.png"]
    with pytest.raises(LmfError, match="already holds 1 file"):
        MaskFolderWriter(dest)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda r: (r / "epic_fields" / f"{VID}.json").unlink(), f"no camera poses for {VID}"),
    (lambda r: (r / "frames" / VID / "frame_0000000013.jpg").unlink(),
     "missing frame frame_0000000013.jpg"),
    (lambda r: [p.unlink() for p in (r / "frames" / VID).iterdir()], "missing frame"),
    (lambda r: (r / "epic_fields" / f"{VID}.json").write_text(json.dumps(
        {**json.loads((r / "epic_fields" / f"{VID}.json").read_text()),
         "images": {"frame_0000000010.jpg": [1, 0, 0, 0, 0, 0, 0]}})),
     "1 registered frame(s); motion masks need at least 2"),
])
def test_bad_scene_is_one_line(patch_root, monkeypatch, capsys, mutate, message):
    mutate(patch_root)
    err = run_main(monkeypatch, capsys, "--scene", VID, "--data-root", str(patch_root))
    assert message in err
    assert not (patch_root / "motion_masks").exists()


def test_bad_options_are_one_line(patch_root, monkeypatch, capsys):
    err = run_main(monkeypatch, capsys, "--scene", VID, "--data-root", str(patch_root),
                   "--residual", "magic")
    assert "--residual: unknown residual 'magic'" in err
    err = run_main(monkeypatch, capsys, "--scene", VID, "--data-root", str(patch_root),
                   "--model", str(patch_root / "no_run"))
    assert "no checkpoint" in err
    assert not (patch_root / "motion_masks").exists()


REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "davis" / "data"


@pytest.mark.skipif(not REAL.is_dir(), reason="needs ../shared/data/real (real DAVIS videos)")
def test_real_davis_frames_score_well_above_chance():
    sc = Scene("DAVIS_soapbox", DataConfig(root=REAL))
    est = MotionEstimator(sc)
    aps, share = [], []
    for i in (30, 31, 60):
        gt = sc.gt("dynamic", sc.frames[i])
        pred = sc.to_gt_grid(est.frame(i))
        aps.append(average_precision_score(gt.positive[gt.evaluated], pred[gt.evaluated]))
        share.append(gt.positive[gt.evaluated].mean())
    # the bar on real video is mAP >= 30 where chance (the mask's share) is ~4-10
    assert np.mean(aps) > 0.5 > 3 * np.mean(share)
