"""``resegzoo segment --engine ray``: (raster, block) work items on Ray actors.

The driver plans every raster once (:func:`resegzoo.batch.job.plan_raster`: blocks, stretch,
output grid) and hands the blocks to actors. Each actor builds the segmenter once and runs
:func:`resegzoo.batch.job.segment_block`, which reads the block's own pixels from the raster's
path, so no pixels pass through the driver: only each block's labels (and probabilities) come back.

:class:`RayBlocks` is the engine :func:`resegzoo.batch.units.run_batch` asks for blocks; the batch
writer on the driver (the same one as ``--engine local``'s) spools and writes them as they arrive.
A block that fails for a data reason comes back as its worker's message: that raster is not
written (its finished blocks stay spooled), the others go on.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Iterator, Sequence

from resegzoo.batch.job import BlockOutcome
from resegzoo.engines.options import EngineOptions, SegmenterSpec
from resegzoo.engines.ray_eval import actor_device
from resegzoo.engines.ray_runtime import ActorWork, Throughput, ray_session, stream

__all__ = ["BlockWork", "RayBlocks", "SegmenterSpec"]


class BlockWork(ActorWork):
    """One actor: a segmenter built once; ``work((raster number, block))`` -> BlockResult."""

    def setup(self, context: dict[str, Any]) -> None:
        from resegzoo.segmenter.core import Segmenter

        spec: SegmenterSpec = context["segmenter"]
        self.plans = context["plans"]
        self.vocab = context["vocab"]
        self.segmenter = Segmenter.from_recipe(spec.recipe, model=spec.model, masks=spec.masks,
                                               device=spec.device, architecture=spec.architecture)

    def work(self, item: tuple[int, Any]) -> Any:
        from resegzoo.batch.job import segment_block

        number, block = item
        return segment_block(self.segmenter, self.vocab, self.plans[number], block)


class RayBlocks:
    """The Ray engine: ``blocks(...)`` streams each block's outcome from the actors as it arrives;
    ``report()`` gives each worker's throughput for the end of the run."""

    name = "ray"

    def __init__(self, options: EngineOptions, spec: SegmenterSpec) -> None:
        self.options = options
        self.spec = dataclasses.replace(spec, device=actor_device(options, spec.device))
        self.throughput = Throughput()

    def blocks(self, segmenter: Any, vocab: Any, plans: Sequence[Any], todo: Sequence[tuple[int, Any]],
               skip: Callable[[int], bool] = lambda number: False) -> Iterator[BlockOutcome]:
        # every block is computed even after another block of its raster failed: the finished ones
        # are spooled, so a rerun redoes only the failed block
        items = {f"{number}/{block.index}": (number, block) for number, block in todo}
        with ray_session(self.options) if items else contextlib.nullcontext() as ray:
            context = {"segmenter": self.spec, "vocab": vocab, "plans": list(plans)}
            for outcome in stream(ray, BlockWork, context, items, self.options):
                self.throughput.add(outcome)
                number, block = items[outcome.key]
                if outcome.ok:
                    yield BlockOutcome(number, block, outcome.value, seconds=outcome.seconds)
                else:
                    yield BlockOutcome(number, block, error=str(outcome.value), seconds=outcome.seconds)

    def report(self) -> list[str]:
        return self.throughput.lines("block") if self.throughput.items else []
