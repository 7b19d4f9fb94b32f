"""``resegzoo segment --engine ray``: (raster, block) work items on Ray actors, one writer on the driver.

The driver plans every raster once (:func:`resegzoo.batch.job.plan_raster`: blocks, stretch,
output grid) and hands the blocks to actors. Each actor builds the segmenter once and runs
:func:`resegzoo.batch.job.segment_block`, which reads the block's own pixels from the raster's
path, so no pixels pass through the driver: only each block's labels (and probabilities) come back.

The driver is the one writer. A block's result is first kept on disk (the *spool*:
``OUT/.resegzoo-blocks/<raster key>/<index>.npz``), then written into its raster's
:class:`~resegzoo.batch.job.RasterWriter`; the output appears atomically once every block is in,
and the raster's spool is deleted. An interrupted run leaves the spool behind, and the next run
with the same settings reads those blocks back instead of computing them again. A block that
fails for a data reason is reported with its raster and window; that raster is not written (its
finished blocks stay spooled), the other rasters complete, and the caller exits non-zero.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from resegzoo.outputs import atomic
from resegzoo.engines import EngineOptions
from resegzoo.engines.ray_eval import actor_device
from resegzoo.engines.ray_runtime import ActorWork, Throughput, ray_session, stream

SPOOL_DIR = ".resegzoo-blocks"


@dataclass
class RasterJob:
    """One raster to segment: its plan and where its outputs go."""

    plan: Any  # resegzoo.batch.job.RasterPlan
    destination: Path
    probs_destination: Path | None = None
    overlay: Path | None = None
    sidecar: Path | None = None


@dataclass
class BlockFailure:
    raster: str
    index: int
    window: tuple[int, int, int, int]  # the block's read box (y0, x0, y1, x1) in source pixels
    message: str

    def describe(self) -> str:
        y0, x0, y1, x1 = self.window
        return f"{self.raster}: block {self.index} (rows {y0}:{y1}, cols {x0}:{x1}): {self.message}"


@dataclass
class RasterDone:
    """A raster whose outputs are written (``run``) or that could not be (``failures``)."""

    job: RasterJob
    run: Any = None  # resegzoo.batch.job.RasterRun
    failures: list[BlockFailure] = dataclasses.field(default_factory=list)
    resumed_blocks: int = 0


@dataclass(frozen=True)
class SegmenterSpec:
    """How each actor builds its segmenter (the arguments of Segmenter.from_recipe)."""

    recipe: Any
    model: str | None
    masks: str | None
    device: str
    architecture: str | None = None


class BlockWork(ActorWork):
    """One actor: a segmenter built once; ``work((raster number, block))`` -> BlockResult."""

    def setup(self, context: dict[str, Any]) -> None:
        from resegzoo.api import Segmenter

        spec: SegmenterSpec = context["segmenter"]
        self.plans = context["plans"]
        self.vocab = context["vocab"]
        self.segmenter = Segmenter.from_recipe(spec.recipe, model=spec.model, masks=spec.masks,
                                               device=spec.device, architecture=spec.architecture)

    def work(self, item: tuple[int, Any]) -> Any:
        from resegzoo.batch.job import segment_block

        number, block = item
        return segment_block(self.segmenter, self.vocab, self.plans[number], block)


# -- the spool: finished blocks on disk until their raster is assembled -----------------------------
def raster_key(plan: Any, settings: dict[str, Any]) -> str:
    """Names a raster's spool: its plan (path, blocks, stretch, grid) and the segmenter settings,
    so blocks of other settings are never mixed in."""
    text = json.dumps({"plan": dataclasses.asdict(plan), "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def save_block(path: Path, result: Any) -> None:
    arrays = {"core": np.asarray(result.core, dtype=np.int64), "labels": result.labels,
              "counts": result.counts, "nodata_pixels": np.int64(result.nodata_pixels),
              "windows_skipped": np.int64(result.windows_skipped)}
    if result.probs is not None:
        arrays["probs"] = result.probs
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic.write_bytes(path, buf.getvalue())


def load_block(path: Path, index: int) -> Any:
    from resegzoo.batch.job import BlockResult

    with np.load(path, allow_pickle=False) as data:
        return BlockResult(index=index, core=tuple(int(v) for v in data["core"]), labels=data["labels"],
                           counts=data["counts"], nodata_pixels=int(data["nodata_pixels"]),
                           probs=data["probs"] if "probs" in data.files else None,
                           windows_skipped=int(data["windows_skipped"]))


def spooled_blocks(spool: Path, plan: Any) -> dict[int, Path]:
    """Finished blocks of an earlier, interrupted run (unreadable leftovers are recomputed)."""
    found = {}
    for block in plan.blocks:
        path = spool / f"{block.index}.npz"
        if path.is_file():
            try:
                load_block(path, block.index)
            except (OSError, ValueError, KeyError):
                path.unlink()
                continue
            found[block.index] = path
    return found


class _Assembly:
    """The writer of one raster while its blocks arrive."""

    def __init__(self, job: RasterJob, spool: Path) -> None:
        self.job, self.spool = job, spool
        self.writer: Any = None
        self.remaining = {block.index for block in job.plan.blocks}
        self.failures: list[BlockFailure] = []
        self.resumed = 0
        self.seconds = 0.0  # actors' busy time on this raster's blocks, in this run

    def add(self, block: Any, result: Any) -> None:
        from resegzoo.batch.job import RasterWriter

        if self.writer is None:
            self.writer = RasterWriter(self.job.plan, self.job.destination, self.job.probs_destination).__enter__()
        self.writer.write(block, result)
        self.remaining.discard(block.index)

    def close(self, error: BaseException | None = None) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            if error is None:
                writer.__exit__(None, None, None)
            else:
                writer.__exit__(type(error), error, error.__traceback__)


def segment_rasters(jobs: list[RasterJob], spec: SegmenterSpec, vocab: Any, settings: dict[str, Any],
                    spool_root: Path, options: EngineOptions, progress: bool = True,
                    say: Callable[[str], None] = print) -> Iterator[RasterDone]:
    """Segment ``jobs`` on Ray; yield each raster as soon as it is written (or has failed)."""
    from resegzoo.batch.job import RasterRun

    spec = dataclasses.replace(spec, device=actor_device(options, spec.device))
    assemblies = []
    items: dict[str, tuple[int, Any]] = {}
    blocks_by_key: dict[str, tuple[int, Any]] = {}
    for number, job in enumerate(jobs):
        spool = spool_root / raster_key(job.plan, settings)
        assembly = _Assembly(job, spool)
        assemblies.append(assembly)
        done = spooled_blocks(spool, job.plan)
        if done:
            say(f"{job.plan.path}: resuming, {len(done)} of {len(job.plan.blocks)} block(s) done by an earlier run")
        for block in job.plan.blocks:
            key = f"{number}/{block.index}"
            blocks_by_key[key] = (number, block)
            if block.index in done:
                assembly.add(block, load_block(done[block.index], block.index))
                assembly.resumed += 1
            else:
                items[key] = (number, block)
    total = sum(len(job.plan.blocks) for job in jobs)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=total - len(items), desc="blocks", unit="block")
    throughput = Throughput()

    def finished(assembly: _Assembly) -> RasterDone:
        if assembly.failures:
            assembly.close(RuntimeError("a block failed"))
            return RasterDone(assembly.job, failures=assembly.failures, resumed_blocks=assembly.resumed)
        writer = assembly.writer
        assembly.close()
        shutil.rmtree(assembly.spool, ignore_errors=True)
        run = RasterRun(plan=assembly.job.plan, labels_path=assembly.job.destination,
                        probs_path=assembly.job.probs_destination, counts=writer.counts,
                        nodata_pixels=writer.nodata_pixels, windows_skipped=writer.windows_skipped,
                        seconds=assembly.seconds, extra={"engine": "ray"})
        return RasterDone(assembly.job, run=run, resumed_blocks=assembly.resumed)

    try:
        for assembly in assemblies:  # rasters whose every block came from the spool
            if not assembly.remaining:
                yield finished(assembly)
        with ray_session(options) if items else contextlib.nullcontext() as ray:
            context = {"segmenter": spec, "vocab": vocab, "plans": [job.plan for job in jobs]}
            for outcome in stream(ray, BlockWork, context, items, options):
                throughput.add(outcome)
                number, block = blocks_by_key[outcome.key]
                assembly = assemblies[number]
                assembly.seconds += outcome.seconds
                if outcome.ok:
                    save_block(assembly.spool / f"{block.index}.npz", outcome.value)
                    assembly.add(block, outcome.value)
                else:
                    assembly.failures.append(BlockFailure(str(assembly.job.plan.path), block.index, block.read,
                                                          outcome.value))
                    assembly.remaining.discard(block.index)
                if bar is not None:
                    bar.update(1)
                if not assembly.remaining:
                    yield finished(assembly)
    finally:
        for assembly in assemblies:  # interrupted: no partial outputs; the spool stays for the rerun
            assembly.close(KeyboardInterrupt())
        if bar is not None:
            bar.close()
        if spool_root.is_dir() and not any(spool_root.iterdir()):
            spool_root.rmdir()
    if throughput.items:
        for line in throughput.lines("block"):
            say(line)


def segment_on_ray(options: EngineOptions, spec: SegmenterSpec, segmenter: Any, vocab: Any, jobs: list[RasterJob],
                   out: Path, finish: Callable[[RasterJob, Any], dict[str, Any]],
                   say: Callable[[str], None] = print) -> list[tuple[Path, str]]:
    """``resegzoo segment --engine ray``: every job's blocks on Ray actors; ``finish(job, run)``
    writes a finished raster's overlay and sidecar. Returns the rasters that could not be written,
    each with its failed blocks (index and window), after every other raster is done."""
    settings = {"segmenter": segmenter.describe(), "classes": [list(c) for c in vocab.classes]}
    failed: list[tuple[Path, str]] = []
    for done in segment_rasters(jobs, spec, vocab, settings, out / SPOOL_DIR, options, say=say):
        if done.run is None:
            blocks = "; ".join(f.describe().removeprefix(f"{f.raster}: ") for f in done.failures)
            failed.append((Path(done.job.plan.path), f"{blocks} (its finished blocks are kept: a rerun redoes "
                                                     "only these)"))
            continue
        finish(done.job, done.run)
    return failed
