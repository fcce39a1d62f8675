"""What makes the layers separate motion in real footage: the static colour transform
(exposure), static initial scales from the SfM cloud, fusion during training."""

import json
import math

import numpy as np
import torch
from typer.testing import CliRunner

from cli.main import app
from lmf_gs.backends.gaussian import GaussianBackend
from lmf_gs.config import ModelConfig, load_config
from lmf_gs.core.batch import Batch
from lmf_gs.core.losses import rgb_loss
from lmf_gs.data.scene import Scene
from lmf_gs.data.synthetic import generate_scene
from lmf_gs.model import LayeredGaussians
from lmf_gs.model.appearance import ColourTransform
from lmf_gs.model.layered import SceneGeometry
from lmf_gs.train.losses import GaussianRenderContext, sparsity_loss

W, H = 24, 16
K = np.array([[20.0, 0, 12], [0, 20.0, 8], [0, 0, 1]])
KT = torch.tensor(K, dtype=torch.float32)[None]
runner = CliRunner()


def model(seed: int = 0, points: np.ndarray | None = None, **kw) -> LayeredGaussians:
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(300, 3)) * [1.0, 0.6, 0.3] + [0, 0, 3.0] if points is None else points
    geo = SceneGeometry(pts, rng.uniform(0.2, 0.6, size=(len(pts), 3)), 3.0, K, W, H)
    cfg = ModelConfig(**{"n_static": 150, "n_semistatic": 60, "n_dynamic": 60, "sh_degree": 0,
                         "hidden": 16, "feature_dim": 4, "time_basis": "linear", "time_freqs": 1,
                         **kw})
    return LayeredGaussians.initialise(cfg, geo, seed)


def test_colour_transform_hand_computed():
    ct = ColourTransform(torch.tensor([math.pi]))  # phi'(t) = [cos(pi t), sin(pi t)]
    rgb = torch.tensor([[[0.2, 0.4, 0.6]]])
    t = torch.tensor([0.0])
    assert torch.equal(ct(rgb, t), rgb)  # identity at initialisation
    with torch.no_grad():
        ct.W[0, 0] = 0.5  # cos row: A[0, 0]
        ct.W[0, 1] = 0.25  # A[0, 1]
        ct.W[1, 11] = 0.1  # sin row: b[2]
    # t = 0: cos 1, sin 0 -> r' = 1.5 r + 0.25 g, g' = g, b' = b
    torch.testing.assert_close(ct(rgb, t), torch.tensor([[[0.4, 0.4, 0.6]]]))
    # t = 0.5: cos 0, sin 1 -> only the bias 0.1 on blue
    torch.testing.assert_close(ct(rgb, torch.tensor([0.5])), torch.tensor([[[0.2, 0.4, 0.7]]]))
    # t = 1: cos -1 -> r' = 0.5 r - 0.25 g = 0
    torch.testing.assert_close(ct(rgb, torch.tensor([1.0])), torch.tensor([[[0.0, 0.4, 0.6]]]))


def test_appearance_is_the_identity_at_init_and_round_trips():
    plain, affine = model(), model(appearance="affine")
    t, w2c = torch.tensor([0.3]), torch.eye(4)[None]
    a = plain.render(t, w2c, KT, W, H, backend="torch")
    b = affine.render(t, w2c, KT, W, H, backend="torch")
    assert torch.equal(a.rgb, b.rgb) and torch.equal(a.masks, b.masks)
    with torch.no_grad():
        affine.appearance.W[0, :3] = torch.tensor([0.3, 0.0, 0.0])
    again = LayeredGaussians.from_state_dict(affine.cfg, affine.state_dict())
    torch.testing.assert_close(again.appearance.W, affine.appearance.W)
    c = again.render(t, w2c, KT, W, H, backend="torch")
    assert not torch.allclose(c.rgb, a.rgb)  # the saved transform is applied


