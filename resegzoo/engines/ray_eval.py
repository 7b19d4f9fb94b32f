"""``resegzoo eval --engine ray``: per-image confusion matrices computed by Ray actors.

Each actor builds the segmenter once and runs the runner's own per-image step
(:meth:`resegzoo.eval.runner.EvalRun.evaluate_sample`) on the images it is handed, reading them
itself; only the small confusion matrices travel back. The driver stores each one as it arrives
(the runner's resumable per-image files) and sums them in the runner, so the tables are
byte-identical to ``--engine local``.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from resegzoo.engines.options import EngineOptions
from resegzoo.engines.ray_runtime import ActorWork, Throughput, ray_session, stream
from resegzoo.eval.datasets import DatasetError


def actor_device(options: EngineOptions, device: str) -> str:
    """Actors given GPUs run on the GPU Ray assigns them (it sets CUDA_VISIBLE_DEVICES)."""
    return "cuda" if options.gpus_per_actor and device == "cpu" else device


class EvalWork(ActorWork):
    """One actor: the segmenter of one run, built once; ``work(sample)`` -> confusion matrix."""

    def setup(self, context: dict[str, Any]) -> None:
        from resegzoo.segmenter.core import Segmenter

        self.run = context["run"]
        self.overlay_ids = context["overlay_ids"]
        spec = self.run.spec
        self.segmenter = Segmenter.from_recipe(spec.recipe, model=spec.resolved or spec.model, masks=spec.masks,
                                               device=context["device"])
        self.vocab = self.run.vocabulary()

    def work(self, sample: Any) -> Any:
        return self.run.evaluate_sample(self.segmenter, self.vocab, sample, sample.id in self.overlay_ids)


class RayEval:
    """The ``engine`` callable EvalRun.run takes: streams (sample, confusion) from Ray actors."""

    def __init__(self, ray: Any, options: EngineOptions, device: str) -> None:
        self.ray, self.options, self.device = ray, options, device
        self.throughput = Throughput()

    def __call__(self, run: Any, pending: list[Any], overlay_ids: set[str]) -> Iterator[tuple[Any, Any]]:
        by_key = {sample.id: sample for sample in pending}
        context = {"run": run, "overlay_ids": overlay_ids, "device": actor_device(self.options, self.device)}
        failed: list[str] = []
        for outcome in stream(self.ray, EvalWork, context, by_key, self.options):
            self.throughput.add(outcome)
            if outcome.ok:
                yield by_key[outcome.key], outcome.value
            else:
                failed.append(f"{outcome.key}: {outcome.value}")
        if failed:
            raise DatasetError(f"run {run.spec.label!r}: {len(failed)} image(s) failed (the other images' "
                               f"results are kept; rerun to retry): " + "; ".join(failed))


@contextlib.contextmanager
def ray_eval_engine(options: EngineOptions, device: str, say: Callable[[str], None]) -> Iterator[Any]:
    """A :class:`RayEval` inside a Ray session (the local engine is EvalRun.run's own loop)."""
    with ray_session(options) as ray:
        engine = RayEval(ray, options, device)
        yield engine
        for line in engine.throughput.lines("image"):
            say(line)
