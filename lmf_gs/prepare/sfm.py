"""Structure-from-motion with pycolmap: SIFT, sequential matching (+ optional loop closure),
incremental (COLMAP) or global (GLOMAP) mapping, one shared camera; the largest model converted
to EPIC Fields terms.

Every pycolmap call runs in a worker thread with a cancellation token, so Ctrl-C stops it
promptly, and in chunks, so each stage reports its progress.
"""

from __future__ import annotations

import shutil
import threading
import time

# zlib before pycolmap: pycolmap's core exports zlib symbols of its own, and a system libz.so.1
# first loaded as pycolmap's dependency binds its internal calls to them (heap corruption in
# every later PNG write by Pillow). Loaded here first, libz resolves to itself.
import zlib  # noqa: F401  (load order, see above)
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pycolmap
from rich.progress import Progress, TaskID
from scipy.spatial.transform import Rotation

from lmf_gs.data.camera import Intrinsics, intrinsics_from_colmap
from lmf_gs.errors import LmfError
from lmf_gs.prepare.alignment import pose_jumps

# models COLMAP estimates stably on video, all expressible as OPENCV (fx fy cx cy k1 k2 p1 p2)
CAMERA_MODELS = ("SIMPLE_RADIAL", "RADIAL", "OPENCV", "SIMPLE_PINHOLE", "PINHOLE")
MAPPERS = ("auto", "incremental", "global")
EXTRACT_CHUNK = 16  # images per feature-extraction call
MATCH_CHUNK = 64  # image pairs per matching call
PYCOLMAP_VERSION = pycolmap.__version__


@dataclass(frozen=True)
class SfmOptions:
    """pycolmap settings. ``threads`` -1: all cores. ``loop_period``: with ``loop_closure``,
    every ``loop_period``-th frame is also matched with all the other such key frames.
    Incremental mapping depends on its random seed (and thread timing) on hard videos, e.g. a
    panning camera with little parallax, where it may split the video into several models:
    while the best model holds fewer than ``retry_below`` of the frames, mapping is run again,
    ``mapper_tries`` times in all, and the model with the most frames is kept. ``mapper``:
    ``incremental`` or ``global`` (GLOMAP) with seeds ``seed, seed + 1, ...``, or ``auto``:
    incremental, then global, then incremental with the next seed, ..."""

    camera_model: str = "SIMPLE_RADIAL"
    overlap: int = 10
    loop_closure: bool = False
    loop_period: int = 10
    threads: int = -1
    seed: int = 0
    mapper: str = "auto"
    mapper_tries: int = 3
    retry_below: float = 0.95
    min_model_size: int = 3

    def __post_init__(self) -> None:
        if self.camera_model not in CAMERA_MODELS:
            raise LmfError(f"camera model {self.camera_model!r}: expected one of "
                           f"{', '.join(CAMERA_MODELS)}")
        if self.overlap < 1:
            raise LmfError(f"--overlap must be at least 1, got {self.overlap}")
        if self.mapper not in MAPPERS:
            raise LmfError(f"mapper {self.mapper!r}: expected one of {', '.join(MAPPERS)}")
        if self.mapper_tries < 1:
            raise LmfError(f"--mapper-tries must be at least 1, got {self.mapper_tries}")
        if self.loop_period < 2:
            raise LmfError(f"loop period must be at least 2, got {self.loop_period}")


@dataclass
class SfmResult:
    """The largest reconstruction: COLMAP's camera, its OPENCV equivalent, world-to-camera poses
    ``{name: [qw, qx, qy, qz, tx, ty, tz]}``, points ``[P, 6]`` (xyz, rgb 0..255)."""

    camera_model: str
    camera_params: list[float]
    intrinsics: Intrinsics
    poses: dict[str, list[float]]
    points: np.ndarray
    reprojection_error: float
    model_sizes: list[int]  # registered images of every model of the kept try, kept one first
    kept_model: str  # its folder under ``sparse/``
    pairs: int
    tries: list[dict]  # per mapping try: mapper, seed, model sizes, seconds
    seconds: dict[str, float] = field(default_factory=dict)


def _cancellable(fn: Callable[..., Any], *args: Any, cancellable: bool = True,
                 **kwargs: Any) -> Any:
    """``fn(*args, **kwargs, cancellation_token=...)`` in a worker thread (pycolmap releases the
    GIL); Ctrl-C in the main thread cancels it, waits for it and re-raises. Without
    ``cancellable`` (no token), Ctrl-C re-raises at once and the daemon thread dies with the
    process."""
    token = pycolmap.CancellationToken()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            extra = {"cancellation_token": token} if cancellable else {}
            box["value"] = fn(*args, **kwargs, **extra)
        except BaseException as e:
            box["error"] = e

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except BaseException:
        if cancellable:
            token.cancel()
            worker.join()
        raise
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _extract(db: Path, image_dir: Path, names: list[str], opts: SfmOptions,
             bar: Progress, task: TaskID) -> None:
    """SIFT features of ``names`` into ``db``; the first chunk creates the shared camera."""
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = opts.camera_model
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = opts.threads
    for start in range(0, len(names), EXTRACT_CHUNK):
        chunk = names[start:start + EXTRACT_CHUNK]
        _cancellable(pycolmap.extract_features, db, image_dir, image_names=chunk,
                     camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
                     extraction_options=extraction)
        if start == 0:
            database = pycolmap.Database.open(db)
            reader.existing_camera_id = database.read_all_cameras()[0].camera_id
            database.close()
        bar.advance(task, len(chunk))


