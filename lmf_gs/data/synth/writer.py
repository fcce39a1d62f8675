"""Write a synthetic video into the canonical lmf-gs data root (EPIC Fields + UDOS layout)."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lmf_gs.data.synth.camera import rotmat2qvec
from lmf_gs.data.synth.kitchen import Motion
from lmf_gs.data.synth.masks import ground_truth, motion_mask, residual_flow
from lmf_gs.data.synth.render import Frame, Renderer
from lmf_gs.data.synth.scene import KitchenScene

EPIC_FPS = 50.0  # frame rate of EPIC-KITCHENS frame numbers
JPEG_QUALITY = 95
N_POINTS = 4000
POINT_NOISE = 0.003  # metres
WITHIN_FRACTION = 0.135
OUTSIDE_FRACTION = 0.04
MIN_DYNAMIC_FRACTION = 0.003  # of the image, for a frame to count as showing something dynamic
GT_DIRS = {
    "dynamic": "test_dynamic",
    "semistatic": "test_semistatic",
    "dynamic_semistatic": "test_dynamic_semistatic",
}


@dataclass
class SynthResult:
    """What :func:`generate_scene` wrote, plus the scene itself (to re-render ground truth)."""

    vid: str
    root: Path
    frames: list[str]  # registered frame names, time order
    test_frames: list[str]  # the ``within_action`` frames
    split: dict[str, list[str]]  # the video's entry in ``udos/split/test.json``
    seconds: float  # wall-clock time spent generating
    scene: KitchenScene
    duration_s: float  # first to last registered frame, at the video's fps


def _write_frame(root: Path, vid: str, name: str, rgb: np.ndarray,
                 tar: tarfile.TarFile | None) -> None:
    """JPEG to ``frames/{vid}/`` or, as member ``./{name}``, to a reproducible tar archive."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=JPEG_QUALITY)
    data = buf.getvalue()
    if tar is None:
        (root / "frames" / vid / name).write_bytes(data)
        return
    info = tarfile.TarInfo(f"./{name}")
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def _clear(root: Path, vid: str) -> None:
    """Remove a previous rendering of ``vid`` (and nothing else)."""
    dirs = [root / "frames" / vid, root / "motion_masks" / vid,
            root / "udos" / "cache" / "task2-2d" / "test" / "soft_scores" / vid]
    dirs += [root / "udos" / "annotations" / d / vid for d in GT_DIRS.values()]
    for d in dirs:
        if d.exists():
            shutil.rmtree(d)
    (root / "frames" / f"{vid}.tar").unlink(missing_ok=True)


def _save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, compress_level=1)


def _spread(rng: np.random.Generator, count: int, priority: np.ndarray,
            taken: set[int]) -> list[int]:
    """``count`` frames spread over the video: one per block, of the block's highest priority."""
    chosen: list[int] = []
    for block in np.array_split(np.arange(len(priority)), count):
        free = np.array([i for i in block if i not in taken], dtype=int)
        if len(free):
            pick = int(rng.choice(free[priority[free] == priority[free].max()]))
            chosen.append(pick)
            taken.add(pick)
    return sorted(chosen)


def _split(rng: np.random.Generator, names: list[str], dynamic_px: np.ndarray,
           carried_px: np.ndarray, min_px: float) -> dict[str, list[str]]:
    """UDOS test split: ``within_action`` frames show something dynamic (preferably an object
    being carried) and are spread over the video; ``outside_action`` frames are other ones."""
    n = len(names)
    taken: set[int] = set()
    priority = (dynamic_px >= min_px).astype(int) + (carried_px >= min_px)
    within = _spread(rng, max(2, round(WITHIN_FRACTION * n)), priority, taken)
    outside = _spread(rng, max(1, round(OUTSIDE_FRACTION * n)), -priority, taken)
    return {
        "within_action": [names[i] for i in within],
        "outside_action": [names[i] for i in outside],
        "outside_action_easy": [names[i] for i in outside if carried_px[i] == 0],
    }


def _points(scene: KitchenScene, frame: Frame, rng: np.random.Generator, count: int) -> np.ndarray:
    """SfM-like samples ``(m, 6)`` (metric xyz, rgb 0..255) of static surfaces seen in a frame."""
    static = np.array([p.motion is Motion.STATIC for p in scene.parts])
    flat = rng.choice(frame.part.size, size=count, replace=False)
    part = frame.part.reshape(-1)[flat]
    keep = flat[(part >= 0) & static[part]]
    xyz = frame.world.reshape(-1, 3)[keep] + rng.normal(0.0, POINT_NOISE, (len(keep), 3))
    rgb = np.round(255.0 * frame.rgb.reshape(-1, 3)[keep])
    return np.hstack([xyz, rgb])


