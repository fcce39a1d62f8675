"""The Gaussians of each layer at one frame, in world coordinates and 3DGS parameters."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from lmf_gs.core.layers import LAYERS
from lmf_gs.data.scene import Scene
from lmf_gs.errors import LmfError
from lmf_gs.model.layered import LayeredGaussians
from lmf_gs.model.sh import C0, num_sh_bases, rgb_to_sh0


@dataclass
class LayerSnapshot:
    """N Gaussians of one layer at one frame, as the renderer sees them (world frame)."""

    means: Tensor  # [N, 3] world
    quats: Tensor  # [N, 4] wxyz, as the model holds them (the rasteriser normalises)
    scales: Tensor  # [N, 3] log scales
    opacities: Tensor  # [N] logits (semi-static/dynamic: including the frame's offset)
    sh: Tensor  # [N, K, 3] SH of the model's degree; non-static: degree 0 of the frame's colour
    view_rgb: Tensor  # [N, 3] colour towards the frame's camera (what the renderer uses)

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def alpha(self) -> Tensor:
        """Activated opacities ``[N]``."""
        return torch.sigmoid(self.opacities)

    @property
    def base_rgb(self) -> Tensor:
        """Colour of the SH degree-0 part ``[N, 3]`` (view-independent)."""
        return (C0 * self.sh[:, 0] + 0.5).clamp_min(0.0)

    def select(self, keep: Tensor) -> LayerSnapshot:
        """The Gaussians where the bool ``keep [N]`` holds."""
        return LayerSnapshot(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    @staticmethod
    def cat(parts: list[LayerSnapshot]) -> LayerSnapshot:
        """Concatenation in the given order."""
        return LayerSnapshot(**{f.name: torch.cat([getattr(p, f.name) for p in parts])
                                for f in fields(LayerSnapshot)})


def parse_layers(spec: str | None) -> tuple[str, ...]:
    """``"static,dynamic"`` -> the layers in LAYERS order; None -> all of them."""
    if spec is None:
        return LAYERS
    names = [s.strip() for s in spec.split(",") if s.strip()]
    for name in names:
        if name not in LAYERS:
            raise LmfError(f"unknown layer {name!r} (expected some of: {', '.join(LAYERS)})")
    if not names:
        raise LmfError("--layers: no layer given")
    return tuple(n for n in LAYERS if n in names)


@torch.no_grad()
def snapshot(
    model: LayeredGaussians, t: float, c2w: Tensor, layers: tuple[str, ...] = LAYERS
) -> dict[str, LayerSnapshot]:
    """Each of ``layers`` at normalised time ``t`` seen from camera ``c2w [4, 4]``: the dynamic
    set placed in the world with ``c2w``, the semi-static set with that time's opacity/colour."""
    device = c2w.device
    tt = torch.tensor([t], dtype=torch.float32, device=device)
    g, sizes = model.gaussians(tt, c2w[None], layers)
    K = num_sh_bases(model.cfg.sh_degree)
    out, start = {}, 0
    for layer in (n for n in LAYERS if n in layers):
        sl = slice(start, start + sizes[layer])
        start = sl.stop
        p = model.sets[layer]
        rgb = g["colors"][0, sl, :3]
        if layer == "static":
            logits = p["opacities"]
            sh = p["sh0"] if "shN" not in p else torch.cat([p["sh0"], p["shN"]], dim=1)
        else:
            logits = p["opacities"] + model.deformation(layer, tt)["opacity"][0, :, 0]
            sh = torch.zeros(len(rgb), K, 3, device=device)
            sh[:, 0] = rgb_to_sh0(rgb)
        out[layer] = LayerSnapshot(means=g["means"][0, sl], quats=g["quats"][0, sl],
                                   scales=p["scales"].detach(), opacities=logits.detach(),
                                   sh=sh.detach(), view_rgb=rgb)
    return out


def frame_snapshot(
    model: LayeredGaussians, scene: Scene, frame: str | int, layers: tuple[str, ...] = LAYERS
) -> dict[str, LayerSnapshot]:
    """`snapshot` at a registered frame (name or number) of ``scene``, with the camera exactly
    as the renderer inverts it."""
    i = scene.index(frame)
    device = model.scene_scale.device
    w2c = torch.as_tensor(scene.w2c[i], dtype=torch.float32, device=device)
    return snapshot(model, float(scene.times[i]), torch.linalg.inv(w2c), layers)