def image_pairs(names: list[str], db: Path, opts: SfmOptions) -> list[tuple[str, str]]:
    """COLMAP's sequential pairs (``overlap`` neighbours + quadratic overlap) and, with loop
    closure, all pairs of key frames (every ``loop_period``-th) not already among them."""
    pairing = pycolmap.SequentialPairingOptions()
    pairing.overlap = opts.overlap
    database = pycolmap.Database.open(db)
    try:
        ids = {im.image_id: im.name for im in database.read_all_images()}
        sequential = pycolmap.SequentialPairGenerator(pairing, database).all_pairs()
    finally:
        database.close()
    pairs = [(ids[a], ids[b]) for a, b in sequential]
    if opts.loop_closure:
        seen = {frozenset(p) for p in pairs}
        keys = names[::opts.loop_period]
        pairs += [(a, b) for i, a in enumerate(keys) for b in keys[i + 1:]
                  if frozenset((a, b)) not in seen]
    return pairs


def _match(db: Path, pairs: list[tuple[str, str]], work: Path, opts: SfmOptions,
           bar: Progress, task: TaskID) -> None:
    """Match and geometrically verify ``pairs`` (SIFT brute force, CPU)."""
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = opts.threads
    pairing = pycolmap.ImportedPairingOptions()
    pair_file = work / "pairs.txt"
    pairing.match_list_path = str(pair_file)
    for start in range(0, len(pairs), MATCH_CHUNK):
        chunk = pairs[start:start + MATCH_CHUNK]
        pair_file.write_text("".join(f"{a} {b}\n" for a, b in chunk))
        _cancellable(pycolmap.match_image_pairs, db, matching_options=matching,
                     pairing_options=pairing)
        bar.advance(task, len(chunk))
    pair_file.write_text("".join(f"{a} {b}\n" for a, b in pairs))  # all of them, for the record


def _map(db: Path, image_dir: Path, sparse: Path, opts: SfmOptions, mapper: str, seed: int,
         bar: Progress, task: TaskID) -> dict[int, pycolmap.Reconstruction]:
    """Incremental (the bar counts registrations) or global (GLOMAP: rotation averaging, then
    global positioning) mapping into ``sparse/{k}``."""
    sparse.mkdir(parents=True)
    if mapper == "global":
        options = pycolmap.GlobalPipelineOptions()
        options.num_threads = opts.threads
        options.random_seed = seed
        options.min_model_size = opts.min_model_size
        # no cancellation token in pycolmap's global_mapping: Ctrl-C stops waiting for it
        return _cancellable(pycolmap.global_mapping, db, image_dir, sparse, options=options,
                            cancellable=False)
    options = pycolmap.IncrementalPipelineOptions()
    options.num_threads = opts.threads
    options.random_seed = seed
    options.min_model_size = opts.min_model_size
    return _cancellable(pycolmap.incremental_mapping, db, image_dir, sparse, options=options,
                        next_image_callback=lambda: bar.advance(task, 1))


def _registered(models: dict[int, pycolmap.Reconstruction]) -> int:
    return max((m.num_reg_images() for m in models.values()), default=0)


def _good_frames(models: dict[int, pycolmap.Reconstruction]) -> int:
    """Frames of the largest model less one per abrupt turn (`pose_jumps`)."""
    if not models:
        return 0
    poses, _ = _convert(max(models.values(), key=lambda m: m.num_reg_images()))
    return len(poses) - len(pose_jumps(poses))


def mapping_plan(opts: SfmOptions) -> list[tuple[str, int]]:
    """(mapper, seed) of each try: ``auto`` alternates incremental and global mapping."""
    seeds = range(opts.seed, opts.seed + opts.mapper_tries)
    if opts.mapper != "auto":
        return [(opts.mapper, s) for s in seeds]
    return [(m, s) for s in seeds for m in ("incremental", "global")][:opts.mapper_tries]