def _epic_fields(scene: KitchenScene, points: np.ndarray, fps: float | None) -> dict:
    """EPIC Fields JSON: OPENCV camera, world-to-camera poses, coloured sparse points (and the
    frame rate as a top-level ``fps`` key when given)."""
    intr, sim = scene.intrinsics, scene.similarity
    images = {}
    for k, name in enumerate(scene.frame_names):
        r, t = sim.world_to_camera(scene.world_to_camera(k))
        images[name] = [float(v) for v in (*rotmat2qvec(r), *t)]
    xyz = np.round(sim.apply(points[:, :3]), 6)
    return {
        "camera": {"id": 1, "model": "OPENCV", "width": intr.width, "height": intr.height,
                   "params": [float(v) for v in intr.params]},
        "images": images,
        "points": [[*map(float, p), *map(int, c)] for p, c in zip(xyz, points[:, 3:], strict=True)],
        **({} if fps is None else {"fps": fps}),
    }


def _write_udos(root: Path, vid: str, scene: KitchenScene, parts: np.ndarray,
                rng: np.random.Generator) -> dict[str, list[str]]:
    """Choose the test split, write its ground truth and 2D-cache masks, merge ``test.json``."""
    names = scene.frame_names
    truths = [ground_truth(scene, k, parts[k]) for k in range(len(names))]
    dynamic_px = np.array([(t.dynamic > 0).sum() for t in truths])
    carried_px = np.array([np.isin(parts[k], scene.carried(k)).sum() for k in range(len(names))])
    split = _split(rng, names, dynamic_px, carried_px, MIN_DYNAMIC_FRACTION * parts[0].size)
    udos = root / "udos"
    cache = udos / "cache" / "task2-2d" / "test" / "soft_scores" / vid
    cache.mkdir(parents=True)
    for name in sorted(set(split["within_action"]) | set(split["outside_action"])):
        png = name.replace(".jpg", ".png")
        for field, folder in GT_DIRS.items():
            _save_png(udos / "annotations" / folder / vid / png,
                      getattr(truths[names.index(name)], field))
        shutil.copyfile(root / "motion_masks" / vid / png, cache / png)
    split_file = udos / "split" / "test.json"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(split_file.read_text()) if split_file.exists() else {}
    merged[vid] = split
    split_file.write_text(json.dumps(merged, indent=1))
    return split


def generate_scene(
    root: Path, vid: str = "SYN_01", n_frames: int = 120, seed: int = 0, width: int = 456,
    height: int = 256, *, motion: bool = True, frames_as_tar: bool = False,
    stride: int | None = None, fps: float = EPIC_FPS,
) -> SynthResult:
    """Render a synthetic egocentric kitchen video and write it into the data root ``root``.

    Writes EPIC Fields JSON, JPEG frames (folder or tar), soft motion masks for every frame,
    UDOS ground truth for the test split, the split itself (merged into ``test.json``) and the
    motion masks of the test frames in the UDOS 2D-cache layout. Deterministic per ``seed``;
    a previous rendering of the same ``vid`` is replaced, other videos are left alone.

    ``stride`` (registration stride in frame numbers at ``fps``): EPIC's time base, frames
    ``stride`` +- 25% apart and motion at real speed, so 600 frames at stride 25 span 5 minutes.
    Without it (the default, unchanged output), frame numbers advance by 1-4 and the same story
    is stretched over any length. The JSON gets an ``fps`` key with a stride or a non-EPIC fps.
    """
    if n_frames < 8:
        raise ValueError(f"n_frames must be at least 8, got {n_frames}")
    if stride is not None and stride < 1:
        raise ValueError(f"stride must be at least 1 frame, got {stride}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    start = time.perf_counter()
    root = Path(root)
    scene = KitchenScene(seed, n_frames, width, height, motion, stride, fps)
    renderer = Renderer(scene)
    names = scene.frame_names
    _clear(root, vid)
    (root / "frames" / ("" if frames_as_tar else vid)).mkdir(parents=True, exist_ok=True)
    parts = np.empty((n_frames, height, width), dtype=np.int16)
    points = []
    per_frame = min(width * height, int(np.ceil(1.5 * N_POINTS / n_frames)))
    with ExitStack() as stack:
        tar = (stack.enter_context(tarfile.open(root / "frames" / f"{vid}.tar", "w"))
               if frames_as_tar else None)
        for k, name in enumerate(names):
            frame = renderer.render(k)
            _write_frame(root, vid, name, np.round(255.0 * frame.rgb).astype(np.uint8), tar)
            parts[k] = frame.part
            flow = residual_flow(scene, k, frame)
            mask = motion_mask(frame.part, flow, np.random.default_rng([seed, k, 1]))
            _save_png(root / "motion_masks" / vid / name.replace(".jpg", ".png"), mask)
            points.append(_points(scene, frame, np.random.default_rng([seed, k, 2]), per_frame))
    cloud = np.concatenate(points)
    rng = np.random.default_rng([seed, 3])
    if len(cloud) > N_POINTS:
        cloud = cloud[np.sort(rng.choice(len(cloud), N_POINTS, replace=False))]
    fields = root / "epic_fields" / f"{vid}.json"
    fields.parent.mkdir(parents=True, exist_ok=True)
    written_fps = fps if stride is not None or fps != EPIC_FPS else None
    fields.write_text(json.dumps(_epic_fields(scene, cloud, written_fps)))
    split = _write_udos(root, vid, scene, parts, rng)
    return SynthResult(vid, root, names, split["within_action"], split,
                       time.perf_counter() - start, scene, scene.duration_s)
