"""The writer both engines use: blocks are written into their raster's
:class:`~resegzoo.batch.job.RasterWriter` as they arrive (any order) and kept in the spool
(:mod:`resegzoo.batch.spool`) until their raster is whole; then the unit is finished: the labels
appear atomically, the overlay and the GIS products are made from them, and the sidecar
``STEM.json`` is written LAST, as the unit's commit marker. An input that fails or is interrupted
leaves none of its files (its finished blocks stay in the spool, so a rerun computes only the rest)."""
from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from resegzoo.batch.job import BlockOutcome, RasterRun, block_task, block_windows
from resegzoo.batch.naming import remove_outputs
from resegzoo.batch.progress import BatchProgress, BatchWork
from resegzoo.batch.records import unit_record, written
from resegzoo.batch.spool import SPOOL_DIR, load_block, raster_key, save_block, spooled_blocks
from resegzoo.batch.options import SegmentOptions
from resegzoo.batch.unit import BatchResult, RasterJob
from resegzoo.runtime import timing


@dataclass
class _BlockFailure:
    index: int
    window: tuple[int, int, int, int]  # the block's read box (y0, x0, y1, x1) in source pixels
    message: str

    def describe(self) -> str:
        y0, x0, y1, x1 = self.window
        return f"block {self.index} (rows {y0}:{y1}, cols {x0}:{x1}): {self.message}"


class _Assembly:
    """One input while its blocks arrive: its label writer, its spool, what is still missing."""

    def __init__(self, job: RasterJob, spool: Path | None, object_areas: tuple[float, float | None] = (0.0, None)) -> None:
        self.job, self.spool = job, spool
        self.object_areas = object_areas
        self.writer: Any = None
        self.remaining = {block.index for block in job.plan.blocks}
        self.spooled: dict[int, Path] = {}  # blocks of an earlier run, written with the first new one
        self.block_failures: list[_BlockFailure] = []
        self.error: str | None = None  # a failure in this process: the input stops there
        self.seconds = 0.0  # time spent on this input's blocks in this run
        self.stage_seconds = dict.fromkeys(timing.STAGES, 0.0)  # where that time went
        self.finished = False

    def add(self, block: Any, result: Any) -> None:
        from resegzoo.batch.job import RasterWriter

        if self.writer is None:
            self.writer = RasterWriter(self.job.plan, self.job.destination, self.job.probs_destination,
                                       self.object_areas).__enter__()
            blocks = {b.index: b for b in self.job.plan.blocks}
            for index, path in sorted(self.spooled.items()):
                self.writer.write(blocks[index], load_block(path, self.job.plan, blocks[index]))
                self.remaining.discard(index)
        self.writer.write(block, result)
        self.remaining.discard(block.index)

    def close(self, error: BaseException | None = None) -> Any:
        """Finish (``error`` None: the labels appear) or discard the label writer; returns it."""
        writer, self.writer = self.writer, None
        if writer is not None:
            if error is None:
                writer.__exit__(None, None, None)
            else:
                writer.__exit__(type(error), error, error.__traceback__)
        return writer

    @property
    def failed(self) -> bool:
        return self.error is not None or bool(self.block_failures)


def _remove_spool(assembly: _Assembly, spool_root: Path) -> None:
    if assembly.spool is not None:
        shutil.rmtree(assembly.spool, ignore_errors=True)
    if spool_root.is_dir() and not any(spool_root.iterdir()):
        spool_root.rmdir()


