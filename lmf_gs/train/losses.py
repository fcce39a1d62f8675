"""The Gaussian backend's loss context and its mask sparsity term."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from lmf_gs.core.batch import Crop
from lmf_gs.core.losses import LossTerm, RenderContext
from lmf_gs.model.layered import LayeredGaussians, LayeredRender


@dataclass(kw_only=True)
class GaussianRenderContext(RenderContext):
    """`RenderContext` of a Gaussian render: isolated masks rasterise the batch again with the
    detached sets' parameters cut from the graph (only the crop's pixels when cropped)."""

    model: LayeredGaussians
    render: LayeredRender
    backend: str

    def _isolated(self, detach: tuple[str, ...], crop: Crop | None) -> Tensor:
        b = self.batch
        K, (h, w) = b.K, b.image.shape[1:3]
        if crop is not None:
            K = K.clone()
            K[:, 0, 2] -= crop[0]
            K[:, 1, 2] -= crop[1]
            w, h = crop[2] - crop[0], crop[3] - crop[1]
        return self.model.render(b.t, b.w2c, K, w, h, self.backend, self.layers,
                                 detach=detach).masks


def sparsity_loss(weight: float) -> LossTerm:
    """NeuralDiff's sparsity on rendered masks: ``weight`` x mean of the non-static masks."""

    def term(ctx: RenderContext) -> Tensor:
        return weight * ctx.render.masks[..., 1:].sum(-1).mean()

    return term
