"""Front-to-back alpha compositing of padded tile lists, with a hand-written backward.

Per pixel this is gsplat's ``rasterize_to_pixels_3dgs_fwd_kernel``
(``cuda/csrc/RasterizeToPixels3DGSFwd.cu``), evaluated for a chunk of B tiles padded to L
Gaussians as dense [B, L, K] tensors (K = tile pixels):

- ``sigma = 0.5 (a dx^2 + c dy^2) + b dx dy`` with ``d = mean2d - pixel_centre``, pixel centres
  at ``(i + 0.5, j + 0.5)``;
- ``alpha = min(0.999, opacity exp(-sigma))`` (gsplat clamps at 0.999, not at 0.99 as the
  original 3DGS code), skipped when ``alpha < 1/255``;
- ``T_i`` is the product of ``1 - alpha`` of the Gaussians in front; a Gaussian with
  ``T_i (1 - alpha_i) <= 1e-4`` ends the pixel and is itself excluded (gsplat's exclusive early
  stop), as are all Gaussians behind it;
- ``feature = sum_i alpha_i T_i f_i``.

The backward is ``rasterize_to_pixels_3dgs_bwd_kernel`` (``RasterizeToPixels3DGSBwd.cu``):
``dL/dalpha_i = T_i q_i - S_i / (1 - alpha_i)`` with ``q_i = f_i . dL/dfeature`` and
``S_i = sum_{j > i} w_j q_j`` the contribution of the Gaussians behind, and no gradient through
a clamped alpha (``opacity exp(-sigma) > 0.999``). The forward keeps, per chunk, the weights
``w = alpha T`` and ``-alpha / (1 - alpha)`` for the backward up to ``CACHE_LIMIT`` (slot, pixel)
entries; the backward recomputes those of the other chunks, which bounds memory whatever the
scene.

Reformulations that make this fast on a CPU without changing the maths:

- ``log2(opacity exp(-sigma))`` is a quadratic polynomial in the pixel coordinates: one matrix
  product of per-slot coefficients [B*L, 6] with the tile's monomials [6, K] (coordinates
  relative to the tile centre to keep the expansion well conditioned), then ``exp2``; the
  backward reduces over pixels with the transposed product;
- features are accumulated with batched matrix products ``f^T [B, F, L] @ w [B, L, K]``;
- masks are applied with ``threshold``/``sign`` arithmetic (boolean masks are slow on CPU);
- the accumulated alpha is a feature equal to 1 (``sum_i w_i``, which is ``1 - T_final``
  up to rounding), so its gradient needs no special case.

Deviations from gsplat, all at rounding level: the accumulated alpha is ``sum_i w_i`` rather
than ``1 - T_final``; ``T`` comes from ``torch.cumprod`` (accumulated in double on CPU) rather than
a float32 running product; ``exp2`` of the polynomial rather than ``__expf(-sigma)``. gsplat also
skips ``sigma < 0``, which cannot happen for the positive-definite conics of ``projection.py``
(blurred covariances); it is not checked here because the expanded polynomial can round to a
tiny negative value at a Gaussian's centre.
"""

from __future__ import annotations

import math
from functools import cache

import torch
import torch.nn.functional as F
from torch import Tensor

from lmf_gs.render.projection import ALPHA_THRESHOLD
from lmf_gs.render.tiles import TileLayout

ALPHA_MAX = 0.999  # gsplat clamps at 0.999 (original 3DGS: 0.99)
T_MIN = 1e-4  # gsplat's transmittance early stop: done when T (1 - alpha) <= T_MIN
PAD_LOGIT = -1e4  # log2 alpha of padding slots: exp2(-1e4) == 0
CACHE_LIMIT = 1 << 26  # (slot, pixel) alphas kept for the backward (2 buffers); beyond: recompute


