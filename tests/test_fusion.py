"""PMF / NMF values on hand-made masks and the layers their gradients reach."""

import pytest
import torch
from test_model import H, W, render, small_model
from test_model import K as K_TEST

from lmf_gs.config import FusionConfig
from lmf_gs.core.batch import Batch
from lmf_gs.core.fusion import fusion_terms, isolated_masks, nmf_loss, pmf_loss
from lmf_gs.core.layers import LAYERS
from lmf_gs.model.layered import LayeredRender
from lmf_gs.train.losses import GaussianRenderContext


def fake_render(ss: torch.Tensor, dy: torch.Tensor) -> LayeredRender:
    C, H, W = dy.shape
    masks = torch.stack([torch.zeros_like(dy), ss, dy], dim=-1)
    return LayeredRender(rgb=torch.zeros(C, H, W, 3), masks=masks, beta=torch.ones(C, H, W),
                         depth=torch.zeros(C, H, W), alpha=masks.sum(-1),
                         opacities=torch.zeros(C, 0),
                         means2d=torch.zeros(C, 0, 2), radii=torch.zeros(C, 0), sizes={})


def ctx_of(render_, batch):
    """A context in which nothing is being optimised (masks come from the render as is)."""
    return GaussianRenderContext(model=None, batch=batch, render=render_, backend="torch",
                                 trainable=())


def batch_with(motion, has):
    C, H, W = motion.shape
    return Batch(index=torch.arange(C), t=torch.zeros(C), w2c=torch.eye(4).expand(C, 4, 4),
                 K=torch.eye(3).expand(C, 3, 3), image=torch.zeros(C, H, W, 3),
                 motion=motion, has_motion=torch.tensor(has))


def test_pmf_is_weighted_mean_squared_error_over_pixels():
    dy = torch.tensor([[[0.0, 0.5], [1.0, 0.2]]])
    m = torch.tensor([[[0.0, 1.0], [1.0, 0.6]]])
    # squared errors 0, 0.25, 0, 0.16 -> mean 0.1025, times 1.1
    val = pmf_loss(1.1)(ctx_of(fake_render(torch.zeros_like(dy), dy), batch_with(m, [True])))
    assert float(val) == pytest.approx(1.1 * 0.1025)


def test_nmf_is_mean_of_ss_squared_over_binarised_motion():
    ss = torch.tensor([[[0.5, 0.4], [0.3, 0.9]]])
    m = torch.tensor([[[0.9, 0.6], [0.5, 0.1]]])  # > 0.5: first two pixels only
    val = nmf_loss(1.0, 0.5)(ctx_of(fake_render(ss, torch.zeros_like(ss)),
                                    batch_with(m, [True])))
    assert float(val) == pytest.approx((0.25 + 0.16) / 2)


def test_frames_without_masks_get_no_fusion_loss():
    dy = torch.rand(2, 3, 3)
    ss = torch.rand(2, 3, 3)
    m = torch.ones(2, 3, 3)
    r = fake_render(ss, dy)
    one = pmf_loss(1.0)(ctx_of(r, batch_with(m, [True, False])))
    assert float(one) == pytest.approx(float((dy[0] - 1).square().mean()))
    assert float(pmf_loss(1.0)(ctx_of(r, batch_with(m, [False, False])))) == 0.0
    assert float(nmf_loss(1.0, 0.5)(ctx_of(r, batch_with(m, [False, False])))) == 0.0
    nothing_moves = batch_with(torch.zeros(2, 3, 3), [True, True])
    assert float(nmf_loss(1.0, 0.5)(ctx_of(r, nothing_moves))) == 0.0


def test_fusion_modes():
    cfg = FusionConfig()
    assert set(fusion_terms("none", cfg)) == set()
    assert set(fusion_terms("lmf", cfg)) == {"pmf", "nmf"}
    with pytest.raises(ValueError, match="unknown fusion"):
        fusion_terms("both", cfg)


def _grads(loss_fn, trainable=("static", "semistatic", "dynamic")):
    """Gradients of one fusion loss, the way the optimiser builds its context."""
    model = small_model()
    for layer in ("semistatic", "dynamic"):  # non-zero deformation outputs, so nets get grads
        torch.nn.init.normal_(model.deform[layer].net[-1].weight, std=0.1)
    with torch.no_grad():  # a see-through static set, so every layer shows in the masks
        model.sets["static"]["opacities"].fill_(-2.0)
    r = render(model)
    motion = torch.full_like(r.alpha, 0.9)  # everything moves: every visible Gaussian counts
    batch = batch_with(motion, [True])
    batch.t, batch.w2c = torch.tensor([0.3]), torch.eye(4)[None]
    batch.K = torch.tensor(K_TEST, dtype=torch.float32)[None]
    ctx = GaussianRenderContext(model=model, batch=batch, render=r, backend="torch",
                                trainable=trainable)
    loss_fn(ctx).backward()
    return {n: model.sets[n]["means"].grad for n in ("static", "semistatic", "dynamic")}, model


