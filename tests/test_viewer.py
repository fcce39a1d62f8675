"""The web viewer: camera conversion, render function and state without a browser, the server's
port and Ctrl-C handling, and the page itself in headless Chromium (skipped without one)."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cli.app import run_config
from cli.main import app
from lmf_gs.data.scene import Scene
from lmf_gs.errors import LmfError
from lmf_gs.viewer.camera import ViewCamera, intrinsics, pose_of, render_size, vertical_fov
from lmf_gs.viewer.render import FAR, compose, render_view
from lmf_gs.viewer.server import Sizes, Viewer
from lmf_gs.viewer.source import LAYER_COLORS, LayerImages, open_run
from lmf_gs.viewer.state import LAYERS, MODES, ViewerState

VID = "SYN_T"
TRAIN = ["--config", "gs_cpu", "--set", "data.downscale=1", "--set", "train.iters=30",
         "--set", "train.densify_from=1000", "--set", "train.log_every=10",
         "--set", "train.warmup=0", "--set", "model.n_static=1000",
         "--set", "model.n_semistatic=20", "--set", "model.n_dynamic=10",
         "--set", "model.init_opacity_nonstatic=0.2"]
REFINE = ["--set", "refine.iters_per_frame=1", "--set", "refine.min_iters=2"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 12-frame synthetic video, a 30-iteration run and one refinement run of it. 30 steps
    leave big blurry Gaussians, so the trained model (as held by the source) gets an opaque
    static set and smaller, opaque non-static ones: every layer is then visible in part."""
    base = tmp_path_factory.mktemp("viewer")
    root, out = base / "data", base / "runs"
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    where = ["--scene", VID, "--data-root", str(root), "--out", str(out)]
    for args in (["synth", str(root), "--vid", VID, "--frames", "12", "--width", "114",
                  "--height", "64", "--seed", "3"], ["train", *where, *TRAIN],
                 ["refine", *where, *REFINE]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
    train_dir = out / VID / "gs"
    cfg = run_config(train_dir, None, None, root)
    src, first = open_run(train_dir, cfg, VID)
    sets = src.model(first).sets
    with torch.no_grad():
        sets["static"]["opacities"] += 3.0
        for name in ("semistatic", "dynamic"):
            sets[name]["scales"] -= math.log(4.0)
            sets[name]["opacities"] += 2.0
    yield src, first, train_dir, cfg, root, out
    torch.set_num_threads(n)


def at_frame(rec, i: int, width: int | None = None, height: int | None = None) -> ViewCamera:
    """The browser camera that "go to frame camera" makes for frame ``i``."""
    wxyz, pos = pose_of(rec.w2c[i])
    return ViewCamera(wxyz, pos, vertical_fov(rec.K, rec.height), width or rec.width,
                      height or rec.height)


@torch.no_grad()
def model_render(model, backend: str, t: float, w2c: np.ndarray, K: np.ndarray, width: int,
                 height: int, layers: tuple[str, ...] = LAYERS):
    """`model.render` of one camera (numpy in)."""
    return model.render(torch.tensor([t]).float(), torch.tensor(w2c[None]).float(),
                        torch.tensor(K[None]).float(), width, height, backend, layers=layers)


# -- camera and state ---------------------------------------------------------------------------

def test_pose_and_intrinsics_round_trip(run):
    rec = run[0].recording
    for i in range(len(rec)):
        cam = at_frame(rec, i)
        np.testing.assert_allclose(cam.w2c(), rec.w2c[i], atol=1e-9)
        np.testing.assert_allclose(cam.c2w()[:3, 3], rec.c2w[i][:3, 3], atol=1e-9)
    K = intrinsics(vertical_fov(rec.K, rec.height), rec.width, rec.height)
    assert K[1, 1] == pytest.approx(rec.K[1, 1])
    assert K[0, 0] == K[1, 1] and tuple(K[:2, 2]) == (rec.width / 2, rec.height / 2)
    # the browser's up (-Y) of a frame camera is the recording's up within the video's motion
    assert float(rec.up() @ -rec.c2w[0][:3, 1]) > 0.9
    assert render_size(1280, 720, 320) == (320, 180)
    assert render_size(200, 100, 960) == (200, 100)  # never up-sampled


def test_slider_frame_time(run):
    src, _, _, cfg, _, _ = run
    rec, scene = src.recording, Scene(VID, cfg.data)
    np.testing.assert_array_equal(rec.times, scene.times)
    assert rec.names == tuple(scene.frames)
    s = ViewerState(len(rec))
    for k in (0, 5, len(rec) - 1):
        assert s.with_frame(k).frame == k
        assert s.with_frame(k).time(rec) == pytest.approx(float(scene.times[k]))
    assert s.with_frame(-3).frame == 0 and s.with_frame(99).frame == len(rec) - 1
    assert s.with_frame(len(rec) - 1).step().frame == 0  # play wraps around
    assert s.with_frame(2).step(3).frame == 5
    assert s.with_layer("dynamic", False).shown_layers() == ("static", "semistatic")
    assert s.with_layer("dynamic", False).with_layer("dynamic", True) == s
    with pytest.raises(ValueError):
        s.with_mode("normals")
    with pytest.raises(ValueError):
        s.with_layer("hands", True)


# -- render function ----------------------------------------------------------------------------

def test_view_at_recorded_pose_reproduces_model_render(run):
    src, first = run[0], run[1]
    rec, model = src.recording, src.model(first)
    for i in (0, 7):
        cam = at_frame(rec, i)
        view = render_view(model, rec, ViewerState(len(rec)).with_frame(i), cam, rec.width,
                           rec.height, src.backend)
        K = intrinsics(cam.fov, rec.width, rec.height)
        ref = model_render(model, src.backend, rec.times[i], rec.w2c[i], K, rec.width,
                           rec.height)
        for name in ("rgb", "masks", "depth", "alpha"):
            # the same up to float32 round-off of the pose (which can flip a Gaussian over
            # the 1/255 opacity cut-off at a pixel or two)
            diff = np.abs(getattr(view.layers, name) - getattr(ref, name)[0].numpy())
            assert diff.max() < 5e-3 and diff.mean() < 1e-5, name
        assert view.image.shape == (rec.height, rec.width, 3) and view.image.dtype == np.uint8
        assert view.layers.masks[..., 2].mean() > 0.05  # the dynamic set is in view


def test_dynamic_layer_stays_where_its_frame_recorded_it(run):
    src, first = run[0], run[1]
    rec, model = src.recording, src.model(first)
    i, state = 4, ViewerState(len(rec)).with_frame(4)
    cam = at_frame(rec, i)
    c2w = cam.c2w()
    c2w[:3, 3] += c2w[:3, 0] * 0.05 * float(model.scene_scale)  # step right
    moved = dataclasses.replace(cam, position=tuple(c2w[:3, 3]))
    here = render_view(model, rec, state, cam, rec.width, rec.height, src.backend)
    there = render_view(model, rec, state, moved, rec.width, rec.height, src.backend)
    # seen from elsewhere, the dynamic layer moves in the image (it is anchored in the world)...
    assert np.abs(here.layers.masks[..., 2] - there.layers.masks[..., 2]).mean() > 0.01
    # ...whereas `model.render` carries it along with whichever camera renders
    K = intrinsics(cam.fov, rec.width, rec.height)
    a, b = (model_render(model, src.backend, rec.times[i], c.w2c(), K, rec.width, rec.height,
                         ("dynamic",)).masks[0, ..., 2] for c in (cam, moved))
    # (float32 round-off of the two world round trips can move one Gaussian across a pixel)
    assert float((a - b).abs().mean()) < 1e-5 and float((a - b).abs().max()) < 1e-2


def test_layer_toggles_remove_their_layer(run):
    src, first = run[0], run[1]
    rec, model = src.recording, src.model(first)
    cam, full = at_frame(rec, 3), ViewerState(len(rec)).with_frame(3)
    K = intrinsics(cam.fov, rec.width, rec.height)
    for k, layer in enumerate(LAYERS):
        state = full.with_layer(layer, False)
        view = render_view(model, rec, state, cam, rec.width, rec.height, src.backend)
        assert view.layers.masks[..., k].max() == 0.0, layer
        ref = model_render(model, src.backend, rec.times[3], rec.w2c[3], K, rec.width,
                           rec.height, state.shown_layers())
        diff = np.abs(view.layers.rgb - ref.rgb[0].numpy())
        assert diff.max() < 5e-3 and diff.mean() < 1e-5, layer
    nothing = full
    for layer in LAYERS:
        nothing = nothing.with_layer(layer, False)
    view = render_view(model, rec, nothing, cam, rec.width, rec.height, src.backend)
    assert view.image.max() == 0 and (view.depth == FAR).all()


def test_display_modes(run):
    src, first = run[0], run[1]
    rec, model = src.recording, src.model(first)
    cam, state = at_frame(rec, 3), ViewerState(len(rec)).with_frame(3)

    def image(s: ViewerState) -> np.ndarray:
        return render_view(model, rec, s, cam, rec.width, rec.height, src.backend).image

    view = render_view(model, rec, state, cam, rec.width, rec.height, src.backend)
    raw = view.layers
    np.testing.assert_array_equal(view.image,
                                  np.round(np.clip(raw.rgb, 0, 1) * 255).astype(np.uint8))
    masks = image(state.with_mode("layer masks")).astype(float)
    change = np.abs(masks - view.image.astype(float)).mean(axis=-1)
    moving = raw.masks[..., 1] + raw.masks[..., 2]
    low, high = np.quantile(moving, [0.25, 0.75])
    assert high > 0.3 and change[moving >= high].mean() > 2 * change[moving <= low].mean() + 5
    # the panel colours: red dynamic, blue semi-static
    one = np.ones((1, 3, 1), np.float32)
    layer_masks = np.array([[[0, 0, 1], [0, 1, 0], [1, 0, 0]]], np.float32)
    tinted = compose(LayerImages(0.5 * np.ones((1, 3, 3), np.float32), layer_masks, one[..., 0],
                                 one[..., 0]), "layer masks", 1.0)
    np.testing.assert_allclose(tinted[0, 0], 0.15 + 0.7 * np.array(LAYER_COLORS["dynamic"]))
    np.testing.assert_allclose(tinted[0, 1], 0.15 + 0.7 * np.array(LAYER_COLORS["semistatic"]))
    np.testing.assert_allclose(tinted[0, 2], 0.5)
    only_static = state.with_layer("semistatic", False).with_layer("dynamic", False)
    np.testing.assert_array_equal(image(only_static.with_mode("layer masks")), image(only_static))
    # depth: turbo from blue (near) to red (far), black where nothing is drawn
    depth = np.array([[0.1, 1.0, 1.9, 1.0]], np.float32)
    alpha = np.array([[1.0, 1.0, 1.0, 0.0]], np.float32)
    img = compose(LayerImages(np.zeros((1, 4, 3), np.float32), np.zeros((1, 4, 3), np.float32),
                              depth, alpha), "depth", 2.0)
    assert img[0, 0, 2] > img[0, 0, 0] and img[0, 2, 0] > img[0, 2, 2] and img[0, 3].max() == 0
    assert image(state.with_mode("depth")).std() > 5
    with pytest.raises(ValueError):
        compose(raw, "normals", 1.0)
    assert MODES == ("RGB", "layer masks", "depth")


# -- run loading, insets ------------------------------------------------------------------------

def test_run_states_and_insets(run):
    src, first, train_dir, cfg, _, _ = run
    assert src.labels == ("trained", "refine-lmf-n0") and first == "trained"
    refined, label = open_run(train_dir, cfg, VID, Path("refine-lmf-n0"))
    assert label == "refine-lmf-n0" and refined.labels == src.labels
    a, b = src.model("trained"), refined.model("refine-lmf-n0")
    assert not torch.equal(a.sets["dynamic"]["means"], b.sets["dynamic"]["means"])
    with pytest.raises(LmfError, match=r"refine-none/refined\.pt: no refined model"):
        open_run(train_dir, cfg, VID, Path("refine-none"))
    scene = src.scene
    np.testing.assert_array_equal(src.inset(2, "input frame"), scene.image(2))
    for i, name in enumerate(scene.frames):
        gt = src.inset(i, "GT")
        assert (gt is not None) == scene.paths.gt_mask("dynamic", name).is_file(), name
        motion = src.inset(i, "2D motion mask")
        assert (motion is None) == (scene.motion_mask(i) is None)
    assert any(src.inset(i, "GT") is not None for i in range(len(scene)))


# -- server -------------------------------------------------------------------------------------

def test_port_taken_is_one_line(run):
    src, first = run[0], run[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(LmfError, match=f"port {port} on 127.0.0.1 is taken"):
            Viewer(src, first, port=port).start()
        res = CliRunner().invoke(app, ["viewer", "--scene", VID, "--data-root", str(run[4]),
                                       "--out", str(run[5]), "--port", str(port)])
        assert isinstance(res.exception, LmfError) and "is taken" in str(res.exception)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_command_prints_url_serves_and_stops_on_ctrl_c(run):
    _, _, _, _, root, out = run
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "viewer", "--scene", VID,
         "--data-root", str(root), "--out", str(out), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        # a test run started in the background (nohup, `&`) ignores SIGINT, and the child would
        # inherit that: give it the default disposition, as a terminal's Ctrl-C finds it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        assert f"http://localhost:{port}" in "".join(lines), "".join(lines)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, rest
    assert "stopping the viewer" in rest and "Traceback" not in rest
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=2)


# -- in a real browser --------------------------------------------------------------------------

def viewport(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A rendered image stretched over the page as viser draws the background."""
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BILINEAR)).astype(float)


def test_in_headless_chromium(run):
    from lmf_gs.viewer.browser import chromium_path, open_page, wait_full

    if chromium_path() is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    pytest.importorskip("playwright", reason="Playwright not installed (pip install playwright)")
    src, first = run[0], run[1]
    viewer = Viewer(src, first, port=0, sizes=Sizes(64, 240))
    viewer.start()
    W, H = 900, 500
    try:
        with open_page(viewer.url, W, H) as page:
            shown = wait_full(viewer)
            start = at_frame(src.recording, 0)  # a new page starts at the frame's camera
            np.testing.assert_allclose(shown.camera.w2c(), start.w2c(), atol=1e-6)
            assert shown.camera.fov == pytest.approx(start.fov)
            page.click_checkbox("trajectory")  # the frustums' lines would cross the scene
            page.close_notifications()  # e.g. "software WebGL rendering detected"
            shot = page.settled().astype(float)
            x0, y0, x1, y1 = page.panel_box()
            scene = np.ones((H, W), bool)
            scene[max(y0, 0):y1, max(x0, 0):x1] = False  # the control panel covers this
            scene[-70:, :70] = False  # the axes gizmo
            assert scene.mean() > 0.4

            def matches(shot: np.ndarray, img: np.ndarray) -> float:
                """Correlation of a screenshot with a rendered image on the visible scene."""
                return float(np.corrcoef(shot[scene].ravel(),
                                         viewport(img, (W, H))[scene].ravel())[0, 1])

            view0 = render_view(src.model(first), src.recording, shown.state, shown.camera,
                                shown.width, shown.height, src.backend)
            assert shot[scene].std() > 10  # not blank
            assert matches(shot, view0.image) > 0.9  # the scene is drawn, as rendered

            n = len(viewer.stats.shown)
            page.set_slider("frame", 6)
            moved = wait_full(viewer, after=n, frame=6)
            assert viewer.state.frame == 6
            shot6 = page.settled().astype(float)
            view6 = render_view(src.model(first), src.recording, moved.state, moved.camera,
                                moved.width, moved.height, src.backend)
            assert np.abs(shot6 - shot)[scene].mean() > 3
            assert matches(shot6, view6.image) > 0.9

            n = len(viewer.stats.shown)
            page.click_button("go to frame camera")
            there = wait_full(viewer, after=n, frame=6)
            np.testing.assert_allclose(there.camera.w2c(), at_frame(src.recording, 6).w2c(),
                                       atol=1e-6)
            shot6 = page.settled().astype(float)
            view6 = render_view(src.model(first), src.recording, there.state, there.camera,
                                there.width, there.height, src.backend)
            assert matches(shot6, view6.image) > 0.9

            n = len(viewer.stats.shown)
            page.click_checkbox("dynamic")
            hidden = wait_full(viewer, after=n, layers=frozenset({"static", "semistatic"}))
            assert hidden.state.frame == 6 and hidden.camera == there.camera
            shot_nd = page.settled().astype(float)
            view_nd = render_view(src.model(first), src.recording, hidden.state, hidden.camera,
                                  hidden.width, hidden.height, src.backend)
            assert view_nd.layers.masks[..., 2].max() == 0.0
            assert matches(shot_nd, view_nd.image) > 0.9
            # the page changed where, and as much as, taking the dynamic layer out changes it
            change = np.abs(shot_nd - shot6).mean(axis=-1)[scene]
            expected = np.abs(viewport(view_nd.image, (W, H))
                              - viewport(view6.image, (W, H))).mean(axis=-1)[scene]
            assert change.mean() > 3 and expected.mean() > 3
            assert np.corrcoef(change, expected)[0, 1] > 0.9
    finally:
        viewer.stop()
    assert viewer.stats.ms["moving"] and viewer.stats.ms["full"]  # reduced while moving
