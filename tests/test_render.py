"""The torch backend of `lmf_gs.render.rasterize` (CPU): gsplat semantics and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from lmf_gs.render import rasterize
from lmf_gs.render.projection import project

W, H = 24, 16
F64 = torch.float64


def camera(C: int = 1, f: float = 20.0, dtype: torch.dtype = F64) -> tuple[torch.Tensor, ...]:
    """C cameras at x = 0, 0.1, ... looking down +z, and their intrinsics."""
    viewmats = torch.eye(4, dtype=dtype).repeat(C, 1, 1)
    viewmats[:, 0, 3] = -0.1 * torch.arange(C, dtype=dtype)
    K = torch.tensor([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]], dtype=dtype)
    return viewmats, K.repeat(C, 1, 1)


def random_scene(N: int, seed: int = 0, D: int = 4, dtype: torch.dtype = F64) -> list[torch.Tensor]:
    """N Gaussians in front of `camera` with 1-10 px footprints."""
    g = torch.Generator().manual_seed(seed)
    z = 2 + 4 * torch.rand(N, generator=g, dtype=dtype)
    xy = (torch.rand(N, 2, generator=g, dtype=dtype) - 0.5) * torch.tensor([W, H]) / 20 * z[:, None]
    means = torch.cat([xy, z[:, None]], -1)
    scales = 0.05 * 4 ** torch.rand(N, 3, generator=g, dtype=dtype) * z[:, None] / 10
    quats = torch.randn(N, 4, generator=g, dtype=dtype)
    opacities = 0.1 + 0.85 * torch.rand(N, generator=g, dtype=dtype)
    colors = torch.rand(N, D, generator=g, dtype=dtype)
    return [means, quats, scales, opacities, colors]


def reference(means, quats, scales, opacities, colors, viewmats, Ks, bg=None):
    """gsplat's per-pixel loop (rasterize_to_pixels_3dgs_fwd_kernel), vectorised over pixels.

    Shared Gaussians only; differentiable through autograd.
    """
    proj = project(means[None], quats[None], scales[None], opacities[None], viewmats, Ks, W, H,
                   0.01, 1e10)
    ys, xs = torch.meshgrid(torch.arange(H, dtype=means.dtype) + 0.5,
                            torch.arange(W, dtype=means.dtype) + 0.5, indexing="ij")
    images, alphas, depths = [], [], []
    for c in range(viewmats.shape[0]):
        T = torch.ones(H, W, dtype=means.dtype)
        out = torch.zeros(H, W, colors.shape[1] + 1, dtype=means.dtype)
        done = torch.zeros(H, W, dtype=torch.bool)
        for g in torch.sort(proj.depths[c], stable=True).indices.tolist():
            if proj.radii[c, g].min() <= 0:
                continue
            a, b, cc = proj.conics[c, g]
            dx, dy = proj.means2d[c, g, 0] - xs, proj.means2d[c, g, 1] - ys
            sigma = 0.5 * (a * dx * dx + cc * dy * dy) + b * dx * dy
            alpha = torch.clamp(opacities[g] * torch.exp(-sigma), max=0.999)
            skip = (sigma < 0) | (alpha < 1 / 255) | done
            next_T = T * (1 - alpha)
            stop = ~skip & (next_T <= 1e-4)
            done = done | stop
            use = ~skip & ~stop
            feat = torch.cat([colors[g], proj.depths[c, g, None]])
            out = out + torch.where(use, alpha * T, 0)[..., None] * feat
            T = torch.where(use, next_T, T)
        alpha_img = (1 - T)[..., None]
        rgb = out[..., :-1] if bg is None else out[..., :-1] + T[..., None] * bg[c]
        images.append(rgb)
        alphas.append(alpha_img)
        depths.append(out[..., -1:] / alpha_img.clamp_min(1e-10))
    return torch.stack(images), torch.stack(alphas), torch.stack(depths)


def test_matches_sequential_reference_with_gradients():
    params = random_scene(60)
    viewmats, Ks = camera(2)
    bg = torch.rand(2, 4, dtype=F64)
    weights = [torch.randn(2, H, W, k, dtype=F64) for k in (4, 1, 1)]

    def loss_and_grads(render):
        leaves = [p.clone().requires_grad_() for p in params]
        outs = render(leaves)
        loss = sum((o * w).sum() for o, w in zip(outs, weights, strict=True))
        return outs, torch.autograd.grad(loss, leaves)

    ours, g_ours = loss_and_grads(lambda p: _outputs(rasterize(
        *p, viewmats, Ks, W, H, backend="torch", backgrounds=bg)))
    ref, g_ref = loss_and_grads(lambda p: reference(*p, viewmats, Ks, bg))
    assert ours[1].max() > 0.9  # overlapping, partly opaque
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def _outputs(out) -> tuple[torch.Tensor, ...]:
    return out.colors, out.alphas, out.depths


def test_projection_matches_gsplat_torch_reference():
    # gsplat's own pure-PyTorch projection (cuda/_torch_impl.py), rotated cameras, Gaussians
    # partly outside the fov clamp; its radii predate the opacity-aware box, so compare the rest
    from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci

    g = torch.Generator().manual_seed(7)
    means, quats, scales, opacities, _ = random_scene(80, seed=6)
    means[:10, 0] = -means[:10, 2]  # x/z = -1: beyond the clamp limit, left of the image ...
    scales[:10] = 0.25 * means[:10, 2:]  # ... with footprints reaching into it
    axis_angle = 0.1 * torch.randn(3, 3, generator=g, dtype=F64)
    viewmats, Ks = camera(3)
    viewmats[:, :3, :3] = torch.linalg.matrix_exp(torch.linalg.cross(
        torch.eye(3, dtype=F64)[None], axis_angle[:, None].expand(3, 3, 3), dim=-1))
    leaves = [x.clone().requires_grad_() for x in (means, quats, scales)]
    ours = project(*(x[None] for x in leaves), opacities[None], viewmats, Ks, W, H, 0.01, 1e10)
    ref_leaves = [x.clone().requires_grad_() for x in (means, quats, scales)]
    covars, _ = _quat_scale_to_covar_preci(ref_leaves[1], ref_leaves[2], compute_preci=False)
    _, means2d, depths, conics, _ = _fully_fused_projection(
        ref_leaves[0], covars, viewmats, Ks, W, H, eps2d=0.3)
    visible = ours.radii[..., 0] > 0
    fx, cx = Ks[:, None, 0, 0], Ks[:, None, 0, 2]
    clamped = (ours.means2d[..., 0] - cx) / fx < -(cx + 0.15 * W) / fx
    assert visible.sum() > 150 and (visible & clamped).sum() >= 3
    weights = [torch.randn(x[visible].shape, generator=g, dtype=F64) for x in (means2d, conics)]
    losses = []
    for m2d, con, dep in ((ours.means2d, ours.conics, ours.depths), (means2d, conics, depths)):
        losses.append((m2d[visible] * weights[0]).sum() + (con[visible] * weights[1]).sum()
                      + dep[visible].sum())
    torch.testing.assert_close(ours.means2d[visible], means2d[visible])
    torch.testing.assert_close(ours.conics[visible], conics[visible])
    torch.testing.assert_close(ours.depths[visible], depths[visible])
    for a, b in zip(torch.autograd.grad(losses[0], leaves),
                    torch.autograd.grad(losses[1], ref_leaves), strict=True):
        torch.testing.assert_close(a, b)


def test_gradients_match_finite_differences():
    # big, semi-transparent Gaussians: every pixel has 1/255 < alpha < 0.999 and T > 1e-4,
    # so the cut-offs never switch under the finite-difference steps
    means = torch.tensor([[0.1, 0.05, 3.0], [-0.2, 0.1, 4.0], [0.15, -0.1, 5.0]], dtype=F64)
    quats = torch.tensor([[1.0, 0.1, 0.2, 0.0], [0.9, -0.3, 0.1, 0.2], [1.0, 0.0, 0.0, 0.4]],
                         dtype=F64)
    scales = torch.tensor([[1.2, 0.8, 0.5], [1.5, 1.0, 0.7], [2.0, 1.6, 1.0]], dtype=F64)
    opacities = torch.tensor([0.5, 0.6, 0.7], dtype=F64)
    colors = torch.tensor([[0.9, 0.1, 0.3], [0.2, 0.8, 0.5], [0.4, 0.3, 0.9]], dtype=F64)
    params = [means, quats, scales, opacities, colors]
    viewmats, Ks = camera(2)
    bg = torch.tensor([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]], dtype=F64)
    weights = [torch.randn(2, H, W, k, dtype=F64, generator=torch.Generator().manual_seed(k))
               for k in (3, 1, 1)]

    def render(*params):
        return _outputs(rasterize(*params, viewmats, Ks, W, H, backend="torch", backgrounds=bg))

    def loss(*params):
        return sum((o * w).sum() for o, w in zip(render(*params), weights, strict=True))

    for i in range(3):  # each Gaussian alone covers every pixel with alpha > 1/255
        assert render(*[p[i:i + 1] for p in params])[1].min() > 0.01
    assert render(*params)[1].max() < 0.99
    leaves = [p.clone().requires_grad_() for p in params]
    grads = torch.autograd.grad(loss(*leaves), leaves)
    g = torch.Generator().manual_seed(0)
    h = 1e-6
    for k, (p, grad) in enumerate(zip(params, grads, strict=True)):
        for _ in range(3):  # central differences along random directions
            d = torch.randn(p.shape, generator=g, dtype=F64)
            plus, minus = list(params), list(params)
            plus[k], minus[k] = p + h * d, p - h * d
            fd = (loss(*plus) - loss(*minus)) / (2 * h)
            assert (grad * d).sum().item() == pytest.approx(fd.item(), rel=1e-6, abs=1e-7)


def test_two_gaussians_by_hand():
    # isotropic Gaussians: Σ = s^2 I, so Σ2d = s^2 J J^T + 0.3 I
    f, z = 20.0, (2.0, 4.0)
    viewmats, Ks = camera(1, f)
    means = torch.tensor([[0.0, 0.0, z[0]], [0.3, -0.1, z[1]]], dtype=F64)
    s = torch.tensor([0.1, 0.3], dtype=F64)
    opacities = torch.tensor([0.6, 0.9], dtype=F64)
    colors = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64)
    out = rasterize(means, torch.tensor([[1.0, 0, 0, 0]] * 2, dtype=F64), s[:, None].repeat(1, 3),
                    opacities, colors, viewmats, Ks, W, H, backend="torch")

    px, py = 12.5, 7.5  # pixel (12, 7)
    alphas = []
    for (x, y, zz), sg, op in zip(means.tolist(), s.tolist(), opacities.tolist(), strict=True):
        jxx = (f / zz) ** 2 + (f * x / zz**2) ** 2
        jxy = f * x / zz**2 * f * y / zz**2
        jyy = (f / zz) ** 2 + (f * y / zz**2) ** 2
        a, b, c = sg**2 * jxx + 0.3, sg**2 * jxy, sg**2 * jyy + 0.3
        det = a * c - b * b
        dx, dy = f * x / zz + W / 2 - px, f * y / zz + H / 2 - py
        sigma = 0.5 * (c / det * dx * dx + a / det * dy * dy) - b / det * dx * dy
        alphas.append(min(0.999, op * math.exp(-sigma)))
    a1, a2 = alphas
    assert a1 > 0.1 and a2 > 0.1
    w1, w2 = a1, a2 * (1 - a1)
    pixel = out.colors[0, 7, 12]
    torch.testing.assert_close(pixel, torch.tensor([w1, w2], dtype=F64))
    torch.testing.assert_close(out.alphas[0, 7, 12, 0], torch.tensor(w1 + w2, dtype=F64))
    torch.testing.assert_close(out.depths[0, 7, 12, 0],
                               torch.tensor((w1 * z[0] + w2 * z[1]) / (w1 + w2), dtype=F64))


def test_invariant_to_gaussian_order():
    params = random_scene(200, seed=1, dtype=torch.float32)
    viewmats, Ks = camera(2, dtype=torch.float32)
    perm = torch.randperm(200, generator=torch.Generator().manual_seed(0))
    a = rasterize(*params, viewmats, Ks, W, H, backend="torch")
    b = rasterize(*[p[perm] for p in params], viewmats, Ks, W, H, backend="torch")
    for x, y in zip(_outputs(a), _outputs(b), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-6)
    torch.testing.assert_close(a.radii[:, perm], b.radii)
    torch.testing.assert_close(a.means2d[:, perm], b.means2d)


def test_per_camera_gaussians_match_separate_calls():
    viewmats, Ks = camera(3)
    scenes = [random_scene(50, seed=s) for s in range(3)]
    stacked = [torch.stack(p) for p in zip(*scenes, strict=True)]
    shared_quats = scenes[0][1]  # a shared tensor may be mixed with per-camera ones
    batched = rasterize(stacked[0], shared_quats, *stacked[2:], viewmats, Ks, W, H,
                        backend="torch")
    for c, (means, _, *rest) in enumerate(scenes):
        single = rasterize(means, shared_quats, *rest, viewmats[c:c + 1], Ks[c:c + 1], W, H,
                           backend="torch")
        for x, y in zip(_outputs(batched), _outputs(single), strict=True):
            torch.testing.assert_close(x[c:c + 1], y)
        torch.testing.assert_close(batched.radii[c:c + 1], single.radii)


def test_culled_gaussians_contribute_nothing():
    params = random_scene(30, seed=2)
    viewmats, Ks = camera(1)
    culled = [
        [0.0, 0.0, -2.0],  # behind the camera
        [0.0, 0.0, 0.005],  # in front of the near plane
        [40.0, 0.0, 3.0],  # far right of the image
        [0.0, -30.0, 3.0],  # far above the image
    ]
    extra = random_scene(len(culled), seed=3)
    extra[0] = torch.tensor(culled, dtype=F64)
    combined = [torch.cat([p, e]).requires_grad_() for p, e in zip(params, extra, strict=True)]
    out = rasterize(*combined, viewmats, Ks, W, H, backend="torch")
    base = rasterize(*params, viewmats, Ks, W, H, backend="torch")
    for x, y in zip(_outputs(out), _outputs(base), strict=True):
        torch.testing.assert_close(x, y)
    assert (out.radii[0, 30:] == 0).all() and (out.radii[0, :30] > 0).any()
    assert (out.means2d[0, 30:] == 0).all()
    (out.colors.sum() + out.depths.sum()).backward()
    for p in combined:
        assert (p.grad[30:] == 0).all()


def test_early_stop_excludes_the_gaussian_that_ends_the_pixel():
    # five opaque Gaussians centred on pixel (12, 8): alpha = 0.95 there, T after each is
    # 0.05, 2.5e-3, 1.25e-4, 6.25e-6: the fourth (T <= 1e-4) and the fifth get no weight
    f = 20.0
    viewmats, Ks = camera(1, f)
    z = torch.arange(1, 6, dtype=F64) + 1.0
    x, y = (12.5 - W / 2) / f * z, (8.5 - H / 2) / f * z
    means = torch.stack([x, y, z], -1)
    scales = (0.05 * z)[:, None].repeat(1, 3)
    quats = torch.tensor([[1.0, 0, 0, 0]], dtype=F64).repeat(5, 1)
    opacities = torch.full((5,), 0.95, dtype=F64)
    colors = torch.eye(5, dtype=F64).requires_grad_()
    out = rasterize(means, quats, scales, opacities, colors, viewmats, Ks, W, H, backend="torch")
    weights = torch.tensor([0.95, 0.95 * 0.05, 0.95 * 0.05**2, 0.0, 0.0], dtype=F64)
    torch.testing.assert_close(out.colors[0, 8, 12], weights)
    torch.testing.assert_close(out.alphas[0, 8, 12, 0], weights.sum())
    out.colors[0, 8, 12].sum().backward()
    assert (colors.grad[3:] == 0).all() and (colors.grad[:3] > 0).all()


def test_alpha_cut_off_and_clamp():
    # one Gaussian: every pixel's alpha is opacity * exp(-sigma), 0 below 1/255, at most 0.999
    viewmats, Ks = camera(1)
    for opacity in (0.5, 1.0):
        means = torch.tensor([[0.05, 0.05, 2.0]], dtype=F64)  # on the centre of pixel (12, 8)
        quats = torch.tensor([[1.0, 0.2, 0.1, 0.3]], dtype=F64)
        scales = torch.tensor([[0.3, 0.2, 0.1]], dtype=F64)
        ops = torch.tensor([opacity], dtype=F64)
        out = rasterize(means, quats, scales, ops, torch.ones(1, 1, dtype=F64), viewmats, Ks,
                        W, H, backend="torch")
        proj = project(means[None], quats[None], scales[None], ops[None], viewmats, Ks, W, H,
                       0.01, 1e10)
        a, b, c = proj.conics[0, 0]
        ys, xs = torch.meshgrid(torch.arange(H, dtype=F64) + 0.5,
                                torch.arange(W, dtype=F64) + 0.5, indexing="ij")
        dx, dy = proj.means2d[0, 0, 0] - xs, proj.means2d[0, 0, 1] - ys
        raw = opacity * torch.exp(-(0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy))
        expected = torch.where(raw >= 1 / 255, raw.clamp(max=0.999), 0.0)
        away = (raw - 1 / 255).abs() > 1e-9
        assert ((raw < 1 / 255) & away).any() and ((raw > 1 / 255) & away).any()
        torch.testing.assert_close(out.alphas[0, ..., 0][away], expected[away])
    assert out.alphas.max() == pytest.approx(0.999)


def test_opacity_below_threshold_is_culled():
    params = random_scene(3, seed=4)
    params[3] = torch.tensor([0.5, 0.99 / 255, 1.01 / 255], dtype=F64)
    out = rasterize(*params, *camera(1), W, H, backend="torch")
    assert out.radii[0, 0] > 0 and out.radii[0, 1] == 0 and out.radii[0, 2] > 0


def test_means2d_receives_gradients():
    params = [p.requires_grad_() for p in random_scene(40, seed=5, dtype=torch.float32)]
    out = rasterize(*params, *camera(2, dtype=torch.float32), W, H, backend="torch")
    assert out.means2d.shape == (2, 40, 2) and out.radii.shape == (2, 40)
    (out.colors.sum() + out.alphas.sum()).backward()
    grad = out.means2d.grad
    assert grad is not None and grad.shape == (2, 40, 2)
    assert (grad[out.radii == 0] == 0).all()
    assert (grad[out.radii > 0].abs().sum(-1) > 0).float().mean() > 0.5


def test_empty_and_fully_culled_scenes():
    viewmats, Ks = camera(2)
    for N in (0, 3):
        params = random_scene(N)
        params[0][:, 2] = -1.0  # all behind the camera
        out = rasterize(*params, viewmats, Ks, W, H, backend="torch")
        assert out.colors.shape == (2, H, W, 4) and (out.alphas == 0).all()
        assert (out.depths == 0).all() and out.radii.shape == (2, N)


def test_auto_backend_and_argument_errors():
    params = random_scene(5)
    viewmats, Ks = camera(1)
    out = rasterize(*params, viewmats, Ks, W, H)  # "auto" on CPU tensors: torch
    assert out.colors.shape == (1, H, W, 4)
    with pytest.raises(ValueError, match="unknown render backend 'cuda'"):
        rasterize(*params, viewmats, Ks, W, H, backend="cuda")
    with pytest.raises(ValueError, match="gsplat backend needs CUDA"):
        rasterize(*params, viewmats, Ks, W, H, backend="gsplat")
    with pytest.raises(ValueError, match="scales has shape"):
        rasterize(params[0], params[1], params[2][:, :2], *params[3:], viewmats, Ks, W, H)
    with pytest.raises(ValueError, match="backgrounds has shape"):
        rasterize(*params, viewmats, Ks, W, H, backgrounds=torch.zeros(1, 3))
