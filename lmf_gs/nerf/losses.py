"""NeuralDiff's loss on ray batches, through the same loss terms as the Gaussian backend.

A batch of R rays is presented as R one-pixel cameras (``C = R, H = W = 1``): every ray keeps its
own frame, time and "has a motion mask" flag, so `rgb_loss` (paper Eq. 4) and the PMF/NMF terms
of `lmf_gs.fusion` apply unchanged, including "frames without a mask get no fusion loss".

Colour term: paper Eq. 4 (``||I^ - I||^2 / (2 B^2) + log B^2``, summed over channels), the term
the Gaussian backend uses, so that both backends optimise the same objective. NeuralDiff's
released code averages over channels and adds ``log B``; the minimiser ``B^2 = err`` is the
same up to the channel factor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from lmf_gs.config import Config
from lmf_gs.core.batch import Crop
from lmf_gs.core.losses import LossTerm, RenderContext, rgb_loss
from lmf_gs.nerf.model import NeuralDiff
from lmf_gs.nerf.render import RayRender


@dataclass
class NerfRender:
    """A ray batch in the layout of `LayeredRender` (what the loss terms read)."""

    rgb: Tensor  # [R, 1, 1, 3]
    masks: Tensor  # [R, 1, 1, 3] static, semi-static, dynamic
    beta: Tensor  # [R, 1, 1] (beta_min included)
    depth: Tensor  # [R, 1, 1]
    alpha: Tensor  # [R, 1, 1]
    rays: RayRender
    isolated: dict = field(default_factory=dict)  # none: NeRF isolates by rendering again

    @classmethod
    def of(cls, r: RayRender) -> NerfRender:
        f = r.fine
        return cls(rgb=f.rgb[:, None, None], masks=f.masks[:, None, None],
                   beta=f.beta[:, None, None], depth=f.depth[:, None, None],
                   alpha=f.alpha[:, None, None], rays=r)


@dataclass(kw_only=True)
class NerfRenderContext(RenderContext):
    """`RenderContext` of a ray batch. Isolated masks re-composite the same samples with the
    named layers' fields detached (`NeuralDiff.isolate`): PMF never moves the static MLPs and
    trunk, NMF never moves the dynamic head and its time latent."""

    model: NeuralDiff
    render: NerfRender

    def _isolated(self, detach: tuple[str, ...], crop: Crop | None) -> Tensor:
        r = self.render.rays
        fields = self.model.isolate(r.fields, detach)
        m = r.recomposite(fields, self.model.cfg.beta_min).masks[:, None, None]
        return m if crop is None else m[:, crop[1]:crop[3], crop[0]:crop[2]]


def coarse_loss(ctx: NerfRenderContext) -> Tensor:
    """NeuralDiff's coarse colour term: 0.5 x mean squared error of the coarse (static) render."""
    return 0.5 * (ctx.render.rays.rgb_coarse - ctx.batch.image[:, 0, 0]).square().mean()


def density_sparsity(weight: float) -> LossTerm:
    """NeuralDiff's sparsity: ``weight`` x (mean semi-static + mean dynamic density) over the
    fine samples."""

    def term(ctx: NerfRenderContext) -> Tensor:
        return weight * ctx.render.rays.fields.sigma[..., 1:].mean(dim=(0, 1)).sum()

    return term


def nerf_base_terms(cfg: Config) -> dict[str, LossTerm]:
    """Training loss: fine colour (Eq. 4), coarse colour and the density sparsity."""
    return {"rgb": rgb_loss, "coarse": coarse_loss, "sparsity": density_sparsity(cfg.nerf.sparsity)}
