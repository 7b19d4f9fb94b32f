"""Overlapping stages: prepare the next items in a background thread while this one is used.

Decoding images and making segments (SLIC, Felzenszwalb: numpy and scikit-image, which release
the GIL in their inner loops; SAM: torch, which does too) can run while the CLIP encoder works on
the previous item. :func:`prefetched` runs ``make`` on the items in ONE background thread, in
order, at most ``depth`` items ahead of the consumer, so memory stays bounded and the results
arrive in the same order, with the same values, as a plain loop would give them. An exception
raised by ``make`` is raised to the consumer at that item's turn.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def prefetched(make: Callable[[T], R], items: Iterable[T], depth: int = 1) -> Iterator[tuple[T, R]]:
    """Yield ``(item, make(item))`` for each item, in order.

    ``depth`` 0: ``make`` runs in the caller's thread just before its item is yielded (a plain
    loop). ``depth`` >= 1: while the consumer holds one result, the background thread works on
    the next items, at most ``depth`` results being made or waiting beyond the one held.
    """
    if depth < 0:
        raise ValueError(f"prefetch depth must be 0 or more, got {depth}")
    if depth == 0:
        for item in items:
            yield item, make(item)
        return
    source = iter(items)
    pending: deque[tuple[T, Future[R]]] = deque()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="resegzoo-prefetch")
    try:
        def top_up() -> None:
            while len(pending) < depth + 1:
                try:
                    item = next(source)
                except StopIteration:
                    return
                pending.append((item, pool.submit(make, item)))

        while True:
            top_up()  # the item about to be yielded and the `depth` after it
            if not pending:
                return
            item, future = pending.popleft()
            yield item, future.result()  # re-raises make's exception at this item's turn
    finally:
        # the consumer stopped early or failed: drop what has not started, wait for what has
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=True)
