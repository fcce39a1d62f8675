"""`ArrayCache`: a thread-safe least-recently-used store of numpy arrays under a byte cap."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np


@dataclass
class CacheStats:
    """Counters of an `ArrayCache` since it was made."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0


class ArrayCache:
    """Arrays by key, at most ``cap_bytes`` of array data (``ndarray.nbytes``) in all.

    Putting an array evicts the least recently used ones until the new total fits; an array
    larger than the cap is not kept. ``cap_bytes = 0`` keeps nothing. Safe to use from several
    threads; arrays are stored as given (callers must not modify them afterwards).
    """

    def __init__(self, cap_bytes: int):
        if cap_bytes < 0:
            raise ValueError(f"cap_bytes must be >= 0, got {cap_bytes}")
        self.cap_bytes = cap_bytes
        self.nbytes = 0
        self.stats = CacheStats()
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get(self, key: Hashable) -> np.ndarray | None:
        """The array stored under ``key`` (now the most recently used), or None."""
        with self._lock:
            arr = self._items.get(key)
            if arr is None:
                self.stats.misses += 1
                return None
            self._items.move_to_end(key)
            self.stats.hits += 1
            return arr

    def put(self, key: Hashable, arr: np.ndarray) -> None:
        """Store ``arr`` under ``key`` (replacing any previous one), evicting as needed."""
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.nbytes -= old.nbytes
            if arr.nbytes > self.cap_bytes:
                return
            while self.nbytes + arr.nbytes > self.cap_bytes:
                _, evicted = self._items.popitem(last=False)
                self.nbytes -= evicted.nbytes
                self.stats.evictions += 1
            self._items[key] = arr
            self.nbytes += arr.nbytes
