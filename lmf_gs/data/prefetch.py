"""`Prefetcher`: decode a scene's upcoming frames (and motion masks) ahead on worker threads.

JPEG decoding (Pillow) and the numpy undistortion release the GIL, so threads overlap them with
the training step. Typical use, with the sampler's order known an epoch at a time::

    with Prefetcher(scene, workers=2, masks=True) as pf:
        pf.schedule(order)                  # frame indices, in the order they will be asked for
        for i in order:
            s = pf.get(i)                   # s.image uint8 [h, w, 3]; s.mask uint8 [h, w] | None
            rgb, motion = s.rgb, s.motion   # float32 in [0, 1] ([h, w, 3], [h, w] | None)

or ``for s in pf.frames(order)``. Reads go through `Scene.image_u8` / `Scene.motion_mask_u8`, so
they fill the scene's byte-capped cache. A frame that cannot be read raises its `DataError`
(one line naming the file) from `get` in the calling thread.
"""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from lmf_gs.data.scene import Scene


@dataclass(frozen=True)
class Sample:
    """One frame's targets at the scene's working resolution (arrays shared with the cache:
    read-only)."""

    index: int
    image: np.ndarray  # uint8 [h, w, 3]
    mask: np.ndarray | None  # uint8 [h, w] (255 = moving); None: no mask, or masks not asked for

    @property
    def rgb(self) -> np.ndarray:
        """``float32 [h, w, 3]`` in [0, 1]."""
        return self.image.astype(np.float32) / 255

    @property
    def motion(self) -> np.ndarray | None:
        """``float32 [h, w]`` in [0, 1], or None."""
        return None if self.mask is None else self.mask.astype(np.float32) / 255


class Prefetcher:
    """Reads frames of ``scene`` on ``workers`` threads, at most ``ahead`` (default
    ``4 * workers``) scheduled frames before the one asked for; ``masks`` also reads each
    frame's motion mask. ``wait_s`` sums the seconds `get` spent waiting (its caller's data
    stall)."""

    def __init__(self, scene: Scene, workers: int = 2, masks: bool = False,
                 ahead: int | None = None):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.scene, self.masks = scene, masks
        self.ahead = ahead if ahead is not None else 4 * workers
        scene.frame_store  # noqa: B018 (opened here: a missing frame or archive is reported now)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="lmf-prefetch")
        self._close = weakref.finalize(self, self._pool.shutdown, wait=False, cancel_futures=True)
        self._queue: deque[int] = deque()
        self._pending: dict[int, Future[Sample]] = {}
        self.wait_s = 0.0
        self.gets = 0

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop scheduled reads and stop the threads (after the reads already running)."""
        self._queue.clear()
        self._pending.clear()
        self._close.detach()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _read(self, i: int) -> Sample:
        mask = self.scene.motion_mask_u8(i) if self.masks else None
        return Sample(i, self.scene.image_u8(i), mask)

    def _fill(self) -> None:
        while len(self._pending) < self.ahead and self._queue:
            i = self._queue.popleft()
            if i not in self._pending:
                self._pending[i] = self._pool.submit(self._read, i)

    def schedule(self, indices: Iterable[int]) -> None:
        """Append frame indices to the order in which `get` will ask for them."""
        self._queue.extend(int(i) for i in indices)
        self._fill()

    def get(self, i: int) -> Sample:
        """Frame ``i``: its scheduled read's result (waiting for it if still running), or read
        now when it was not scheduled."""
        start = time.perf_counter()
        i = int(i)
        future = self._pending.pop(i, None)
        if future is None and self._queue and self._queue[0] == i:
            self._queue.popleft()
        self._fill()
        try:
            return self._read(i) if future is None else future.result()
        finally:
            self.wait_s += time.perf_counter() - start
            self.gets += 1

    def frames(self, order: Iterable[int]) -> Iterator[Sample]:
        """Schedule ``order`` and yield its samples in that order."""
        order = list(order)
        self.schedule(order)
        for i in order:
            yield self.get(i)