def pixel_monomials(tile_size: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Monomials (1, x, y, x^2, xy, y^2) [K, 6] of the pixel centres relative to the tile centre."""
    r = torch.arange(tile_size, dtype=dtype, device=device) + 0.5 - 0.5 * tile_size
    y, x = torch.meshgrid(r, r, indexing="ij")
    x, y = x.flatten(), y.flatten()
    return torch.stack([torch.ones_like(x), x, y, x * x, x * y, y * y], -1)


def logit_coefficients(
    u: Tensor, v: Tensor, a: Tensor, b: Tensor, c: Tensor, log2_opacity: Tensor
) -> Tensor:
    """Coefficients [6, S] of ``log2(opacity exp(-sigma))`` over `pixel_monomials`.

    Args:
        u, v: [S] Gaussian mean minus tile centre.
        a, b, c: [S] conic divided by ``ln 2``.
        log2_opacity: [S].
    """
    const = log2_opacity - 0.5 * (a * u * u + c * v * v) - b * u * v
    return torch.stack([const, a * u + b * v, c * v + b * u, -0.5 * a, -b, -0.5 * c])


Blocked = tuple[tuple[int, Tensor], ...]


class CompositeTiles(torch.autograd.Function):
    """(slot logits [6, S], slot features [F, S]) -> tile features [n_tiles, K, F].

    ``blocked``: pairs (feature channel f, slot mask [S] of 0/1) whose 1-slots get no gradient
    from channel f, neither through their alpha nor their feature: channel f is then what a
    render with those Gaussians detached would give, computed in the same pass.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, feats: Tensor, layout: TileLayout, monomials: Tensor,
                blocked: Blocked = ()):
        out = feats.new_zeros(layout.n_tiles, monomials.shape[0], feats.shape[0])
        grad = any(ctx.needs_input_grad[:2])
        cache, cached = [], 0 if grad else CACHE_LIMIT
        for chunk in layout.chunks:
            B, L = chunk.tiles.numel(), chunk.length
            sl = slice(chunk.start, chunk.start + B * L)
            w, nrho = _weights(logits[:, sl], monomials, B, L, grad)
            f = feats[:, sl].view(-1, B, L).transpose(0, 1)  # [B, F, L]
            out[chunk.tiles] = torch.bmm(f, w).mT
            if cached + w.numel() <= CACHE_LIMIT:
                cache.append((w, nrho))
                cached += w.numel()
        ctx.layout, ctx.cache, ctx.blocked = layout, cache, blocked
        ctx.save_for_backward(logits, feats, monomials)
        return out

    @staticmethod
    def backward(ctx, g_out: Tensor):
        logits, feats, monomials = ctx.saved_tensors
        layout: TileLayout = ctx.layout
        g_logits, g_feats = torch.empty_like(logits), torch.empty_like(feats)
        g_monomials = monomials.T * math.log(2.0)  # [6, K]: d alpha / d logit = ln2 alpha
        for i, chunk in enumerate(layout.chunks):
            B, L = chunk.tiles.numel(), chunk.length
            sl = slice(chunk.start, chunk.start + B * L)
            if i < len(ctx.cache):
                w, nrho = ctx.cache[i]
            else:
                w, nrho = _weights(logits[:, sl], monomials, B, L, True)
            g = g_out[chunk.tiles].mT  # [B, F, K]
            q = torch.bmm(feats[:, sl].view(-1, B, L).permute(1, 2, 0), g)  # f_i . g
            g_feats[:, sl] = torch.bmm(g, w.mT).transpose(0, 1).reshape(-1, B * L)
            wq = w * q
            behind = torch.cumsum(wq, 1)
            behind = behind[:, -1:] - behind  # S_i
            # alpha_i dL/dalpha_i = w_i q_i - alpha_i S_i / (1 - alpha_i), 0 where clamped
            unclamped = torch.sign(nrho)
            g_logit = behind.mul_(nrho).sub_(wq.mul_(unclamped))
            for f, mask in ctx.blocked:  # take channel f's share back from its blocked slots
                m = mask[sl].view(B, L, 1)
                g_feats[f, sl] *= 1.0 - mask[sl]
                wqf = w * feats[f, sl].view(B, L, 1) * g[:, f, None, :]  # w_i f_i g
                behind_f = torch.cumsum(wqf, 1)
                behind_f = behind_f[:, -1:] - behind_f
                g_logit.sub_(behind_f.mul_(nrho).sub_(wqf.mul_(unclamped)).mul_(m))
            g_logits[:, sl] = g_monomials @ g_logit.view(B * L, -1).T
        return g_logits, g_feats, None, None, None


def _weights(
    logits: Tensor, monomials: Tensor, B: int, L: int, grad: bool
) -> tuple[Tensor, Tensor | None]:
    """Blending weights ``alpha_i T_i`` of a chunk [B, L, K] (0 where skipped or excluded by
    the early stop) and, if ``grad``, ``-alpha_i / (1 - alpha_i)`` (0 where alpha is clamped)."""
    alpha = (logits.T @ monomials.T).view(B, L, -1).exp2_()
    F.threshold_(alpha, _below(ALPHA_THRESHOLD, alpha.dtype), 0.0)  # skip alpha < 1/255
    alpha.clamp_max_(ALPHA_MAX)
    keep = 1.0 - alpha
    t = F.threshold_(torch.cumprod(keep, 1), T_MIN, 0.0)  # T after each Gaussian, 0 once done
    w = torch.empty_like(alpha)
    w[:, 0] = alpha[:, 0]
    torch.mul(alpha[:, 1:], t[:, :-1], out=w[:, 1:])
    w.mul_(torch.sign(t))  # the Gaussian that ends the pixel is excluded too
    if not grad:
        return w, None
    return w, F.threshold_(alpha.neg_(), -ALPHA_MAX, 0.0).div_(keep)


@cache
def _below(x: float, dtype: torch.dtype) -> float:
    """The largest ``dtype`` value below ``x`` (``threshold`` keeps values strictly above)."""
    t = torch.tensor(x, dtype=dtype)
    return torch.nextafter(t, torch.zeros_like(t)).item()
