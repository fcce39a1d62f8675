"""NeuralDiff backend: rendering, camera-frame dynamic layer, time latents, layer isolation."""

import math

import pytest
import torch

from lmf_gs.backends.nerf import NerfBackend
from lmf_gs.config import Config, NerfConfig
from lmf_gs.core.batch import Batch
from lmf_gs.core.frames import with_neighbors
from lmf_gs.core.fusion import nmf_loss, pmf_loss
from lmf_gs.core.layers import LAYERS, NON_STATIC
from lmf_gs.core.loop import run_loop
from lmf_gs.data.scene import Scene
from lmf_gs.experiments.refine import refine_backend
from lmf_gs.model.time_latent import TimeLatent, time_octaves
from lmf_gs.nerf.encoding import PosEncoding
from lmf_gs.nerf.losses import NerfRender, NerfRenderContext, nerf_base_terms
from lmf_gs.nerf.model import NeuralDiff
from lmf_gs.nerf.optim import NerfOptimisation
from lmf_gs.nerf.rays import RayCameras
from lmf_gs.nerf.render import composite, render_frame, render_rays
from lmf_gs.nerf.sampling import sample_pdf, stratified

TINY = NerfConfig(width=16, depth=4, skips=(2,), appearance_dim=4, coarse_samples=8,
                  fine_samples=8, batch_rays=32, chunk=256)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def scene(tiny):
    return Scene(tiny.vid, Config().data.model_copy(update={"root": tiny.root}))


def tiny_model(scene: Scene, seed: int = 0) -> NeuralDiff:
    torch.manual_seed(seed)
    return NeuralDiff.initialise(TINY, scene, list(range(len(scene))))


