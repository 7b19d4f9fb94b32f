"""Where the work of ``resegzoo segment``, ``eval`` and ``change`` runs: this process, or a Ray cluster.

``--engine local`` (the default) runs everything in this process. ``--engine ray`` hands the
per-image (eval) or per-block (segment, change) work to stateful Ray actors, each of which loads the
model and the mask generator once; the driver only plans, stores results and writes outputs.
Ray is an optional dependency (``pip install "resegzoo[ray]"``) imported only inside functions.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager

from resegzoo.engines.options import ENGINES, EngineError, EngineOptions, SegmenterSpec, engine_options

__all__ = ["ENGINES", "EngineError", "EngineOptions", "SegmenterSpec", "change_engine", "engine_options",
           "eval_engine", "raster_engine"]


def raster_engine(options: EngineOptions, spec: SegmenterSpec | None = None) -> Any:
    """The engine that computes a segment batch's blocks (the ``engine`` of
    :func:`resegzoo.batch.units.run_batch`): this process, or Ray actors built from ``spec``."""
    if options.is_local:
        from resegzoo.batch.local import LocalBlocks

        return LocalBlocks()
    if spec is None:
        raise EngineError("--engine ray builds the segmenter on every actor: give its SegmenterSpec")
    from resegzoo.engines.ray_segment import RayBlocks

    return RayBlocks(options, spec)


def change_engine(options: EngineOptions, model: Any = None, device: str = "cpu") -> Any:
    """The engine that scores a change pair's blocks (the ``engine`` of
    :func:`resegzoo.change.run.detect_change_files`): this process, or Ray actors that build the
    segmenter from the driver's recipe and resolved ``model`` on ``device``."""
    if options.is_local:
        from resegzoo.change.blocks import LocalChangeBlocks

        return LocalChangeBlocks()
    from resegzoo.engines.ray_change import RayChangeBlocks

    return RayChangeBlocks(options, model, device)


def eval_engine(options: EngineOptions, device: str, say: Callable[[str], None]) -> ContextManager[Any]:
    """The ``engine`` of :meth:`resegzoo.eval.runner.EvalRun.run`: None (its own loop) for
    ``--engine local``; Ray actors, for the length of the ``with`` block, for ``--engine ray``."""
    if options.is_local:
        return contextlib.nullcontext(None)
    from resegzoo.engines.ray_eval import ray_eval_engine

    return ray_eval_engine(options, device, say)
