"""Tile/Gaussian intersections, depth sorting and the padded chunk layout of the torch backend.

Mirrors gsplat's ``intersect_tile_kernel`` (``cuda/csrc/IntersectTile.cu``) and the radix sort
of ``isect_tiles`` (``cuda/_wrapper.py``): a Gaussian intersects every tile overlapped by its
radius box, and each tile's list is sorted front to back by depth, ties by Gaussian index.

The tile size is free: the radius box bounds the region where ``alpha >= 1/255`` (see
``projection.py``), so every pixel a Gaussian can reach lies in one of its tiles whatever the
tile size, and the image does not depend on it.

For the dense compositing of ``composite.py`` the tile lists are laid out in *slots*: tiles are
sorted by list length (descending); consecutive tiles whose lengths are within ``PAD_RATIO`` of
the first (longest) one form a chunk of B tiles, each padded to that length L, with at most
``budget`` (slot, pixel) evaluations per chunk. A chunk is a contiguous [B, L] block of slots,
padding wastes at most ``1 - PAD_RATIO`` of the work, and memory stays bounded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

PAD_RATIO = 0.8


@dataclass
class Chunk:
    """B tiles padded to L slots each: slots ``start : start + B * L`` of the layout."""

    tiles: Tensor  # [B] global tile ids (camera * tiles_per_image + tile)
    start: int
    length: int  # L


@dataclass
class TileLayout:
    """Front-to-back Gaussian lists of the C * tiles_y * tiles_x tiles, in padded slots."""

    tile_size: int
    tiles_x: int
    tiles_y: int
    n_tiles: int
    gaussian_ids: Tensor  # [S] flat id (camera * N + gaussian) in each slot, -1 for padding
    tile_ids: Tensor  # [S] global tile id of each slot
    chunks: list[Chunk]


def layout_tiles(
    means2d: Tensor,
    radii: Tensor,
    depths: Tensor,
    width: int,
    height: int,
    tile_size: int,
    budget: int,
) -> TileLayout:
    """Intersect the Gaussians of C images with tiles, sort them and lay them out in chunks.

    Args:
        means2d: [C, N, 2] projected means.
        radii: [C, N, 2] radius boxes (0 = culled).
        depths: [C, N] camera-space depths (positive where visible).
        budget: max B * L * tile_size**2 per chunk (a single tile may exceed it).
    """
    C = depths.shape[0]
    tiles_x, tiles_y = math.ceil(width / tile_size), math.ceil(height / tile_size)
    tile, pair_ids = _intersections(means2d, radii, depths, tile_size, tiles_x, tiles_y)
    counts = torch.bincount(tile, minlength=C * tiles_x * tiles_y)
    lengths, tiles = torch.sort(counts, descending=True)
    chunks, padded = _chunks(tiles, lengths.tolist(), tile_size * tile_size, budget)
    pad = torch.tensor(padded, dtype=torch.long, device=tiles.device)  # per non-empty tile
    tiles, lengths = tiles[: pad.numel()], lengths[: pad.numel()]
    slot_tiles = torch.repeat_interleave(tiles, pad)
    pos = torch.arange(slot_tiles.numel(), device=tiles.device) - torch.repeat_interleave(
        torch.cumsum(pad, 0) - pad, pad)  # position in the tile's list
    first = (torch.cumsum(counts, 0) - counts).index_select(0, tiles)
    pair = (torch.repeat_interleave(first, pad) + pos).clamp_max(pair_ids.numel() - 1)
    valid = pos < torch.repeat_interleave(lengths, pad)
    return TileLayout(
        tile_size=tile_size,
        tiles_x=tiles_x,
        tiles_y=tiles_y,
        n_tiles=C * tiles_x * tiles_y,
        gaussian_ids=torch.where(valid, pair_ids.index_select(0, pair), -1),
        tile_ids=slot_tiles,
        chunks=chunks,
    )


def _intersections(
    means2d: Tensor, radii: Tensor, depths: Tensor, tile_size: int, tiles_x: int, tiles_y: int
) -> tuple[Tensor, Tensor]:
    """(tile, Gaussian) pairs sorted by global tile id, then depth: tile ids [P] (int32) and
    flat Gaussian ids [P] (camera * N + gaussian)."""
    N = depths.shape[1]
    device = depths.device
    ids = (radii > 0).all(-1).flatten().nonzero().squeeze(1)
    ids = ids.index_select(0, _depth_order(depths.flatten().index_select(0, ids)))
    box = _tile_bounds(means2d.flatten(0, 1).index_select(0, ids),
                       radii.flatten(0, 1).index_select(0, ids).to(means2d.dtype),
                       tile_size, tiles_x, tiles_y).long()
    x0, y0, x1, y1 = box.unbind(-1)
    box_w = x1 - x0
    n_hit = box_w * (y1 - y0)
    # pair p of the g-th Gaussian covers tile number p - start_g of its box, in row-major order
    g = torch.repeat_interleave(torch.arange(ids.numel(), device=device), n_hit)
    local = torch.arange(g.numel(), device=device)
    local -= (torch.cumsum(n_hit, 0) - n_hit).index_select(0, g)
    first = torch.div(ids, N, rounding_mode="floor") * (tiles_x * tiles_y) + y0 * tiles_x + x0
    w = box_w.index_select(0, g)
    row = torch.div(local, w, rounding_mode="floor")
    tile = (first.index_select(0, g) + local + row * (tiles_x - w)).int()
    tile, order = torch.sort(tile, stable=True)  # int32 radix sort; stable keeps depth order
    return tile, ids.index_select(0, g.index_select(0, order))


def _tile_bounds(
    means2d: Tensor, radii: Tensor, tile_size: int, tiles_x: int, tiles_y: int
) -> Tensor:
    """Tile box [M, 4] = (x0, y0, x1, y1), ends exclusive, as gsplat ``intersect_tile_kernel``."""
    lo = torch.floor((means2d - radii) / tile_size).clamp_min(0)
    hi = torch.ceil((means2d + radii) / tile_size).clamp_min(0)
    lim = means2d.new_tensor([tiles_x, tiles_y])
    return torch.cat([torch.minimum(lo, lim), torch.minimum(hi, lim)], -1)


def _depth_order(depths: Tensor) -> Tensor:
    """Stable argsort of positive depths [M] by their IEEE bits (a fast integer radix sort)."""
    return torch.sort(depths.view(_INT_OF[depths.dtype]), stable=True).indices


_INT_OF = {torch.float32: torch.int32, torch.float64: torch.int64}


def _chunks(
    tiles: Tensor, lengths: list[int], pixels: int, budget: int
) -> tuple[list[Chunk], list[int]]:
    """Group non-empty tiles (sorted by decreasing length) into chunks; padded length per tile."""
    chunks, padded = [], []
    i = start = 0
    while i < len(lengths) and lengths[i] > 0:
        L = lengths[i]
        cap = max(1, budget // (L * pixels))
        j = i + 1
        while j < len(lengths) and j - i < cap and lengths[j] >= PAD_RATIO * L:
            j += 1
        chunks.append(Chunk(tiles=tiles[i:j], start=start, length=L))
        padded += [L] * (j - i)
        start += (j - i) * L
        i = j
    return chunks, padded
