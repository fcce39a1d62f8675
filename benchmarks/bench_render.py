"""Benchmark `lmf_gs.render.rasterize`: forward and forward+backward milliseconds.

Scenes are random but realistic: Gaussians spread through the camera frustum at depths 2-10,
log-uniform scales giving 1-30 px footprints (3-sigma diameters, anisotropic), random
rotations and opacities, D = 7 channels (RGB, 3 layer one-hots, 1 uncertainty).

    python benchmarks/bench_render.py [--repeats 5] [--backend torch] [--sizes 10000 50000]
                                      [--threads 2]

CPU timings need an otherwise idle machine: with competing processes, OpenMP's parallel regions
wait for descheduled threads and the 2-thread numbers can be several times slower than 1 thread.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from rich.console import Console
from rich.table import Table

from lmf_gs.render import rasterize

RESOLUTIONS = ((228, 128), (456, 256))
BASELINE = (5000, 228, 128)  # the naive padded per-tile rasteriser: ~1.5 s fwd+bwd


def make_scene(n: int, width: int, height: int, device: str, seed: int = 0) -> dict:
    """Random Gaussians in front of one pinhole camera (fov ~64 deg horizontally)."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g)

    fx = 0.8 * width
    z = 2.0 + 8.0 * rand(n)
    x = (1.2 * rand(n) - 0.6) * width / fx * z
    y = (1.2 * rand(n) - 0.6) * height / fx * z
    radius_px = 0.5 * 30.0 ** rand(n)  # 3-sigma radius: 0.5-15 px, footprints 1-30 px
    scales = (radius_px / 3.0 * z / fx)[:, None] * (0.3 + 0.7 * rand(n, 3))
    layers = torch.nn.functional.one_hot(torch.randint(0, 3, (n,), generator=g), 3).float()
    scene = {
        "means": torch.stack([x, y, z], -1),
        "quats": torch.randn(n, 4, generator=g),
        "scales": scales,
        "opacities": 0.05 + 0.95 * rand(n),
        "colors": torch.cat([rand(n, 3), layers, rand(n, 1)], -1),
        "viewmats": torch.eye(4)[None],
        "Ks": torch.tensor([[fx, 0.0, width / 2], [0.0, fx, height / 2], [0.0, 0.0, 1.0]])[None],
    }
    return {k: v.to(device) for k, v in scene.items()}


def median_ms(fn: Callable[[], None], repeats: int, device: str) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times)


def bench(n: int, width: int, height: int, backend: str, repeats: int) -> tuple[float, float]:
    """(forward ms, forward+backward ms) of one scene."""
    device = "cuda" if backend == "gsplat" else "cpu"
    scene = make_scene(n, width, height, device)
    params = {k: scene[k].requires_grad_() for k in
              ("means", "quats", "scales", "opacities", "colors")}

    def forward() -> None:
        with torch.no_grad():
            rasterize(**scene, width=width, height=height, backend=backend)

    def forward_backward() -> None:
        out = rasterize(**scene, width=width, height=height, backend=backend)
        (out.colors.sum() + out.alphas.sum() + out.depths.sum()).backward()
        for p in params.values():
            p.grad = None

    return median_ms(forward, repeats, device), median_ms(forward_backward, repeats, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", choices=("torch", "gsplat", "all"), default="all",
                        help="all: torch, plus gsplat when CUDA is available")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000],
                        help="numbers of Gaussians (each at every resolution)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    backends = [args.backend] if args.backend != "all" else (
        ["torch", "gsplat"] if torch.cuda.is_available() else ["torch"])
    cases = [BASELINE] + [(n, w, h) for n in args.sizes for w, h in RESOLUTIONS]

    table = Table(title=f"rasterize, D=7, median of {args.repeats} "
                        f"({torch.get_num_threads()} CPU threads)")
    for col in ("backend", "gaussians", "resolution", "forward ms", "fwd+bwd ms"):
        table.add_column(col, justify="right")
    for backend in backends:
        for n, w, h in cases:
            fwd, fwd_bwd = bench(n, w, h, backend, args.repeats)
            table.add_row(backend, f"{n:,}", f"{w}x{h}", f"{fwd:.1f}", f"{fwd_bwd:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
