"""The one engine interface of ``resegzoo segment`` and ``resegzoo eval``, local and Ray.

A command hands an engine a :class:`Task` and its work items (segment: ``(raster number, block)``;
eval: a dataset sample). Every worker (this process for ``--engine local``, each Ray actor for
``--engine ray``) builds its segmenter once from ``task.segmenter`` and its :class:`Work` once from
``task.work(segmenter, **task.context)``, then per item ``prepare`` (read; the local engine runs it
ahead in a background thread) and ``run``. The engine yields one :class:`Outcome` per item, in any
order; the command stores or writes them (segment: the batch writer; eval: the per-image results).

An engine is a context manager (Ray's session lasts for its ``with`` block) with ``name``,
``run(task, items, segmenter=None, skip=None)`` and ``report()`` (lines for the end of the run).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

from resegzoo.segmenter.spec import SegmenterSpec


class Work(Protocol):
    """What a worker does with each item, built once per worker with its segmenter."""

    def prepare(self, item: Any) -> Any:
        """Read ``item`` and make it ready (thread-safe: the local engine runs it for the next
        items while ``run`` works on this one)."""
        ...

    def run(self, item: Any, prepared: Any) -> Any:
        """The item's result (picklable: Ray sends it back to the driver)."""
        ...


@dataclass(frozen=True)
class Task:
    """What every worker runs: ``work(segmenter, **context)`` builds its :class:`Work` (a class or
    module-level function, so Ray can send it by reference); ``segmenter``: the checked setup each
    worker builds its segmenter from (Ray actors; the local engine uses the driver's when given)."""

    work: Callable[..., Work]
    context: Mapping[str, Any] = field(default_factory=dict)
    segmenter: SegmenterSpec | None = None
    #: how many items the local engine prepares ahead (the recipe's ``inference.prefetch``)
    prefetch: int = 0
    #: what an item is, in the throughput lines (``block``, ``image``)
    unit: str = "item"


@dataclass
class Outcome:
    """One item as an engine hands it back: its result, or why there is none."""

    #: the item's position in the items given to ``run``
    index: int
    item: Any
    value: Any = None
    #: an exception raised in this process, or the message of a remote worker's failure
    error: BaseException | str | None = None
    #: time spent computing it
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class Engine(Protocol):
    name: str

    def __enter__(self) -> "Engine": ...

    def __exit__(self, *exc: Any) -> Any: ...

    def run(self, task: Task, items: Sequence[Any], segmenter: Callable[[], Any] | None = None,
            skip: Callable[[int], bool] | None = None) -> Iterator[Outcome]:
        """Run ``task`` on ``items``. ``segmenter``: how this process gets its segmenter if the
        work runs here (None: built from ``task.segmenter``); ``skip(index)``: an item the
        caller no longer needs (another block of its raster failed), which an engine may leave out."""
        ...

    def report(self) -> list[str]: ...


def build_work(task: Task, segmenter: Any = None) -> Work:
    """The :class:`Work` of ``task`` on this worker: with ``segmenter`` or one built from the task's spec."""
    if segmenter is None:
        from resegzoo.segmenter.core import Segmenter

        if task.segmenter is None:
            raise ValueError("a task without a segmenter spec needs the segmenter given")
        segmenter = Segmenter.from_spec(task.segmenter)
    return task.work(segmenter, **task.context)
