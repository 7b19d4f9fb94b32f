"""``--engine local``: the one local loop of segment and eval. Items are run in this process, in
order, while the next items are read and prepared in a background thread
(:func:`resegzoo.runtime.prefetch.prefetched`, ``task.prefetch`` ahead)."""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator, Sequence

from resegzoo.engines.task import Outcome, Task, build_work


class LocalEngine:
    """The engine interface (:mod:`resegzoo.engines.task`) in this process; reports nothing."""

    name = "local"

    def __enter__(self) -> "LocalEngine":
        return self

    def __exit__(self, *exc: Any) -> bool:
        return False

    def run(self, task: Task, items: Sequence[Any], segmenter: Callable[[], Any] | None = None,
            skip: Callable[[int], bool] | None = None) -> Iterator[Outcome]:
        """Each item's :class:`Outcome` in order; an item ``skip`` turns true for is neither read
        nor run. An exception of ``prepare`` or ``run`` is the item's ``error`` (the caller
        decides: stop, or report it and go on); the segmenter's own failure is raised."""
        from resegzoo.runtime.prefetch import prefetched

        work = build_work(task, None if segmenter is None else segmenter())
        skipped = skip or (lambda index: False)

        def read(pair: tuple[int, Any]) -> Any:
            index, item = pair
            if skipped(index):
                return None
            try:
                return work.prepare(item)
            except Exception as exc:  # raised again at its item's turn
                return exc

        for (index, item), ready in prefetched(read, list(enumerate(items)), task.prefetch):
            if skipped(index):
                continue
            start = time.perf_counter()
            try:
                if isinstance(ready, Exception):
                    raise ready
                value = work.run(item, ready)
            except Exception as exc:
                yield Outcome(index, item, error=exc, seconds=time.perf_counter() - start)
                continue
            yield Outcome(index, item, value, seconds=time.perf_counter() - start)

    def report(self) -> list[str]:
        return []