def _map_tries(db: Path, image_dir: Path, work: Path, n_frames: int, opts: SfmOptions,
               bar: Progress, log: Callable[[str], object]
               ) -> tuple[dict[int, pycolmap.Reconstruction], list[dict]]:
    """Map along `mapping_plan` until the largest model holds ``retry_below`` of the frames
    (less one per abrupt turn, a likely mis-registration); the try with the most such frames
    (the first among equals) ends up in ``work/sparse/``."""
    tries: list[dict] = []
    best: tuple[int, dict[int, pycolmap.Reconstruction], Path] | None = None
    plan = mapping_plan(opts)
    for i, (mapper, seed) in enumerate(plan):
        start = time.perf_counter()
        task = bar.add_task(f"{mapper} mapping, seed {seed} (registered)",
                            total=n_frames if mapper == "incremental" else None)
        folder = work / "tries" / str(i)
        models = _map(db, image_dir, folder, opts, mapper, seed, bar, task)
        bar.update(task, total=n_frames, completed=_registered(models))
        sizes = sorted((m.num_reg_images() for m in models.values()), reverse=True)
        tries.append({"mapper": mapper, "seed": seed, "models": sizes,
                      "seconds": time.perf_counter() - start})
        log(f"{mapper} mapping (seed {seed}): {len(models)} model(s) of "
            f"{', '.join(map(str, sizes)) or 0} frames ({tries[-1]['seconds']:.1f} s)")
        good = _good_frames(models)
        if best is None or good > best[0]:
            best = (good, models, folder)
        if best[0] >= opts.retry_below * n_frames:
            break
        if i + 1 < len(plan):
            log(f"fewer than {opts.retry_below:.0%} of the frames registered smoothly: "
                f"{plan[i + 1][0]} mapping with seed {plan[i + 1][1]}")
    assert best is not None
    best[2].rename(work / "sparse")
    shutil.rmtree(work / "tries")
    return best[1], tries


def _opencv_intrinsics(camera: pycolmap.Camera) -> Intrinsics:
    return intrinsics_from_colmap(camera.model.name, camera.width, camera.height,
                                  [float(v) for v in camera.params])


def _convert(rec: pycolmap.Reconstruction) -> tuple[dict[str, list[float]], np.ndarray]:
    """World-to-camera poses (scalar-first quaternion, qw >= 0) and coloured points."""
    poses = {}
    for image in rec.images.values():
        if not image.has_pose:
            continue
        m = image.cam_from_world().matrix()
        q = Rotation.from_matrix(m[:, :3]).as_quat(scalar_first=True)
        q = -q if q[0] < 0 else q
        poses[image.name] = [float(v) for v in (*q, *m[:, 3])]
    points = np.array([[*p.xyz, *p.color] for p in rec.points3D.values()],
                      dtype=np.float64).reshape(-1, 6)
    return poses, points


def run_sfm(image_dir: Path, names: list[str], work: Path, opts: SfmOptions, bar: Progress,
            label: str, log: Callable[[str], object] = print) -> SfmResult:
    """SfM of ``image_dir/names`` (time order) with the database and models in ``work``;
    ``log`` gets one line per finished stage. Raises `LmfError` (naming ``label``) when no
    model could be built."""
    pycolmap.set_random_seed(opts.seed)
    db = work / "database.db"
    seconds: dict[str, float] = {}
    old_level = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = 3  # failures come back as results or exceptions
    try:
        start = time.perf_counter()
        task = bar.add_task("SIFT features", total=len(names))
        _extract(db, image_dir, names, opts, bar, task)
        seconds["features"] = time.perf_counter() - start
        log(f"features: {len(names)} frames ({seconds['features']:.1f} s)")

        start = time.perf_counter()
        pairs = image_pairs(names, db, opts)
        task = bar.add_task("matching", total=len(pairs))
        _match(db, pairs, work, opts, bar, task)
        seconds["matching"] = time.perf_counter() - start
        log(f"matching: {len(pairs)} image pairs ({seconds['matching']:.1f} s)")

        start = time.perf_counter()
        models, tries = _map_tries(db, image_dir, work, len(names), opts, bar, log)
        seconds["mapping"] = time.perf_counter() - start
    finally:
        pycolmap.logging.minloglevel = old_level
    if not models:
        raise LmfError(f"{label}: structure-from-motion failed: no initial image pair among "
                       f"{len(names)} frames (too little texture, overlap or camera motion)")
    order = sorted(models, key=lambda k: (models[k].num_reg_images(),
                                          models[k].num_points3D(), k), reverse=True)
    rec = models[order[0]]
    camera = next(iter(rec.cameras.values()))
    poses, points = _convert(rec)
    return SfmResult(
        camera_model=camera.model.name,
        camera_params=[float(v) for v in camera.params],
        intrinsics=_opencv_intrinsics(camera),
        poses=poses,
        points=points,
        reprojection_error=float(rec.compute_mean_reprojection_error()),
        model_sizes=[models[k].num_reg_images() for k in order],
        kept_model=str(order[0]),
        pairs=len(pairs),
        tries=tries,
        seconds=seconds,
    )
