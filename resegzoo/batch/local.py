"""``--engine local``: a batch's blocks computed in this process, in order, while the next block
is read and prepared in a background thread (:func:`resegzoo.runtime.prefetch.prefetched`)."""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator, Sequence

from resegzoo.batch.job import Block, BlockOutcome, RasterPlan, read_block, segment_block


class LocalBlocks:
    """The engine interface (see :mod:`resegzoo.engines`): ``blocks(...)`` yields each block's
    :class:`BlockOutcome`; ``report()`` gives lines for the end of the run (none here)."""

    name = "local"

    def blocks(self, segmenter: Any, vocab: Any, plans: Sequence[RasterPlan], todo: Sequence[tuple[int, Block]],
               skip: Callable[[int], bool] = lambda number: False) -> Iterator[BlockOutcome]:
        """Segment the ``(raster number, block)`` pairs of ``todo``; a raster for which ``skip``
        turns true (one of its blocks failed) is not read or segmented any further."""
        from resegzoo.runtime.prefetch import prefetched

        def read(item: tuple[int, Block]) -> Any:
            number, block = item
            if skip(number):
                return None
            try:
                return read_block(segmenter, plans[number], block)
            except Exception as exc:  # raised again at its block's turn
                return exc

        recipe = getattr(segmenter, "recipe", None)
        depth = getattr(getattr(recipe, "inference", None), "prefetch", 0) or 0
        for (number, block), ready in prefetched(read, todo, depth):
            if skip(number):
                continue
            start = time.perf_counter()
            try:
                if isinstance(ready, Exception):
                    raise ready
                result = segment_block(segmenter, vocab, plans[number], block, ready)
            except Exception as exc:  # the batch decides: stop, or report this raster and go on
                yield BlockOutcome(number, block, error=exc, seconds=time.perf_counter() - start)
                continue
            yield BlockOutcome(number, block, result, seconds=time.perf_counter() - start)

    def report(self) -> list[str]:
        return []
