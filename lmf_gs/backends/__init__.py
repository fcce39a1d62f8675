"""Layered backends behind one interface (`LayeredBackend`) and the registry that names them.

Adding a backend: one module with a `LayeredBackend` subclass, and one entry in `BACKENDS`.
"""

from __future__ import annotations

from lmf_gs.backends.base import LayeredBackend
from lmf_gs.backends.gaussian import GaussianBackend
from lmf_gs.backends.nerf import NerfBackend
from lmf_gs.errors import LmfError

BACKENDS: dict[str, type[LayeredBackend]] = {b.name: b for b in (GaussianBackend, NerfBackend)}


def get_backend(name: str) -> type[LayeredBackend]:
    """The backend class registered as ``name`` (one-line error otherwise)."""
    if name not in BACKENDS:
        raise LmfError(f"unknown backend {name!r} (expected one of: {', '.join(BACKENDS)})")
    return BACKENDS[name]


__all__ = ["BACKENDS", "LayeredBackend", "get_backend"]
