"""Where the work of ``resegzoo segment``, ``eval`` and ``change`` runs: this process, or a Ray cluster.

One interface for both commands and both engines (:mod:`resegzoo.engines.task`): a command opens
an engine with :func:`open_engine` and hands it a :class:`Task` and its work items; the engine
yields an :class:`Outcome` per item. ``--engine local`` (the default, :class:`LocalEngine`) runs
them in this process; ``--engine ray`` (:mod:`resegzoo.engines.ray_engine`) on stateful Ray actors,
each of which builds the segmenter once; the driver only plans, stores results and writes outputs.
Ray is an optional dependency (``pip install "resegzoo[ray]"``) imported only inside functions.
"""
from __future__ import annotations

from typing import Any

from resegzoo.engines.local import LocalEngine
from resegzoo.engines.options import ENGINES, EngineError, EngineOptions, SegmenterSpec, engine_options
from resegzoo.engines.task import Engine, Outcome, Task, Work

__all__ = ["ENGINES", "Engine", "EngineError", "EngineOptions", "LocalEngine", "Outcome", "SegmenterSpec", "Task",
           "Work", "engine_options", "open_engine"]


def open_engine(options: EngineOptions) -> Any:
    """The engine ``options`` name, for a ``with`` block: :class:`LocalEngine`, or a Ray engine
    (Ray starts or is joined at its first item and stops when the block ends)."""
    if options.is_local:
        return LocalEngine()
    from resegzoo.engines.ray_engine import RayEngine

    return RayEngine(options)