def _moved(g):
    return g is not None and bool(g.abs().sum() > 0)


def test_compositing_alone_would_leak_across_layers():
    """Without isolation (nothing marked trainable) NMF reaches dynamic Gaussians in front."""
    g, _ = _grads(nmf_loss(1.0, 0.5), trainable=())
    assert _moved(g["semistatic"]) and _moved(g["dynamic"])


def test_nmf_does_not_move_the_dynamic_set():
    g, model = _grads(nmf_loss(1.0, 0.5))
    assert _moved(g["semistatic"])
    assert not _moved(g["dynamic"])
    assert not _moved(model.time["dynamic"].W.grad)
    assert not _moved(model.deform["dynamic"].net[0].weight.grad)


def test_pmf_does_not_move_the_static_set():
    g, model = _grads(pmf_loss(1.1))
    assert _moved(g["dynamic"]) and not _moved(g["static"])
    assert not _moved(model.sets["static"]["opacities"].grad)


@pytest.mark.parametrize("name", ["pmf", "nmf"])
def test_isolated_mask_in_the_main_pass_has_the_gradients_of_a_second_render(name):
    """The torch rasteriser computes an isolated mask in the same pass (blocked gradient in
    the compositing backward): every parameter's gradient equals the detached re-render's."""
    loss_fn = {"pmf": pmf_loss(1.1), "nmf": nmf_loss(1.0, 0.5)}[name]
    grads, values = [], []
    for in_pass in (False, True):
        model = small_model()
        for layer in ("semistatic", "dynamic"):
            torch.nn.init.normal_(model.deform[layer].net[-1].weight, std=0.1,
                                  generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            model.sets["static"]["opacities"].fill_(-2.0)
        t, w2c = torch.tensor([0.3]), torch.eye(4)[None]
        K = torch.tensor(K_TEST, dtype=torch.float32)[None]
        r = model.render(t, w2c, K, W, H, "torch",
                         isolate=isolated_masks([name], LAYERS, LAYERS) if in_pass else ())
        assert bool(r.isolated) == in_pass
        motion = torch.rand(r.alpha.shape, generator=torch.Generator().manual_seed(2))
        batch = batch_with(motion, [True])
        batch.t, batch.w2c, batch.K = t, w2c, K
        ctx = GaussianRenderContext(model=model, batch=batch, render=r, backend="torch")
        loss = loss_fn(ctx)
        loss.backward()
        values.append(float(loss.detach()))
        grads.append({k: torch.zeros_like(p) if p.grad is None else p.grad.clone()
                      for k, p in model.named_parameters()})
    assert values[0] == pytest.approx(values[1], rel=1e-6)
    for k in grads[0]:
        torch.testing.assert_close(grads[1][k], grads[0][k], rtol=1e-4, atol=1e-7, msg=k)
    moved = {n for n in LAYERS if float(grads[1][f"sets.{n}.means"].abs().sum()) > 0}
    assert {"pmf": "dynamic", "nmf": "semistatic"}[name] in moved
    assert {"pmf": "static", "nmf": "dynamic"}[name] not in moved


def test_training_renders_isolated_masks_only_for_frames_with_a_mask(tmp_path):
    """A step on a frame without a 2D motion mask has no fusion loss, so it renders no isolated
    mask channels (the official MG cache holds test frames only: most EPIC training frames)."""
    from conftest import make_tiny_root

    from lmf_gs.backends.gaussian import GaussianBackend
    from lmf_gs.config import load_config
    from lmf_gs.data.scene import Scene

    tiny = make_tiny_root(tmp_path / "data")
    cfg = load_config("gs_cpu", [f"data.root={tiny.root}", "model.n_static=50",
                                 "model.n_semistatic=20", "model.n_dynamic=20",
                                 "train.warmup=0", "train.workers=0"])
    scene = Scene(tiny.vid, cfg.data)
    without, with_mask = scene.index(tiny.frames[0]), scene.index(tiny.frames[1])
    backend = GaussianBackend.initialise(scene, cfg, [without, with_mask])
    seen = []
    render = backend.model.render
    backend.model.render = lambda *a, **k: seen.append(k["isolate"]) or render(*a, **k)
    opt = backend.training([without, with_mask])
    for _ in range(2):
        opt.iteration()
    assert sorted(map(len, seen)) == [0, 2]  # PMF's and NMF's masks on the frame with one
