"""Bounded frame cache, thread-safe frame stores, the prefetcher and up-front frame validation."""

import random
import shutil
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import H, W, make_tiny_root, write_png
from PIL import Image

from lmf_gs.config import DataConfig
from lmf_gs.data import Scene
from lmf_gs.data.cache import ArrayCache
from lmf_gs.data.camera import Remap
from lmf_gs.data.frames import FrameStore
from lmf_gs.data.masks import read_png
from lmf_gs.data.prefetch import Prefetcher
from lmf_gs.data.scene import box_downscale
from lmf_gs.data.validate import validate_frames
from lmf_gs.errors import DataError


def test_array_cache_counts_bytes_and_evicts_least_recently_used():
    cache = ArrayCache(550)
    a, b, c = np.zeros(100, np.uint8), np.zeros(50, np.float32), np.zeros(300, np.uint8)
    cache.put("a", a)
    cache.put("b", b)  # 50 float32 = 200 bytes
    assert cache.nbytes == 300 and len(cache) == 2
    assert cache.get("a") is a  # "a" is now the most recently used
    cache.put("c", c)  # 600 > 550: evict the least recently used, "b"
    assert "b" not in cache and cache.nbytes == 400 and cache.stats.evictions == 1
    assert cache.get("b") is None
    cache.put("a", np.zeros(150, np.uint8))  # replacing counts the new size only
    assert cache.nbytes == 450 and len(cache) == 2
    cache.put("huge", np.zeros(551, np.uint8))  # larger than the cap: not kept, nothing evicted
    assert "huge" not in cache and cache.nbytes == 450
    cache.put("d", np.zeros(200, np.uint8))  # 650: "c" (used before the new "a") goes
    assert "c" not in cache and "a" in cache and cache.nbytes == 350
    assert (cache.stats.hits, cache.stats.misses, cache.stats.evictions) == (1, 1, 2)
    nothing = ArrayCache(0)
    nothing.put("a", a)
    assert len(nothing) == 0 and nothing.nbytes == 0


@pytest.mark.parametrize(("shape", "factor"), [((17, 33), 2), ((17, 33, 1), 3), ((16, 32, 3), 2),
                                               ((18, 33, 7), 3)])
def test_box_downscale_is_the_block_mean(shape, factor):
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    h, w = shape[0] // factor, shape[1] // factor
    ref = x[: h * factor, : w * factor].reshape(h, factor, w, factor, *shape[2:]).mean(axis=(1, 3))
    out = box_downscale(x, factor)
    assert out.shape == ref.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=0, atol=2e-7)


def test_scene_caches_uint8_at_working_resolution(tiny):
    scene = Scene(tiny.vid, DataConfig(root=tiny.root, downscale=2))
    for i in range(len(scene)):
        scene.image(i)
        scene.motion_mask(i)
    # 6 frames of 16x8x3 bytes + 5 masks (frame 0 has none) of 16x8 bytes
    assert scene.cache.nbytes == 6 * 16 * 8 * 3 + 5 * 16 * 8 == 2944
    assert scene.cache.get(("rgb", tiny.frames[1])).dtype == np.uint8
    full = Scene(tiny.vid, DataConfig(root=tiny.root, cache_mb=0))
    full.image(0)
    assert full.cache.nbytes == 0
    off = Scene(tiny.vid, DataConfig(root=tiny.root, cache_frames=False))
    off.image(0)
    assert len(off.cache) == 0


@pytest.mark.parametrize("downscale", [1, 2])
def test_uint8_cache_is_within_half_a_level_of_the_float_path(tiny, downscale):
    scene = Scene(tiny.vid, DataConfig(root=tiny.root, downscale=downscale))
    assert scene.raw_intrinsics.has_distortion
    undistort = Remap.undistort(scene.raw_intrinsics)

    def float_path(raw: np.ndarray) -> np.ndarray:  # what Scene returned before: never rounded
        return box_downscale(undistort(raw.astype(np.float32)), downscale) / 255

    for f in tiny.frames[1:]:
        img = scene.image(f)
        ref = float_path(scene.frame_store.read(f))
        assert img.dtype == np.float32 and img.shape == ref.shape
        assert np.abs(img - ref).max() <= 0.5 / 255 + 1e-6
        mask = scene.motion_mask(f)
        ref_mask = float_path(read_png(tiny.root / "motion_masks" / tiny.vid /
                                       f.replace(".jpg", ".png")))
        assert mask.dtype == np.float32 and np.abs(mask - ref_mask).max() <= 0.5 / 255 + 1e-6


def test_absent_masks_are_remembered(tiny, monkeypatch):
    scene = Scene(tiny.vid, DataConfig(root=tiny.root))
    first = tiny.frames[0]
    assert scene.motion_mask(first) is None
    scene.motion_mask(1)
    write_png(tiny.root / "motion_masks" / tiny.vid / first.replace(".jpg", ".png"),
              np.full((H, W), 255, np.uint8))

    def no_lookups(self: Path) -> bool:
        raise AssertionError(f"looked up {self} again")

    monkeypatch.setattr(Path, "is_file", no_lookups)
    assert scene.motion_mask(first) is None  # remembered: no filesystem lookup
    assert scene.motion_mask(1) is not None
    monkeypatch.undo()
    np.testing.assert_allclose(Scene(tiny.vid, DataConfig(root=tiny.root)).motion_mask(first), 1.0)