def write_units(seg: Any, vocab: Any, jobs: Sequence[RasterJob], options: SegmentOptions, engine: Any,
                claims: dict[Path, Any], progress: BatchProgress, result: BatchResult) -> None:
    """Compute every job's missing blocks on ``engine`` and write each job as a unit (``claims``:
    the names held, by output folder)."""
    out = options.out
    spool_root = out / SPOOL_DIR
    settings = {"segmenter": seg.describe(), "classes": [list(c) for c in vocab.classes]}
    assemblies: list[_Assembly] = []
    todo: list[tuple[int, Any]] = []
    for number, job in enumerate(jobs):
        # a raster of one block has nothing to resume: it is not spooled
        # the stem is part of the key: two runs writing the same input into one folder at once
        # (x and x-2) never share blocks; a rerun takes the interrupted input's stem back
        name = str(job.sidecar.relative_to(out)) if job.sidecar is not None else job.stem
        spool = spool_root / raster_key(job.plan, {**settings, "stem": name}) if len(job.plan.blocks) > 1 else None
        assembly = _Assembly(job, spool, options.gis.object_areas)
        assemblies.append(assembly)
        if spool is not None:
            notes: list[str] = []
            assembly.spooled = spooled_blocks(spool, job.plan, notes)
            for note in notes:
                progress.note(note)
        if assembly.spooled:
            progress.say(f"{job.plan.path}: resuming, {len(assembly.spooled)} of {len(job.plan.blocks)} block(s) "
                         "done by an earlier run")
        todo.extend((number, block) for block in job.plan.blocks if block.index not in assembly.spooled)

    def finish(assembly: _Assembly) -> None:
        assembly.finished = True
        job = assembly.job
        try:
            if assembly.failed:
                assembly.close(RuntimeError("a block failed"))
                if assembly.error is not None:
                    message = assembly.error
                    progress.failed(str(job.plan.path), message)
                else:
                    blocks = "; ".join(f.describe() for f in assembly.block_failures)
                    message = f"{blocks} (its finished blocks are kept: a rerun redoes only these)"
                result.failures.append((Path(job.plan.path), message))
                claims[job.folder].release(job.stem)
                return
            if assembly.writer is None and assembly.spooled:  # every block came from the spool
                first = next(b for b in job.plan.blocks if b.index == min(assembly.spooled))
                assembly.add(first, load_block(assembly.spooled.pop(first.index), job.plan, first))
            writer = assembly.close()
            _remove_spool(assembly, spool_root)
            run = RasterRun(plan=job.plan, labels_path=job.destination, probs_path=job.probs_destination,
                            counts=writer.counts, nodata_pixels=writer.nodata_pixels,
                            windows_skipped=writer.windows_skipped, seconds=assembly.seconds,
                            extra={"engine": engine.name, "time": assembly.stage_seconds}, objects=writer.objects)
            record = write_unit(seg, vocab, job, run, options)
        except BaseException as exc:
            assembly.close(exc)
            remove_outputs(job.folder, job.stem)  # never leave half a unit behind
            claims[job.folder].release(job.stem)
            if not options.continue_on_error or not isinstance(exc, Exception):  # Ctrl-C always stops
                raise
            result.failures.append((Path(job.plan.path), f"{type(exc).__name__}: {exc}"))
            progress.failed(str(job.plan.path), f"{type(exc).__name__}: {exc}")
            return
        claims[job.folder].release(job.stem)
        result.records.append(record)
        image = str(job.folder.relative_to(out) / Path(record["input"]).name)
        result.units.append((image, record, written(job, record, out)))
        progress.finished(str(job.plan.path), written(job, record), record)

    placement = seg.recipe.inference.window_placement
    progress.start(BatchWork(
        inputs=len(jobs), pixels=sum(job.plan.raster.height * job.plan.raster.width for job in jobs),
        blocks=sum(len(job.plan.blocks) for job in jobs),
        windows=sum(block_windows(jobs[number].plan, block, placement) for number, block in todo),
        done_blocks=sum(len(job.plan.blocks) for job in jobs) - len(todo), skipped=len(result.skipped),
        engine=engine.name))
    meter = timing.Meter(on_windows=progress.windows, batch=True)
    try:
        with timing.metering(meter):
            for assembly in assemblies:  # inputs whose every block came from the spool
                if not assembly.remaining - set(assembly.spooled):
                    finish(assembly)
            task = block_task(seg, vocab, [job.plan for job in jobs], options.segmenter)
            mark = meter.snapshot()
            for done in engine.run(task, todo, segmenter=lambda: seg,
                                   skip=lambda index: assemblies[todo[index][0]].failed):
                outcome = BlockOutcome(*done.item, result=done.value, error=done.error, seconds=done.seconds)
                assembly = assemblies[outcome.job]
                with meter.stage("write"):
                    _take(assembly, outcome, options)
                # this process's work since the last block (this block's, or the next one's prefetch)
                # and a worker's own split
                now = meter.snapshot()
                _add_seconds(assembly, timing.since(mark, now))
                if outcome.result is not None:
                    _add_seconds(assembly, outcome.result.stage_seconds)
                    if outcome.result.stage_seconds:  # a worker's windows: the bar moves by the block
                        progress.windows(block_windows(assembly.job.plan, outcome.block, placement))
                mark = now
                progress.block(outcome)
                if not assembly.finished and (assembly.error is not None or not assembly.remaining):
                    finish(assembly)
                    mark = meter.snapshot()
    finally:
        progress.close()
        for assembly in assemblies:  # interrupted: no partial outputs; the spool stays for the rerun
            if not assembly.finished:
                assembly.close(KeyboardInterrupt())
        if spool_root.is_dir() and not any(spool_root.iterdir()):
            spool_root.rmdir()
    for line in engine.report():
        progress.say(line)


def _add_seconds(assembly: _Assembly, seconds: dict[str, float]) -> None:
    for name, value in seconds.items():
        assembly.stage_seconds[name] = assembly.stage_seconds.get(name, 0.0) + value


def _take(assembly: _Assembly, outcome: BlockOutcome, options: SegmentOptions) -> None:
    """One block's outcome into its input's assembly (spooled first, so a rerun has it)."""
    assembly.seconds += outcome.seconds
    block = outcome.block
    if outcome.error is None:
        if assembly.spool is not None:
            save_block(assembly.spool / f"{block.index}.npz", outcome.result)  # type: ignore[arg-type]
        assembly.add(block, outcome.result)
    elif isinstance(outcome.error, BaseException):  # raised here: the input stops at this block
        if not options.continue_on_error:
            raise outcome.error
        assembly.error = f"{type(outcome.error).__name__}: {outcome.error}"
    else:  # a remote worker's message: the other blocks go on and are kept for a rerun
        assembly.block_failures.append(_BlockFailure(block.index, block.read, outcome.error))
        assembly.remaining.discard(block.index)


def write_unit(seg: Any, vocab: Any, job: RasterJob, run: RasterRun, options: SegmentOptions) -> dict[str, Any]:
    """An input's labels are written: draw its overlay, make its GIS products, then write its
    sidecar (last: the commit marker of the unit); returns the sidecar record."""
    from resegzoo.outputs import imageio

    start = time.perf_counter()
    with timing.stage("write"):
        record = unit_record(seg, vocab, job, run, options)
        record["outputs"].update(options.gis.write(job.folder, job.stem, record, run.objects))
    record["gis"] = dataclasses.asdict(options.gis)
    if "time" in run.extra:  # where this input's time went, its overlay and GIS products included
        seconds = dict(run.extra["time"])
        seconds["write"] = seconds.get("write", 0.0) + time.perf_counter() - start
        record["time"] = timing.split(seconds)
    assert job.sidecar is not None
    imageio.write_json(job.sidecar, record)
    return record
