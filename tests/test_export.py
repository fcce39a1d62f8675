"""`lmf-gs export` (open3d, ply, udos-cache), `render` and `view` on a tiny trained run."""

import copy
import json

import imageio.v2 as imageio
import numpy as np
import open3d as o3d
import pytest
import torch
from PIL import Image
from plyfile import PlyData
from sklearn.metrics import average_precision_score
from typer.testing import CliRunner

from cli.app import run_config
from cli.main import app, main
from lmf_gs.backends.gaussian import GaussianBackend
from lmf_gs.core.layers import LAYERS
from lmf_gs.data.scene import Scene
from lmf_gs.data.synthetic import generate_scene
from lmf_gs.export import frame_snapshot, load_ply, to_open3d
from lmf_gs.export.pointclouds import LAYER_COLORS
from lmf_gs.train.views import Cameras

runner = CliRunner()
VID = "SYN_T"
TINY = ["--config", "gs_cpu", "--set", "train.iters=8", "--set", "train.densify_from=4",
        "--set", "train.densify_every=4", "--set", "train.log_every=4",
        "--set", "model.n_static=300", "--set", "model.n_semistatic=60",
        "--set", "model.n_dynamic=60", "--set", "train.holdout_every=4",
        "--set", "train.warmup=0", "--set", "model.init_opacity_nonstatic=0.1",
        "--set", "train.reset_opacity_every=1000"]  # no opacity reset within these 8 steps
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A trained run, a refinement run of it and `evaluate --method gs` metrics."""
    base = tmp_path_factory.mktemp("export")
    root, out = base / "data", base / "runs"
    generate_scene(root, VID, n_frames=12, seed=3, width=114, height=64)
    where = ["--scene", VID, "--data-root", str(root), "--out", str(out)]
    for args in (["train", *TINY], ["refine", "--set", "refine.iters_per_frame=1",
                                    "--set", "refine.min_iters=4"],
                 ["evaluate", "--method", "gs"]):
        res = runner.invoke(app, [args[0], *where, *args[1:]])
        assert res.exit_code == 0, res.output
    return root, out, where


def cli(where, *args):
    res = runner.invoke(app, [*args, *where])
    assert res.exit_code == 0, res.output
    return res


def model_and_scene(root, out):
    run_dir = out / VID / "gs"
    cfg = run_config(run_dir, None, None, root)
    scene = Scene(VID, cfg.data)
    return GaussianBackend.load(run_dir, scene, cfg)[0].model, scene


def split(root, kind="within_action"):
    return json.loads((root / "udos/split/test.json").read_text())[VID][kind]


def test_open3d_clouds_read_back_with_counts_and_colours(run):
    root, out, where = run
    model, scene = model_and_scene(root, out)
    frame = split(root)[1]
    cli(where, "export", "--time", frame, "--min-opacity", "0.02")
    folder = out / VID / "gs" / "export" / f"open3d-{frame[:-4]}"
    parts = frame_snapshot(model, scene, frame)
    total = 0
    for layer in LAYERS:
        g = parts[layer]
        keep = g.alpha >= 0.02
        pcd = o3d.io.read_point_cloud(str(folder / f"{layer}.ply"))
        assert len(pcd.points) == int(keep.sum()) > 0, layer
        np.testing.assert_allclose(np.asarray(pcd.points), g.means[keep].numpy(), atol=1e-6)
        np.testing.assert_allclose(np.asarray(pcd.colors), g.base_rgb[keep].clamp(0, 1).numpy(),
                                   atol=0.5 / 255 + 1e-6)
        total += len(pcd.points)
    assert len(o3d.t.io.read_point_cloud(str(folder / "combined.ply")).point.positions) == total

    # the dynamic layer is where the renderer puts it at that frame (world coordinates)
    i = scene.index(frame)
    cams = Cameras.of(scene, CPU)
    g, sizes = model.gaussians(cams.t[i:i + 1], torch.linalg.inv(cams.w2c[i:i + 1]))
    assert torch.equal(parts["dynamic"].means, g["means"][0, -sizes["dynamic"]:])
    assert torch.equal(torch.cat([parts[n].alpha for n in LAYERS]), g["opacities"][0])

    cli(where, "export", "--time", frame, "--color", "layer", "--layers", "dynamic,static",
        "--min-opacity", "0.02")
    folder2 = folder.with_name(folder.name + "-2")  # the first export is kept
    assert sorted(p.name for p in folder2.iterdir()) == ["combined.ply", "dynamic.ply",
                                                         "static.ply"]
    colors = np.asarray(o3d.io.read_point_cloud(str(folder2 / "dynamic.ply")).colors)
    np.testing.assert_allclose(colors, np.broadcast_to(LAYER_COLORS["dynamic"], colors.shape),
                               atol=0.5 / 255 + 1e-6)

    res = cli(where, "export", "--layers", "dynamic", "--min-opacity", "0.9", "--dest",
              str(out / "empty"))
    assert "dynamic.ply: no Gaussian with opacity >= 0.9, not written" in res.output
    assert not list((out / "empty").iterdir())

    clouds = to_open3d(model, scene, frame, ("semistatic",), min_opacity=0.0, color="view")
    assert isinstance(clouds["semistatic"], o3d.geometry.PointCloud)
    assert len(clouds["semistatic"].points) == model.num_gaussians()["semistatic"]


def test_ply_standard_layout_and_round_trip(run):
    root, out, where = run
    model, scene = model_and_scene(root, out)
    frame = split(root)[0]
    cli(where, "export", "--format", "ply", "--time", frame)
    folder = out / VID / "gs" / "export" / f"ply-{frame[:-4]}"
    K = (model.cfg.sh_degree + 1) ** 2
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2",
             *(f"f_rest_{i}" for i in range(3 * (K - 1))),
             "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    counts = model.num_gaussians()
    for layer in (*LAYERS, "combined"):
        v = PlyData.read(str(folder / f"{layer}.ply"))["vertex"]
        assert [p.name for p in v.properties] == names
        assert all(v.data.dtype[n] == np.float32 for n in names)
        assert len(v.data) == counts.get(layer, sum(counts.values()))
    layered = PlyData.read(str(folder / "combined_layered.ply"))["vertex"].data
    assert layered.dtype.names == (*names, "layer")
    assert np.bincount(layered["layer"]).tolist() == [counts[n] for n in LAYERS]

    # static: identical tensors, f_rest channel-major, identical render
    p = model.sets["static"]
    loaded = load_ply(folder / "static.ply")
    for k in ("means", "scales", "quats", "opacities", "sh0", "shN"):
        assert torch.equal(loaded[k], p[k]), k
    v = PlyData.read(str(folder / "static.ply"))["vertex"].data
    assert np.array_equal(v["f_rest_0"], p["shN"][:, 0, 0].detach().numpy())  # R of coeff 1
    assert np.array_equal(v[f"f_rest_{K - 1}"], p["shN"][:, 0, 1].detach().numpy())  # G of 1
    cams = Cameras.of(scene, CPU)
    i = scene.index(frame)
    view = (cams.t[i:i + 1], cams.w2c[i:i + 1], cams.K[None], cams.width, cams.height, "torch")
    twin = copy.deepcopy(model)
    twin.sets["static"] = loaded
    with torch.no_grad():
        assert torch.equal(twin.render(*view, layers=("static",)).rgb,
                           model.render(*view, layers=("static",)).rgb)
        # all layers at the frame, loaded as one static set, render as the model does
        twin.sets["static"] = load_ply(folder / "combined.ply")
        torch.testing.assert_close(twin.render(*view, layers=("static",)).rgb,
                                   model.render(*view).rgb, atol=1e-5, rtol=0)
    assert len(load_ply(folder / "combined_layered.ply", layer="dynamic")["means"]) == \
        counts["dynamic"]


def independent_scores(root, cache):
    """The official protocol on the cache: per-frame AP over non-ignored pixels, mean."""
    maps = {}
    by_frame = {f"frame_{e['sample_id']:010d}.jpg": e for e in cache["out"]}
    for motion in ("dynamic", "semistatic", "dynamic_semistatic"):
        aps = []
        for frame in split(root):
            gt = np.array(Image.open(root / f"udos/annotations/test_{motion}/{VID}/"
                                            f"{frame[:-4]}.png")).astype(float)
            if gt.max() == 255:
                gt = gt / 255
            if motion == "dynamic":
                valid, keep = gt, np.ones_like(gt, bool)
            elif motion == "semistatic":
                valid, keep = gt == 1, gt != 2
            else:
                valid, keep = (gt == 1) | (gt == 3), gt != 2
            if valid.sum() == 0:
                continue
            key = "mask_pers" if motion == "dynamic" else "mask_pred"
            pred = np.asarray(by_frame[frame][key])
            aps.append(100 * average_precision_score(valid[keep].reshape(-1),
                                                     pred[keep].reshape(-1)))
        maps[motion] = float(np.mean(aps))
    return maps


def test_udos_cache_scores_like_evaluate(run):
    root, out, where = run
    res = cli(where, "export", "--format", "udos-cache")
    cache_root = out / VID / "gs" / "export" / "udos-cache"
    assert [p.name for p in cache_root.iterdir()] == [f"{VID}-neuraldiff"]
    assert [p.name for p in (cache_root / f"{VID}-neuraldiff").iterdir()] == ["cache.pt"]
    assert "--model=neuraldiff" in res.output and f"{VID}-neuraldiff" in res.output
    cache = torch.load(cache_root / f"{VID}-neuraldiff" / "cache.pt", weights_only=False)
    frames = split(root)
    assert [e["sample_id"] for e in cache["out"]] == [int(f[6:16]) for f in frames]
    for e in cache["out"]:
        for key, shape in (("mask_pred", (64, 114)), ("mask_pers", (64, 114)),
                           ("mask_tran", (64, 114)), ("im_pred", (64, 114, 3)),
                           ("im_targ", (64, 114, 3))):
            assert e[key].dtype == torch.float32 and tuple(e[key].shape) == shape, key
        torch.testing.assert_close(e["mask_pred"], e["mask_pers"] + e["mask_tran"])
    metrics = json.loads((out / VID / "gs" / "metrics.json").read_text())["map"]
    for motion, value in independent_scores(root, cache).items():
        assert value == pytest.approx(metrics[motion], abs=1e-6), motion

    cli(where, "export", "--format", "udos-cache", "--refined", "refine-lmf-n0")
    refined = out / VID / "gs" / "export" / "udos-cache-refine-lmf-n0" / f"{VID}-neuraldiff"
    assert (refined / "cache.pt").is_file()


def test_render_panels_and_video(run):
    root, out, where = run
    frames = split(root)
    cli(where, "render")
    folder = out / VID / "gs" / "render"
    pngs = sorted(folder.glob("*.png"))
    assert [p.stem for p in pngs] == sorted(f[:-4] for f in frames)
    img = np.asarray(Image.open(pngs[0]))
    assert img.shape == (32, 6 * 57, 3)  # six 114x64 tiles, downscaled by 2
    tile = [img[14:, k * 57:(k + 1) * 57].astype(int) for k in range(6)]  # below the labels
    assert (tile[2][..., 0] >= tile[2][..., 1]).all() and tile[2].max() > 0  # dynamic: red
    assert (tile[3][..., 2] >= tile[3][..., 0]).all() and tile[3].max() > 0  # semi-static: blue
    assert tile[5].max() > 0  # GT

    lo, hi = frames[0][6:16], frames[-1][6:16]
    cli(where, "render", "--frames", f"{int(lo)}:{int(hi)}", "--video", "--no-png",
        "--refined", "refine-lmf-n0", "--fps", "5")
    video = out / VID / "gs" / "render-refine-lmf-n0" / "panels.mp4"
    reader = imageio.get_reader(video)
    shots = [f for f in reader]
    n = sum(int(lo) <= int(f[6:16]) <= int(hi) for f in json.loads(
        (root / f"epic_fields/{VID}.json").read_text())["images"])
    assert len(shots) == n and shots[0].shape == (32, 342, 3)
    assert not list(video.parent.glob("*.png"))
    cli(where, "render", "--frames", frames[0])
    assert (out / VID / "gs" / "render-2" / f"{frames[0][:-4]}.png").is_file()  # first kept


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "--layers", "static,hands"], "unknown layer 'hands'"),
        (["export", "--time", "99999999"], "frame frame_0099999999.jpg is not registered"),
        (["render", "--frames", "frame_0000000001.jpg"], "is not registered"),
        (["export", "--format", "obj"], "unknown format 'obj'"),
        (["export", "--color", "pink"], "unknown colour mode 'pink'"),
        (["export", "--format", "udos-cache", "--time", "3"], "do not apply"),
        (["export", "--refined", "refine-none"], "no refined model"),
        (["view", "nothing.ply"], "no such file or folder"),
    ],
)
def test_bad_input_is_one_line_exit_2(run, monkeypatch, capsys, args, message):
    _, _, where = run
    argv = args if args[0] == "view" else [*args, *where]
    monkeypatch.setattr("sys.argv", ["lmf-gs", *argv])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_missing_checkpoint_and_unwritable_dest(run, tmp_path, monkeypatch, capsys):
    root, out, where = run
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    full = tmp_path / "full"
    (full / "x").mkdir(parents=True)
    for argv, message in [
        (["export", "--scene", "NOPE", "--data-root", str(root), "--out", str(out)],
         "no checkpoint"),
        (["render", "--scene", "NOPE", "--data-root", str(root), "--out", str(out)],
         "no checkpoint"),
        (["export", *where, "--dest", str(blocker / "sub")], "cannot write"),
        (["export", *where, "--format", "udos-cache", "--dest", str(full)],
         "not an empty folder"),
    ]:
        monkeypatch.setattr("sys.argv", ["lmf-gs", *argv])
        with pytest.raises(SystemExit) as e:
            main()
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and message in err and len(err.splitlines()) == 1, err


def test_view_without_display_says_so(run, monkeypatch, capsys):
    _, out, where = run
    cli(where, "export", "--format", "ply", "--layers", "static", "--dest",
        str(out / "for_view"))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.argv", ["lmf-gs", "view", str(out / "for_view")])
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "no display" in err and len(err.splitlines()) == 1