def test_tar_store_reads_correctly_from_many_threads(tmp_path):
    tar = make_tiny_root(tmp_path / "tar", n=12, as_tar=True)
    ref = make_tiny_root(tmp_path / "ref", n=12)  # same seed: the same JPEG bytes in a folder
    store = FrameStore(tar.root / "frames" / tar.vid)
    expected = {f: (ref.root / "frames" / ref.vid / f).read_bytes() for f in ref.frames}
    orders = [random.Random(k).choices(tar.frames, k=200) for k in range(8)]
    barrier = threading.Barrier(8)

    def read_all(order: list[str]) -> int:
        barrier.wait()
        return sum(store.read_bytes(f) == expected[f] for f in order)

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(read_all, orders)) == [200] * 8
    np.testing.assert_array_equal(store.read(tar.frames[3]),
                                  FrameStore(ref.root / "frames" / ref.vid).read(tar.frames[3]))
    assert store.source(tar.frames[0]) == f"{store.path}:{tar.frames[0]}"


@pytest.mark.parametrize("as_tar", [False, True])
def test_prefetcher_returns_what_direct_reads_return(tmp_path, as_tar):
    t = make_tiny_root(tmp_path / "d", as_tar=as_tar)
    direct = Scene(t.vid, DataConfig(root=t.root, cache_frames=False))
    scene = Scene(t.vid, DataConfig(root=t.root))
    order = [5, 0, 3, 3, 1, 4, 2, 5, 0]
    with Prefetcher(scene, workers=3, masks=True, ahead=4) as pf:
        samples = list(pf.frames(order))
        late = pf.get(2)  # not scheduled: read now (from the cache)
        assert pf.gets == len(order) + 1 and pf.wait_s > 0
    for s, i in zip([*samples, late], [*order, 2], strict=True):
        assert s.index == i and s.image.dtype == np.uint8 and s.image.shape == (H, W, 3)
        np.testing.assert_array_equal(s.image, direct.image_u8(i))
        np.testing.assert_array_equal(s.rgb, direct.image(i))
        if i == 0:  # the first frame has no motion mask
            assert s.mask is None and s.motion is None
        else:
            np.testing.assert_array_equal(s.motion, direct.motion_mask(i))
    assert len(scene.cache) == 6 + 5


@pytest.mark.parametrize("as_tar", [False, True])
def test_corrupt_frame_read_by_a_worker_is_one_data_error(tmp_path, as_tar, capfd):
    t = make_tiny_root(tmp_path / "d")
    folder = t.root / "frames" / t.vid
    bad = folder / t.frames[3]
    bad.write_bytes(bad.read_bytes()[:200])  # truncated JPEG
    if as_tar:
        with tarfile.open(folder.parent / f"{t.vid}.tar", "w") as tf:
            for f in t.frames:
                tf.add(folder / f, arcname=f"./{f}")
        shutil.rmtree(folder)
    scene = Scene(t.vid, DataConfig(root=t.root))
    pf = Prefetcher(scene, workers=2)
    pf.schedule(range(len(scene)))
    for i in range(3):
        pf.get(i)
    with pytest.raises(DataError) as e:
        pf.get(3)
    msg = str(e.value)
    assert "\n" not in msg and t.frames[3] in msg and "cannot decode" in msg
    assert (f"{t.root / 'frames' / t.vid / t.frames[3]}:" in msg if not as_tar
            else f"{t.vid}.tar:{t.frames[3]}:" in msg)
    pf.close()
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err


def test_validate_frames_passes_good_data_and_names_bad_files(tmp_path):
    t = make_tiny_root(tmp_path / "d")
    check = validate_frames(Scene(t.vid, DataConfig(root=t.root)))
    assert (check.frames, check.masks) == (6, 5)
    assert validate_frames(Scene(t.vid, DataConfig(root=t.root)), decode=True).frames == 6
    bad = t.root / "frames" / t.vid / t.frames[4]
    bad.write_bytes(bad.read_bytes()[:-300])  # truncated: no end-of-image marker
    with pytest.raises(DataError, match=rf"{bad}: cannot decode") as e:
        validate_frames(Scene(t.vid, DataConfig(root=t.root)))
    assert "\n" not in str(e.value) and "bad files" not in str(e.value)
    mask = t.root / "motion_masks" / t.vid / t.frames[2].replace(".jpg", ".png")
    write_png(mask, np.zeros((10, 10), np.uint8))
    for decode in (False, True):
        with pytest.raises(DataError) as e:
            validate_frames(Scene(t.vid, DataConfig(root=t.root)), decode=decode)
        assert str(e.value) == (f"{mask}: size 10x10 does not match the camera (32x16 in "
                                f"{t.vid}.json) (2 bad files in all)")


def test_validate_frames_names_a_non_image_and_a_wrong_size_frame(tmp_path):
    t = make_tiny_root(tmp_path / "d", as_tar=False)
    frames = t.root / "frames" / t.vid
    (frames / t.frames[1]).write_bytes(b"not a jpeg")
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(frames / t.frames[5])
    with pytest.raises(DataError) as e:
        validate_frames(Scene(t.vid, DataConfig(root=t.root)))
    assert str(e.value) == (f"{frames / t.frames[1]}: cannot decode (not an image file) "
                            "(2 bad files in all)")
    (frames / t.frames[1]).write_bytes((t.root.parent / "d" / "frames" / t.vid /
                                        t.frames[0]).read_bytes())
    with pytest.raises(DataError, match=rf"{t.frames[5]}: size 12x10 does not match the camera"):
        validate_frames(Scene(t.vid, DataConfig(root=t.root)))
