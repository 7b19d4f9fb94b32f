"""Where the work of ``resegzoo segment`` and ``resegzoo eval`` runs: this process, or a Ray cluster.

``--engine local`` (the default) runs everything in this process. ``--engine ray`` hands the
per-image (eval) or per-block (segment) work to stateful Ray actors, each of which loads the
model and the mask generator once; the driver only plans, stores results and writes outputs.
Ray is an optional dependency (``pip install "resegzoo[ray]"``) imported only inside functions.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager

from resegzoo.engines.options import ENGINES, EngineError, EngineOptions, SegmenterSpec, engine_options

__all__ = ["ENGINES", "EngineError", "EngineOptions", "SegmenterSpec", "engine_options", "eval_engine",
           "raster_engine"]


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


def eval_engine(options: EngineOptions, device: str, say: Callable[[str], None]) -> ContextManager[Any]:
    """The ``engine`` of :meth:`resegzoo.eval.runner.EvalRun.run`: None (its own loop) for
    ``--engine local``; Ray actors, for the length of the ``with`` block, for ``--engine ray``."""
    if options.is_local:
        return contextlib.nullcontext(None)
    from resegzoo.engines.ray_eval import ray_eval_engine

    return ray_eval_engine(options, device, say)
