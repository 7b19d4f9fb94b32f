"""``resegzoo change --engine ray``: a change pair's blocks scored by Ray actors.

The driver plans the pair once (:func:`resegzoo.change.blocks.plan_pair`: the blocks, the second
date's warp onto the first's grid) and hands the blocks to actors. Each actor builds the segmenter
once and runs :func:`resegzoo.change.blocks.change_block`, which reads both dates' pixels itself;
only each block's class maps, energies and best scores come back. The driver spools them as they
arrive and makes the outputs from the whole raster, as with ``--engine local``
(:class:`resegzoo.change.blocks.LocalChangeBlocks`, the same two methods).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

from resegzoo.engines.options import EngineOptions, SegmenterSpec
from resegzoo.engines.ray_eval import actor_device
from resegzoo.engines.ray_runtime import ActorWork, Throughput, ray_session, stream


class ChangeBlockActor(ActorWork):
    """One actor: the segmenter built once; ``work(block)`` -> ChangeBlockResult."""

    def setup(self, context: dict[str, Any]) -> None:
        from resegzoo.segmenter.core import Segmenter

        spec: SegmenterSpec = context["segmenter"]
        self.pair, self.vocab = context["pair"], context["vocab"]
        self.segmenter = Segmenter.from_recipe(spec.recipe, model=spec.model, masks=spec.masks,
                                               device=spec.device, architecture=spec.architecture)

    def work(self, block: Any) -> Any:
        from resegzoo.change.blocks import change_block

        return change_block(self.segmenter, self.vocab, self.pair, block)


class RayChangeBlocks:
    """The Ray engine of ``resegzoo change``: ``blocks(...)`` streams each block's outcome as it
    arrives; ``report()`` gives each worker's throughput for the end of the run."""

    name = "ray"

    def __init__(self, options: EngineOptions, model: Any, device: str) -> None:
        self.options, self.model, self.device = options, model, device
        self.throughput = Throughput()

    def blocks(self, segmenter: Any, vocab: Any, pair: Any, todo: Sequence[Any]) -> Iterator[Any]:
        from resegzoo.change.blocks import ChangeOutcome

        # actors get the model the driver resolved (no second resolve or download on a worker)
        spec = SegmenterSpec(segmenter.recipe, segmenter.resolved or self.model, None,
                             actor_device(self.options, self.device))
        items = {str(block.index): block for block in todo}
        with ray_session(self.options) if items else contextlib.nullcontext() as ray:
            context = {"segmenter": spec, "vocab": vocab, "pair": pair}
            for outcome in stream(ray, ChangeBlockActor, context, items, self.options):
                self.throughput.add(outcome)
                block = items[outcome.key]
                if outcome.ok:
                    yield ChangeOutcome(block, outcome.value, seconds=outcome.seconds)
                else:
                    yield ChangeOutcome(block, error=str(outcome.value), seconds=outcome.seconds)

    def report(self) -> list[str]:
        return self.throughput.lines("block") if self.throughput.items else []
