"""Tests of the synthetic kitchen-video generator (tiny scenes, a few seconds in all)."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lmf_gs.data.synth.camera import Intrinsics, qvec2rotmat, random_rotation, rotmat2qvec
from lmf_gs.data.synth.kitchen import COUNTER_TOP, Motion
from lmf_gs.data.synth.masks import ground_truth
from lmf_gs.data.synth.render import Renderer
from lmf_gs.data.synthetic import SynthResult, generate_scene

W, H, N = 114, 64, 16
GT_DIRS = ("test_dynamic", "test_semistatic", "test_dynamic_semistatic")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return generate_scene(tmp_path_factory.mktemp("root"), "SYN_A", N, seed=3, width=W, height=H)


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def _size_mode(path: Path) -> tuple[tuple[int, int], str]:
    with Image.open(path) as image:
        return image.size, image.mode


def _colmap_project(params: list[float], pose: list[float], xyz: np.ndarray) -> np.ndarray:
    """Independent COLMAP OPENCV projection of world points ``(n, 3)`` to pixels ``(n, 2)``."""
    w, x, y, z = pose[:4]
    r = np.array([
        [1 - 2 * y * y - 2 * z * z, 2 * x * y - 2 * w * z, 2 * z * x + 2 * w * y],
        [2 * x * y + 2 * w * z, 1 - 2 * x * x - 2 * z * z, 2 * y * z - 2 * w * x],
        [2 * z * x - 2 * w * y, 2 * y * z + 2 * w * x, 1 - 2 * x * x - 2 * y * y],
    ])
    cam = xyz @ r.T + np.asarray(pose[4:])
    fx, fy, cx, cy, k1, k2, p1, p2 = params
    u, v = cam[:, 0] / cam[:, 2], cam[:, 1] / cam[:, 2]
    r2 = u * u + v * v
    radial = 1 + k1 * r2 + k2 * r2 * r2
    ud = u * radial + 2 * p1 * u * v + p2 * (r2 + 2 * u * u)
    vd = v * radial + p1 * (r2 + 2 * v * v) + 2 * p2 * u * v
    return np.stack([fx * ud + cx, fy * vd + cy], axis=1)


def test_layout_files_and_formats(result: SynthResult) -> None:
    root, vid = result.root, result.vid
    fields = json.loads((root / "epic_fields" / f"{vid}.json").read_text())
    assert set(fields) == {"camera", "images", "points"}
    cam = fields["camera"]
    assert (cam["id"], cam["model"], cam["width"], cam["height"]) == (1, "OPENCV", W, H)
    assert len(cam["params"]) == 8
    fx, fy, cx, cy, *dist = cam["params"]
    assert (cx, cy) == (W / 2, H / 2)
    assert fx == pytest.approx(0.525 * W, rel=0.05) and fy == pytest.approx(0.95 * H, rel=0.05)
    assert all(0 < abs(d) < 0.01 for d in dist)
    names = list(fields["images"])
    assert names == result.frames and len(names) == N
    assert all(re.fullmatch(r"frame_\d{10}\.jpg", n) for n in names)
    numbers = np.array([int(n[6:16]) for n in names])
    assert (np.diff(numbers) > 0).all() and (np.diff(numbers) > 1).any()
    for pose in fields["images"].values():
        assert len(pose) == 7 and np.linalg.norm(pose[:4]) == pytest.approx(1.0)
    points = np.array(fields["points"])
    assert points.shape[1] == 6 and 1000 <= len(points) <= 5000
    seen = np.zeros(len(points), dtype=bool)
    for pose in fields["images"].values():
        uv = _colmap_project(cam["params"], pose, points[:, :3])
        seen |= (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
    assert seen.mean() > 0.99
    assert all(isinstance(c, int) and 0 <= c <= 255 for p in fields["points"][:50] for c in p[3:])

    split = json.loads((root / "udos" / "split" / "test.json").read_text())[vid]
    assert set(split) == {"within_action", "outside_action", "outside_action_easy"}
    assert split["within_action"] == result.test_frames and len(result.test_frames) == 2
    assert set(split["outside_action_easy"]) <= set(split["outside_action"])
    assert not set(split["within_action"]) & set(split["outside_action"])
    for name in names:
        png = name.replace(".jpg", ".png")
        assert _size_mode(root / "frames" / vid / name) == ((W, H), "RGB")
        assert _size_mode(root / "motion_masks" / vid / png) == ((W, H), "L")
    cache = root / "udos" / "cache" / "task2-2d" / "test" / "soft_scores" / vid
    for name in split["within_action"] + split["outside_action"]:
        png = name.replace(".jpg", ".png")
        for folder in GT_DIRS:
            assert _size_mode(root / "udos" / "annotations" / folder / vid / png) == ((W, H), "L")
        assert (cache / png).read_bytes() == (root / "motion_masks" / vid / png).read_bytes()


def test_deterministic_per_seed(result: SynthResult, tmp_path: Path) -> None:
    again = generate_scene(tmp_path / "a", "SYN_A", N, seed=3, width=W, height=H)
    other = generate_scene(tmp_path / "b", "SYN_A", N, seed=4, width=W, height=H)
    files = sorted(p.relative_to(result.root) for p in result.root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again.root) for p in again.root.rglob("*") if p.is_file())
    for rel in files:
        assert (result.root / rel).read_bytes() == (again.root / rel).read_bytes(), rel
    fields = Path("epic_fields/SYN_A.json")
    assert (result.root / fields).read_bytes() != (other.root / fields).read_bytes()
    assert result.frames != other.frames
    assert not np.array_equal(_png(result.root / "frames/SYN_A" / result.frames[0]),
                              _png(other.root / "frames/SYN_A" / other.frames[0]))


def test_camera_model_round_trips() -> None:
    rng = np.random.default_rng(0)
    intr = Intrinsics(456, 256, 239.6, 243.1, 228.0, 128.0, -0.00135, 0.00018, 0.00085, -0.00061)
    xy = rng.uniform(-1.2, 1.2, (1000, 2))
    assert np.abs(intr.distort(intr.undistort(xy)) - xy).max() < 1e-12
    r = random_rotation(rng)
    q = rotmat2qvec(r)
    assert q[0] >= 0 and np.abs(qvec2rotmat(q) - r).max() < 1e-12


def test_written_poses_reproject_rendered_pixels(result: SynthResult) -> None:
    """Rendered surface points, written-world + JSON pose + OPENCV model → their pixel centre."""
    fields = json.loads((result.root / "epic_fields" / f"{result.vid}.json").read_text())
    params, sim = fields["camera"]["params"], result.scene.similarity
    renderer = Renderer(result.scene)
    rng = np.random.default_rng(0)
    for k in (0, N // 2, N - 1):
        frame = renderer.render(k)
        rows, cols = rng.integers(0, H, 200), rng.integers(0, W, 200)
        xyz = sim.apply(frame.world[rows, cols])
        uv = _colmap_project(params, fields["images"][result.frames[k]], xyz)
        assert np.abs(uv - np.stack([cols + 0.5, rows + 0.5], axis=1)).max() < 1e-3


def test_static_object_centre_projects_onto_object(result: SynthResult) -> None:
    fields = json.loads((result.root / "epic_fields" / f"{result.vid}.json").read_text())
    params, sc = fields["camera"]["params"], result.scene
    renderer = Renderer(sc)
    frames = [renderer.render(k) for k in range(N)]
    objects = [i for i, p in enumerate(sc.parts)
               if p.motion is Motion.STATIC and p.pose[2, 3] == COUNTER_TOP]
    best = max(objects, key=lambda i: sum((f.part == i).sum() for f in frames))
    part = sc.parts[best]
    centre = part.pose[:3, :3] @ part.mesh.vertices.mean(axis=0) + part.pose[:3, 3]
    xyz = sc.similarity.apply(centre[None])
    hits = []
    for k, frame in enumerate(frames):
        u, v = _colmap_project(params, fields["images"][result.frames[k]], xyz)[0]
        if 0 <= u < W and 0 <= v < H and (frame.part == best).sum() > 20:
            hits.append(frame.part[int(v), int(u)] == best)
    assert len(hits) >= 3 and np.mean(hits) >= 0.8


def test_ground_truth_labels(result: SynthResult) -> None:
    ann = result.root / "udos" / "annotations"
    split = result.split["within_action"] + result.split["outside_action"]
    resting_seen = False
    for name in split:
        png = name.replace(".jpg", ".png")
        dyn, semi, both = (_png(ann / d / result.vid / png) for d in GT_DIRS)
        assert set(np.unique(dyn)) <= {0, 255}
        assert set(np.unique(semi)) <= {0, 1, 2} and set(np.unique(both)) <= {0, 1, 2, 3}
        assert np.array_equal(both == 3, (dyn == 255) & (both != 1))
        assert ((semi == 1) <= (both == 1)).all() and not ((semi == 1) & (dyn == 255)).any()
        assert ((both == 1) <= ((semi == 1) | (dyn == 255))).all()
        resting_seen |= bool((semi == 1).any())
        if name in result.test_frames:
            assert (dyn == 255).sum() >= 0.003 * W * H
    assert resting_seen


def test_ground_truth_follows_part_motion(result: SynthResult) -> None:
    """Labels per part kind: hands 3, carried 1 (+255), resting semi-static 1, nudged 2, and a
    thin ambiguous band only around objects at their grasp/release frames."""
    sc = result.scene
    renderer = Renderer(sc)
    kinds = np.array([p.motion for p in sc.parts], dtype=object)
    seen_band = seen_carried = False
    for k in range(N):
        part = renderer.render(k).part
        truth = ground_truth(sc, k, part)
        kind = kinds[part]
        carried = np.isin(part, sc.carried(k))
        hand, nudged = kind == Motion.HAND, kind == Motion.NUDGED
        resting = (kind == Motion.SEMI_STATIC) & ~carried
        assert np.array_equal(truth.dynamic == 255, hand | carried)
        assert (truth.dynamic_semistatic[hand] == 3).all()
        assert (truth.dynamic_semistatic[carried | resting] == 1).all()
        assert (truth.semistatic[resting] == 1).all() and (truth.semistatic[carried] == 0).all()
        assert (truth.semistatic[nudged] == 2).all()
        assert (truth.dynamic_semistatic[nudged] == 2).all()
        band = (truth.semistatic == 2) & ~nudged
        assert np.array_equal(band, (truth.dynamic_semistatic == 2) & ~nudged)
        if band.any():
            assert k in sc.transitions and (kind[band] == Motion.STATIC).all()
            seen_band = True
        seen_carried |= bool(carried.any())
    assert seen_band and seen_carried


def test_motion_masks_precise_but_incomplete(tmp_path: Path) -> None:
    res = generate_scene(tmp_path, "MG", 20, seed=1, width=228, height=128)
    sc = res.scene
    renderer = Renderer(sc)
    hit = total = covered = positives = resting_sum = resting_n = 0.0
    for k, name in enumerate(res.frames):
        part = renderer.render(k).part
        truth = ground_truth(sc, k, part)
        mask = _png(res.root / "motion_masks" / "MG" / name.replace(".jpg", ".png")) / 255.0
        dyn = truth.dynamic == 255
        hit += mask[dyn].sum()
        total += mask.sum()
        covered += (mask[dyn] > 0.5).sum()
        positives += dyn.sum()
        resting = truth.semistatic == 1
        resting_sum += mask[resting].sum()
        resting_n += resting.sum()
    assert hit / total > 0.75
    assert 0.2 < covered / positives < 0.9
    assert resting_n > 0 and resting_sum / resting_n < 0.05


def test_static_scene_has_no_motion(tmp_path: Path) -> None:
    res = generate_scene(tmp_path, "STATIC", 12, seed=2, width=W, height=H, motion=False)
    assert all(p.motion is Motion.STATIC for p in res.scene.parts)
    assert not any(p.name.startswith("hand") for p in res.scene.parts)
    for name in res.frames:
        assert _png(tmp_path / "motion_masks" / "STATIC" / name.replace(".jpg", ".png")).max() == 0
    for name in res.split["within_action"]:
        for folder in GT_DIRS:
            png = tmp_path / "udos" / "annotations" / folder / "STATIC" / name.replace("jpg", "png")
            assert _png(png).max() == 0


def test_frames_as_tar_and_merged_split(tmp_path: Path) -> None:
    first = generate_scene(tmp_path, "ONE", 12, seed=5, width=W, height=H)
    second = generate_scene(tmp_path, "TWO", 12, seed=6, width=W, height=H, frames_as_tar=True)
    assert not (tmp_path / "frames" / "TWO").exists()
    with tarfile.open(tmp_path / "frames" / "TWO.tar") as tar:
        assert tar.getnames() == [f"./{n}" for n in second.frames]
        member = tar.extractfile(f"./{second.frames[0]}")
        assert member is not None
        with Image.open(member) as image:
            assert image.size == (W, H)
    split = json.loads((tmp_path / "udos" / "split" / "test.json").read_text())
    assert split["ONE"] == first.split and split["TWO"] == second.split
    assert all((tmp_path / "frames" / "ONE" / n).exists() for n in first.frames)


def test_static_appearance_is_multi_view_consistent(tmp_path: Path) -> None:
    """A static surface point has the same colour in two views (Lambert + solid textures)."""
    res = generate_scene(tmp_path, "MV", 10, seed=7, width=228, height=128, motion=False)
    sc = res.scene
    renderer = Renderer(sc)
    a, b = renderer.render(4), renderer.render(5)
    w2c = sc.world_to_camera(5)
    cam = a.world.reshape(-1, 3) @ w2c[:3, :3].T + w2c[:3, 3]
    uv = np.floor(sc.intrinsics.project(cam)).astype(int)
    inside = (uv >= 0).all(axis=1) & (uv[:, 0] < 228) & (uv[:, 1] < 128) & (cam[:, 2] > 0)
    src = np.flatnonzero(inside)
    dst = b.world[uv[src, 1], uv[src, 0]]
    visible = np.linalg.norm(dst - a.world.reshape(-1, 3)[src], axis=1) < 0.01
    assert visible.mean() > 0.5
    diff = np.abs(b.rgb[uv[src, 1], uv[src, 0]] - a.rgb.reshape(-1, 3)[src])[visible]
    assert np.median(diff) < 0.02