def test_static_scales_from_the_sfm_cloud():
    # five points 1 apart on a line: mean distance to the 3 nearest is 2, 4/3, 4/3, 4/3, 2
    pts = np.stack([np.arange(5.0), np.zeros(5), np.full(5, 3.0)], axis=1)
    expected = np.array([2.0, 4 / 3, 4 / 3, 4 / 3, 2.0])
    m = model(points=pts, n_static=40, static_init_scale="sfm")
    scales = torch.exp(m.sets["static"]["scales"]).detach().numpy()
    src = np.rint(m.sets["static"]["means"].detach().numpy()[:, 0]).astype(int)
    np.testing.assert_allclose(scales, np.repeat(expected[src][:, None], 3, 1), rtol=1e-5)
    # drawn 8 times each, the copies' nearest neighbours are their twins (the 0.002 x 3 jitter)
    specks = torch.exp(model(points=pts, n_static=40, static_init_scale="samples")
                       .sets["static"]["scales"]).detach()
    assert float(specks.max()) < 0.1


def _fit(appearance: str, steps: int = 60) -> tuple[LayeredGaussians, float]:
    """Fit the non-static sets (and the colour transform) to views of the true static set whose
    exposure is 1 + 0.3 cos(pi t); returns the model and its mean non-static mask."""
    truth = model(seed=1, init_opacity=0.9)
    m = model(seed=1, init_opacity=0.9, appearance=appearance)
    ts = torch.linspace(-1, 1, 8)
    w2c, k = torch.eye(4)[None].expand(8, 4, 4), KT.expand(8, 3, 3)
    with torch.no_grad():
        gain = 1 + 0.3 * torch.cos(math.pi * ts)
        image = (truth.render(ts, w2c, k, W, H, layers=("static",), backend="torch").rgb
                 * gain[:, None, None, None])
    batch = Batch(index=torch.arange(8), t=ts, w2c=w2c, K=k, image=image)
    params = [p for n, p in m.named_parameters() if not n.startswith("sets.static.")]
    opt = torch.optim.Adam(params, lr=3e-2)
    sparsity = sparsity_loss(0.05)
    for _ in range(steps):
        r = m.render(ts, w2c, k, W, H, backend="torch")
        ctx = GaussianRenderContext(model=m, render=r, backend="torch", batch=batch)
        loss = rgb_loss(ctx) + sparsity(ctx)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        masks = m.render(ts, w2c, k, W, H, backend="torch").masks
    return m, float(masks[..., 1:].sum(-1).mean())


def test_exposure_is_absorbed_by_the_colour_transform_not_the_non_static_layers():
    m, non_static = _fit("affine")
    _, without = _fit("none")
    # mid-grey 0.4 under the exposure 1 + 0.3 cos(pi t): 0.52 at t = 0, 0.4 at 0.5, 0.28 at 1
    grey = torch.full((3, 1, 3), 0.4)
    seen = m.appearance(grey, torch.tensor([0.0, 0.5, 1.0]))[:, 0].detach()
    expected = torch.tensor([0.52, 0.40, 0.28])[:, None].expand(3, 3)
    torch.testing.assert_close(seen, expected, atol=0.02, rtol=0)
    # the non-static layers stay empty with it, and take the exposure change without it
    assert non_static < 0.01 and without > 0.05


def test_train_fusion_adds_pmf_and_nmf_to_training(tmp_path):
    root, out = tmp_path / "data", tmp_path / "runs"
    generate_scene(root, "SYN_F", n_frames=8, seed=2, width=114, height=64)
    res = runner.invoke(app, [
        "train", "--scene", "SYN_F", "--data-root", str(root), "--out", str(out),
        "--config", "gs_cpu", "--set", "train.iters=6", "--set", "train.warmup=0",
        "--set", "train.log_every=1", "--set", "train.fusion=lmf",
        "--set", "model.n_static=200", "--set", "model.n_semistatic=40",
        "--set", "model.n_dynamic=40"])
    assert res.exit_code == 0, res.output
    run = out / "SYN_F" / "gs"
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["loss_terms"] == ["nmf", "pmf", "rgb", "sparsity"]
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert all(e["pmf"] > 0 for e in log)  # every synthetic frame has a mask
    cfg = load_config(run / "config.yaml")
    backend, _ = GaussianBackend.load(run, Scene("SYN_F", cfg.data), cfg)
    # fine-tuning "without fusion" (ablate's GS row) drops the training run's fusion terms
    assert set(backend.train_terms("none")) == {"rgb", "sparsity"}