def some_rays(scene: Scene, model: NeuralDiff, n: int = 24, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    cams = RayCameras.of(scene, *model.normalisation(), torch.device("cpu"))
    frame = torch.randint(0, len(scene), (n,), generator=g)
    x = torch.randint(0, scene.width, (n,), generator=g).float()
    y = torch.randint(0, scene.height, (n,), generator=g).float()
    return cams.rays(frame, x, y), x, y


def test_positional_encoding_matches_neuraldiff_layout():
    enc = PosEncoding(10)
    x = torch.tensor([[0.3, -1.0, 2.0]])
    out = enc(x)
    assert out.shape == (1, 63) and PosEncoding(4).out_dim() == 27
    assert torch.allclose(out[0, :3], x[0])
    assert torch.allclose(out[0, 3:6], torch.sin(x[0])) and torch.allclose(out[0, 6:9],
                                                                           torch.cos(x[0]))
    assert torch.allclose(out[0, -3:], torch.cos(2.0**9 * x[0]))


def test_samples_stay_within_near_far():
    near, far = torch.tensor([0.5, 1.0]), torch.tensor([2.0, 5.0])
    z = stratified(near, far, 16, perturb=True)
    assert (z >= near[:, None]).all() and (z <= far[:, None]).all()
    assert (z.diff(dim=-1) >= 0).all()
    bins = torch.linspace(0, 1, 9).expand(2, 9)
    w = torch.zeros(2, 8)
    w[:, 3] = 1.0  # all mass in [0.375, 0.5]
    s = sample_pdf(bins, w, 32, deterministic=True)
    assert ((s >= 0.375 - 1e-3) & (s <= 0.5 + 1e-3)).float().mean() > 0.9


def test_rays_go_through_pixel_centres_and_camera_points_are_camera_coordinates(scene):
    model = tiny_model(scene)
    rays, x, y = some_rays(scene, model)
    z = torch.rand(len(rays), 5) * 3 + 0.5
    world, cam = rays.points(z)
    center, scale = model.normalisation()
    w2c = torch.as_tensor(scene.w2c)[rays.frame]
    metric = world.double() * scale + torch.as_tensor(center)
    expect = torch.einsum("rij,rsj->rsi", w2c[:, :3, :3], metric) + w2c[:, None, :3, 3]
    assert torch.allclose(cam.double() * scale, expect, atol=1e-4)
    assert torch.allclose(cam[..., 2], z)  # z is camera depth
    uv = (cam.double() / cam[..., 2:].double()) @ torch.as_tensor(scene.intrinsics.K).T
    assert torch.allclose(uv[..., 0], (x + 0.5)[:, None].double(), atol=1e-4)
    assert torch.allclose(uv[..., 1], (y + 0.5)[:, None].double(), atol=1e-4)


def test_dynamic_head_sees_camera_coordinates(scene):
    """A point fixed in the camera gives the dynamic head the same input in every frame, while
    the world-frame layers see it move."""
    model = tiny_model(scene)
    cams = RayCameras.of(scene, *model.normalisation(), torch.device("cpu"))
    frames = torch.tensor([0, len(scene) - 1])
    rays = cams.rays(frames, torch.tensor([7.0, 7.0]), torch.tensor([3.0, 3.0]))
    z = torch.tensor([[0.4, 0.8, 1.5]]).expand(2, 3)
    x, x_cam = rays.points(z)
    seen = {}

    def keep(name):
        def hook(module, inputs):
            seen[name] = inputs[0]
        return hook

    model.dynamic.mlp[0].register_forward_pre_hook(keep("dy"))
    model.fine.layers[0].register_forward_pre_hook(keep("st"))
    model.fine_fields(x, x_cam, rays.dirs, rays.frame, torch.zeros(2))  # same time, two poses
    xyz_dim = model.xyz_enc.out_dim()
    assert torch.equal(seen["dy"][0, :, :xyz_dim], seen["dy"][1, :, :xyz_dim])
    assert torch.allclose(seen["dy"][0, :, :xyz_dim], model.xyz_enc(x_cam[0]))
    assert not torch.allclose(seen["st"][0], seen["st"][1])


def test_time_latent_is_the_smooth_fourier_latent(scene):
    model = tiny_model(scene)
    L = time_octaves(scene.duration_s)  # octaves sized to the video's duration
    for layer in NON_STATIC:
        lat = model.time[layer]
        assert isinstance(lat, TimeLatent) and lat.basis(torch.zeros(1)).shape[1] == 2 * L + 1
        k = math.pi * 2.0 ** torch.arange(L)
        torch.testing.assert_close(lat.freqs, k)
        t = torch.linspace(-1, 1, 2001)
        z = lat(t).detach()
        W = lat.W.detach()
        # |dz/dt| <= sum_k w_k (|W_cos,k| + |W_sin,k|): Lipschitz, no per-frame jumps
        bound = (k[:, None] * (W[1:L + 1].abs() + W[L + 1:].abs())).sum(0)
        slope = (z.diff(dim=0) / (t[1] - t[0])).abs().max(0).values
        assert (slope <= bound * 1.001 + 1e-6).all()
        assert (z.diff(dim=0).abs().max() < 0.05 * (z.max() - z.min()))


def test_layer_masks_sum_to_accumulated_weight(scene):
    model = tiny_model(scene)
    rays = some_rays(scene, model)[0]
    for train in (True, False):
        r = render_rays(model, rays, TINY, train=train).fine
        assert torch.allclose(r.masks.sum(-1), r.alpha, atol=1e-5)
        assert (r.masks >= 0).all() and (r.alpha <= 1 + 1e-6).all()
    cams = RayCameras.of(scene, *model.normalisation(), torch.device("cpu"))
    f = render_frame(model, cams, 1, TINY)
    assert f.masks.shape == (scene.height, scene.width, 3)
    assert torch.allclose(f.masks.sum(-1), f.alpha, atol=1e-5)


def test_masks_are_the_rendered_one_hot_pseudo_colours():
    g = torch.Generator().manual_seed(1)
    sigma = torch.rand(5, 7, 3, generator=g) * 3
    rgb = torch.rand(5, 7, 3, 3, generator=g)
    z = torch.sort(torch.rand(5, 7, generator=g), dim=-1).values
    delta = torch.rand(5, 7, generator=g)
    c = composite(sigma, rgb, torch.zeros(5, 7, 3), delta, z)
    one_hot = torch.eye(3).expand(5, 7, 3, 3)  # layer l has colour e_l
    assert torch.allclose(composite(sigma, one_hot, torch.zeros(5, 7, 3), delta, z).rgb, c.masks,
                          atol=1e-6)
    # one layer: the standard NeRF quadrature
    single = composite(sigma[..., :1], rgb[..., :1, :], torch.zeros(5, 7, 1), delta, z)
    a = 1 - torch.exp(-delta * sigma[..., 0])
    T = torch.cumprod(torch.cat([torch.ones(5, 1), 1 - a[:, :-1]], -1), -1)
    assert torch.allclose(single.rgb, ((a * T)[..., None] * rgb[:, :, 0]).sum(1), atol=1e-6)


def _context(scene, model, trainable=LAYERS, seed=0):
    rays = some_rays(scene, model, seed=seed)[0]
    n = len(rays)
    g = torch.Generator().manual_seed(seed)
    motion = torch.rand(n, 1, 1, generator=g)
    batch = Batch(index=rays.frame, t=rays.t, w2c=torch.eye(4).expand(n, 4, 4),
                  K=torch.eye(3).expand(n, 3, 3), image=torch.rand(n, 1, 1, 3, generator=g),
                  motion=motion, has_motion=torch.ones(n, dtype=torch.bool))
    render = NerfRender.of(render_rays(model, rays, model.cfg, train=True))
    return NerfRenderContext(model=model, batch=batch, render=render, trainable=trainable)


def _grads(model: NeuralDiff, layer: str) -> float:
    return sum(float(p.grad.abs().sum()) for p in model.layer_parameters((layer,))
               if p.grad is not None)


def test_pmf_never_moves_static_and_nmf_never_moves_dynamic(scene):
    model = tiny_model(scene)
    ctx = _context(scene, model)
    pmf_loss(1.1)(ctx).backward()
    assert _grads(model, "static") == 0.0  # trunk, static heads, appearance, coarse
    assert _grads(model, "dynamic") > 0 and _grads(model, "semistatic") > 0
    model.zero_grad(set_to_none=True)
    ctx = _context(scene, model, seed=1)
    ctx.batch.motion = torch.ones_like(ctx.batch.motion)  # every ray is "moving" for NMF
    nmf_loss(1.0, 0.5)(ctx).backward()
    assert _grads(model, "dynamic") == 0.0  # head and its time latent
    assert _grads(model, "semistatic") > 0 and _grads(model, "static") > 0


def test_isolated_masks_have_the_values_of_the_main_render(scene):
    model = tiny_model(scene)
    ctx = _context(scene, model)
    for i, layer in enumerate(LAYERS):
        for detach in (("static",), ("dynamic",), ("semistatic",)):
            assert torch.allclose(ctx.mask_isolated(layer, detach), ctx.render.masks[..., i],
                                  atol=1e-6)
    assert ctx.mask_isolated("semistatic", ("dynamic",), (0, 0, 1, 1)).shape == \
        ctx.render.masks.shape[:-1]


def test_frames_without_mask_get_no_fusion_on_rays(scene):
    model = tiny_model(scene)
    ctx = _context(scene, model)
    ctx.batch.has_motion = torch.zeros_like(ctx.batch.has_motion)
    assert float(pmf_loss(1.1)(ctx).detach()) == 0.0
    assert float(nmf_loss(1.0, 0.5)(ctx).detach()) == 0.0


def test_refinement_freezes_static_mlps_and_trunk(scene, tiny):
    cfg = Config(nerf=TINY).model_copy(update={"data": Config().data.model_copy(
        update={"root": tiny.root})})
    cfg.refine.iters_per_frame, cfg.refine.min_iters = 2, 4
    backend = NerfBackend(tiny_model(scene), scene, cfg)
    model = backend.model
    opt = NerfOptimisation(model, scene, backend.cams, cfg, nerf_base_terms(cfg),
                           list(range(len(scene))), 3, 1e-2)
    run_loop(opt, None)  # so that every layer has had gradient steps
    before = {k: v.clone() for k, v in model.state_dict().items()}
    refine_backend(backend, with_neighbors(scene, tiny.test_frames, 0), "lmf")
    after = model.state_dict()
    static = [k for k in after if k.split(".")[0] in ("coarse", "fine", "appearance")]
    assert any(k.startswith("fine.layers") for k in static)
    for k in static:
        assert torch.equal(after[k], before[k]), k  # bit-identical
    for prefix in ("semistatic.", "dynamic.", "time.semistatic.", "time.dynamic."):
        assert any(not torch.equal(after[k], before[k]) for k in after if k.startswith(prefix))


def test_heldout_frames_borrow_the_nearest_training_appearance(scene):
    train = [0, 3, 5]
    model = NeuralDiff.initialise(TINY, scene, train)
    idx = model.appearance_index.tolist()
    nums = scene.frame_numbers
    for i, j in enumerate(idx):
        assert j in train
        assert abs(nums[i] - nums[j]) == min(abs(nums[i] - nums[k]) for k in train)
