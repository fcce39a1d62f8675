"""`rasterize`: the one rendering entry point, dispatching to the gsplat or torch backend."""

from __future__ import annotations

import torch
from torch import Tensor

from lmf_gs.render.output import Isolate, RenderOutput
from lmf_gs.render.torch_backend import rasterize_torch

BACKENDS = ("auto", "torch", "gsplat")


def rasterize(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    *,
    backend: str = "auto",
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    backgrounds: Tensor | None = None,
    isolate: Isolate = (),
) -> RenderOutput:
    """Render N Gaussians with D-channel features into C pinhole cameras (gsplat "RGB+ED").

    Each Gaussian tensor may carry a leading camera dim C (per-camera Gaussians, e.g. deformed
    per frame) or not (shared by all cameras).

    Args:
        means: [N, 3] or [C, N, 3] world positions.
        quats: [N, 4] or [C, N, 4] wxyz rotations, normalised inside.
        scales: [N, 3] or [C, N, 3] activated (positive) scales.
        opacities: [N] or [C, N] activated opacities in [0, 1].
        colors: [N, D] or [C, N, D] features, any D >= 1.
        viewmats: [C, 4, 4] world-to-camera, OpenCV axes (x right, y down, z forward).
        Ks: [C, 3, 3] intrinsics; pixel (i, j) has its centre at (i + 0.5, j + 0.5).
        backend: "auto" (gsplat for CUDA tensors when CUDA is available, else torch),
            "torch" (any device) or "gsplat" (CUDA tensors).
        backgrounds: [C, D] colours behind the Gaussians.
        isolate: pairs (channel c, frozen [N] bool); each appends to ``colors`` a copy of
            channel c whose gradient does not reach the frozen Gaussians (the torch backend
            in the same pass, gsplat by rendering again with them detached).

    Returns:
        `RenderOutput`. ``out.means2d`` [C, N, 2] is the very tensor the rasteriser consumed
        and has ``retain_grad()`` called on it (when it requires grad), so densification reads
        the screen-space gradient as ``out.means2d.grad`` after ``backward()``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown render backend {backend!r}; expected one of {BACKENDS}")
    if near_plane <= 0:
        raise ValueError(f"near_plane must be positive, got {near_plane}")
    C, N, D = viewmats.shape[0], means.shape[-2], colors.shape[-1]
    _check("viewmats", viewmats, (C, 4, 4))
    _check("Ks", Ks, (C, 3, 3))
    if backgrounds is not None:
        _check("backgrounds", backgrounds, (C, D))
    gaussians = [_per_camera(name, x, shape, C) for name, x, shape in (
        ("means", means, (N, 3)), ("quats", quats, (N, 4)), ("scales", scales, (N, 3)),
        ("opacities", opacities, (N,)), ("colors", colors, (N, max(D, 1))))]
    if backend == "auto":
        backend = "gsplat" if torch.cuda.is_available() and means.is_cuda else "torch"
    if backend == "gsplat":
        if not means.is_cuda:
            raise ValueError("the gsplat backend needs CUDA tensors; use backend='torch'")
        from lmf_gs.render.gsplat_backend import rasterize_gsplat

        out = rasterize_gsplat(*gaussians, viewmats, Ks, width, height, near_plane, far_plane,
                               backgrounds)
        copies = [rasterize_gsplat(*_detached(gaussians, frozen), viewmats, Ks, width, height,
                                   near_plane, far_plane, backgrounds).colors[..., c:c + 1]
                  for c, frozen in isolate]
        out.colors = torch.cat([out.colors, *copies], -1)
    else:
        out = rasterize_torch(*gaussians, viewmats, Ks, width, height, near_plane, far_plane,
                              backgrounds, isolate)
    if out.means2d.requires_grad:
        out.means2d.retain_grad()
    return out


def _detached(gaussians: list[Tensor], frozen: Tensor) -> list[Tensor]:
    """The [B, N, *] Gaussian tensors with the ``frozen [N]`` ones cut from the graph."""
    return [torch.where(frozen.view(1, -1, *[1] * (x.dim() - 2)), x.detach(), x)
            for x in gaussians]


def _check(name: str, x: Tensor, shape: tuple[int, ...]) -> None:
    if tuple(x.shape) != shape:
        raise ValueError(f"{name} has shape {tuple(x.shape)}; expected {shape}")


def _per_camera(name: str, x: Tensor, shape: tuple[int, ...], C: int) -> Tensor:
    """``x`` as [1, *shape] (shared by all cameras) or [C, *shape] (one per camera)."""
    if tuple(x.shape) == shape:
        return x[None]
    _check(name, x, (C, *shape))
    return x
