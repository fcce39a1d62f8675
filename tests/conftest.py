"""Hand-built tiny data roots in the canonical layout (independent of the synthetic generator)."""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"

W, H = 32, 16


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is fastest (and immune to a busy shared CPU)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
DIST = [-0.01, 0.002, 0.001, -0.0015]
K_PARAMS = [20.0, 19.0, 16.0, 8.0]


@dataclass
class TinyRoot:
    root: Path
    vid: str
    frames: list[str]
    test_frames: list[str]
    images: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]


def quat_from_yaw(yaw: float) -> list[float]:
    """Scalar-first quaternion of a rotation by ``yaw`` about the y axis."""
    return [float(np.cos(yaw / 2)), 0.0, float(np.sin(yaw / 2)), 0.0]


def write_png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path)


def make_tiny_root(
    root: Path, vid: str = "P90_01", n: int = 6, as_tar: bool = False, seed: int = 0
) -> TinyRoot:
    """A 32x16 video with non-contiguous frame numbers written in shuffled JSON order."""
    rng = np.random.default_rng(seed)
    numbers = np.cumsum(rng.integers(1, 5, size=n)) + 100
    frames = [f"frame_{k:010d}.jpg" for k in numbers]
    images_json = {}
    for i, f in enumerate(frames):
        q = quat_from_yaw(0.05 * i)
        images_json[f] = [*q, 0.1 * i, 0.0, 0.0]
    order = rng.permutation(n)
    points = rng.normal(size=(200, 3)) * [1.0, 0.5, 0.5] + [0.0, 0.0, 4.0]
    cols = rng.integers(0, 256, size=(200, 3))
    doc = {
        "camera": {"id": 1, "model": "OPENCV", "width": W, "height": H,
                   "params": [*K_PARAMS, *DIST]},
        "images": {frames[i]: images_json[frames[i]] for i in order},
        "points": np.concatenate([points, cols], axis=1).tolist(),
    }
    (root / "epic_fields").mkdir(parents=True, exist_ok=True)
    (root / "epic_fields" / f"{vid}.json").write_text(json.dumps(doc))

    images, masks = {}, {}
    frame_dir = root / "frames" / vid
    frame_dir.mkdir(parents=True, exist_ok=True)
    for f in frames:
        img = rng.integers(0, 256, size=(H, W, 3)).astype(np.uint8)
        images[f] = img
        Image.fromarray(img).save(frame_dir / f, quality=100)
    if as_tar:
        with tarfile.open(root / "frames" / f"{vid}.tar", "w") as tf:
            for f in frames:
                tf.add(frame_dir / f, arcname=f"./{f}")
        for f in frames:
            (frame_dir / f).unlink()
        frame_dir.rmdir()

    test_frames = frames[1::2]
    for f in frames[1:]:  # the first frame has no motion mask
        m = rng.integers(0, 256, size=(H, W)).astype(np.uint8)
        masks[f] = m
        write_png(root / "motion_masks" / vid / f.replace(".jpg", ".png"), m)
    for f in test_frames:
        gt = np.zeros((H, W), np.uint8)
        gt[4:10, 5:15] = 255
        write_png(root / "udos/annotations/test_dynamic" / vid / f.replace(".jpg", ".png"), gt)
        ss = np.zeros((H, W), np.uint8)
        ss[2:6, 20:28] = 1
        ss[6:8, 20:28] = 2
        write_png(root / "udos/annotations/test_semistatic" / vid / f.replace(".jpg", ".png"), ss)
        both = ss.copy()
        both[4:10, 5:15] = 3
        write_png(
            root / "udos/annotations/test_dynamic_semistatic" / vid / f.replace(".jpg", ".png"),
            both,
        )
    split_path = root / "udos" / "split" / "test.json"
    split = json.loads(split_path.read_text()) if split_path.exists() else {}
    split[vid] = {"within_action": test_frames, "outside_action": frames[:1],
                  "outside_action_easy": []}
    split_path.parent.mkdir(parents=True, exist_ok=True)
    split_path.write_text(json.dumps(split))
    return TinyRoot(root, vid, frames, test_frames, images, masks)


@pytest.fixture
def tiny(tmp_path: Path) -> TinyRoot:
    return make_tiny_root(tmp_path / "data")
