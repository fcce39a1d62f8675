"""The result of `lmf_gs.render.rasterize`."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

# extra channels of a render: (feature channel c, frozen [N] bool) -> a copy of channel c with
# no gradient to the frozen Gaussians, as if they were detached
Isolate = tuple[tuple[int, Tensor], ...]


@dataclass
class RenderOutput:
    """C rendered images of N Gaussians with D channels.

    ``means2d`` is the tensor the rasteriser consumed; when it requires grad, `rasterize` calls
    ``retain_grad()`` on it, so ``means2d.grad`` holds the screen-space gradient (pixels) after
    ``backward()``, as densification strategies expect.
    """

    colors: Tensor  # [C, H, W, D]
    alphas: Tensor  # [C, H, W, 1] accumulated opacity
    depths: Tensor  # [C, H, W, 1] expected depth sum_i w_i z_i / max(alpha, 1e-10)
    means2d: Tensor  # [C, N, 2] projected means (0 where culled)
    radii: Tensor  # [C, N] int32 max of gsplat's (x, y) box half-sizes in pixels, 0 = culled

    @property
    def visible(self) -> Tensor:
        """[C, N] bool: the Gaussian was rasterised in that camera."""
        return self.radii > 0
