"""``--engine ray``: a task's items on Ray actors (segment: (raster, block) items; eval: images).

Each actor builds the segmenter once from the task's spec and the task's work once
(:func:`resegzoo.engines.task.build_work`), then prepares and runs the items it is handed, reading
their pixels itself (a block from its raster's path, an image from the dataset), so no pixels
pass through the driver: only each item's result comes back (a block's labels and probabilities,
an image's confusion matrix). The driver stores or writes them as they arrive, with the same code
as ``--engine local``, so outputs and tables are byte-identical. An item that fails for a data
reason comes back as its worker's message; the caller decides (segment: that raster is not
written, its finished blocks stay spooled; eval: the other images' results are kept).
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Iterator, Sequence

from resegzoo.engines import ray_runtime
from resegzoo.engines.options import EngineOptions
from resegzoo.engines.task import Outcome, Task, build_work


def actor_device(options: EngineOptions, device: str) -> str:
    """Actors given GPUs run on the GPU Ray assigns them (it sets CUDA_VISIBLE_DEVICES)."""
    return "cuda" if options.gpus_per_actor and device == "cpu" else device


class TaskActor(ray_runtime.ActorWork):
    """One actor: the task's work, built once (segmenter included); ``work(item)`` -> its result."""

    def setup(self, context: dict[str, Any]) -> None:
        self.task_work = build_work(context["task"])

    def work(self, item: Any) -> Any:
        return self.task_work.run(item, self.task_work.prepare(item))


class RayEngine:
    """The Ray engine: ``run`` streams each item's outcome from the actors as it arrives (every
    item is computed, ``skip`` is not consulted: finished blocks are spooled for a rerun);
    ``report()`` gives each worker's throughput. Ray starts (or is joined) at the first item and
    stops when the ``with`` block ends."""

    name = "ray"

    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        self.throughput = ray_runtime.Throughput()
        self.unit = "item"
        self._stack = contextlib.ExitStack()
        self._ray: Any = None

    def __enter__(self) -> "RayEngine":
        return self

    def __exit__(self, *exc: Any) -> bool:
        self._ray = None
        self._stack.close()
        return False

    def run(self, task: Task, items: Sequence[Any], segmenter: Callable[[], Any] | None = None,
            skip: Callable[[int], bool] | None = None) -> Iterator[Outcome]:
        if not items:
            return
        if task.segmenter is None:
            raise ValueError("--engine ray builds the segmenter on every actor: give the task its SegmenterSpec")
        if self._ray is None:
            self._ray = self._stack.enter_context(ray_runtime.ray_session(self.options))
        spec = task.segmenter.on_device(actor_device(self.options, task.segmenter.device))
        task = dataclasses.replace(task, segmenter=spec)
        self.unit = task.unit
        keyed = {str(index): (index, item) for index, item in enumerate(items)}
        work = {key: item for key, (_, item) in keyed.items()}
        for outcome in ray_runtime.stream(self._ray, TaskActor, {"task": task}, work, self.options):
            self.throughput.add(outcome)
            index, item = keyed[outcome.key]
            if outcome.ok:
                yield Outcome(index, item, outcome.value, seconds=outcome.seconds)
            else:
                yield Outcome(index, item, error=str(outcome.value), seconds=outcome.seconds)

    def report(self) -> list[str]:
        return self.throughput.lines(self.unit) if self.throughput.items else []
