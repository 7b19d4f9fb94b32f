"""The batch: one input = one unit of outputs, whichever engine computes its blocks.

For each input raster a batch claims an output *stem* in the output folder
(:mod:`resegzoo.outputs.claims`; a taken stem gets ``-2``, ``-3`` ...), plans the raster
(:func:`resegzoo.batch.job.plan_raster`) and hands the blocks still to compute to an *engine*
(``blocks(segmenter, vocab, plans, todo, skip)``: :class:`resegzoo.batch.local.LocalBlocks` in this
process, or Ray's, reached through :mod:`resegzoo.engines`). This module is the one writer of
both: blocks are written into their raster's :class:`~resegzoo.batch.job.RasterWriter` as they
arrive (any order) and kept in the spool (:mod:`resegzoo.batch.spool`) until their raster is
whole; then the unit is finished: the labels appear atomically, the overlay and the GIS products
are made from them, and the sidecar ``STEM.json`` is written LAST, as the unit's commit marker.

An input that fails or is interrupted leaves none of its files (its finished blocks stay in the
spool, so a rerun computes only the rest). ``skip_existing`` skips inputs whose sidecar holds a
result of the same settings; ``continue_on_error`` reports failed inputs at the end instead of
stopping.
"""
from __future__ import annotations

import dataclasses
import itertools
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from resegzoo.batch.job import BlockOutcome, RasterPlan, RasterRun, block_windows
from resegzoo.batch.progress import BatchProgress, BatchWork
from resegzoo.batch.spool import SPOOL_DIR, load_block, raster_key, save_block, spooled_blocks
from resegzoo.outputs.gis.products import GIS_SUFFIXES, GisOutputs
from resegzoo.raster.names import output_stem, path_of_record, path_record
from resegzoo.raster.reader import NODATA_LABEL

#: the files written per input, after its stem
OUTPUT_SUFFIXES = (".labels.png", ".labels.tif", ".probs.tif", ".overlay.png", ".json") + GIS_SUFFIXES


@dataclass(frozen=True)
class BatchOptions:
    """Where and how a batch writes (the options of ``resegzoo segment`` past the model)."""

    out: Path
    #: also write STEM.probs.tif: "uint8" or "float16"
    probs: str | None = None
    #: the nodata value given for every input (recorded in the sidecars, compared by skip_existing)
    nodata: float | None = None
    overwrite: bool = False
    skip_existing: bool = False
    continue_on_error: bool = False
    gis: GisOutputs = field(default_factory=GisOutputs)
    #: the stretch chosen for data that is not 8-bit, as sidecars record it (see stretch_record)
    stretch: Any = "file"


@dataclass
class RasterJob:
    """One input to segment: its plan and where its outputs go."""

    plan: RasterPlan
    destination: Path
    probs_destination: Path | None = None
    overlay: Path | None = None
    sidecar: Path | None = None

    @property
    def stem(self) -> str:
        assert self.sidecar is not None
        return self.sidecar.name.removesuffix(".json")

    @property
    def folder(self) -> Path:
        """Where its outputs go (the output folder, or a mirrored input folder below it)."""
        return self.destination.parent


@dataclass
class BatchResult:
    """What a batch did: the sidecar records of the units written, the inputs skipped (their
    result was there), and the inputs that failed with why."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)
    #: how many inputs were asked for (files found)
    inputs: int = 0
    #: per written input: its path mirrored under the output folder, its record, its outputs
    units: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)

    def summary(self) -> str:
        return summary(self.units)


# -- names: one stem per input, claimed ---------------------------------------------------------
def sidecar_matches(sidecar: Path, info: Any, expected: dict[str, Any]) -> bool:
    """Whether ``sidecar`` is a finished result of this input with these settings."""
    import json

    from resegzoo.outputs.reading import read_text

    try:
        record = json.loads(read_text(sidecar))  # a FIFO or a link there is no result: not read
        same_input = path_of_record(record).resolve() == Path(info.path).resolve()
    except (OSError, ValueError, KeyError, TypeError):
        return False  # unreadable or not ours: not a result to keep
    same_raster = record.get("size") == [info.height, info.width] and record.get("bands") == list(info.bands)
    return same_input and same_raster and all(record.get(key) == value for key, value in expected.items())


def output_stems(infos: Sequence[Any], out: Path, claims: Any, overwrite: bool,
                 skip_expected: dict[str, Any] | None) -> list[str | None]:
    """Claim a distinct output stem per input; taken stems get -2, -3, ... (never overwrite).

    A stem is taken when this run or another live run claims it, or (without ``overwrite``) when
    any of its files exists. A stale claim (its run was killed) frees the stem: its files are
    unfinished. With ``skip_expected`` (skip_existing), an input whose finished result with
    these settings is found under one of its stems gets None: nothing to do.
    """
    from resegzoo.outputs.claims import folder_lock

    used: set[str] = set()
    stems: list[str | None] = []
    with folder_lock(out):
        for info in infos:
            base = output_stem(Path(info.path).stem)
            chosen, done = None, False
            for n in itertools.count(1):
                stem = base if n == 1 else f"{base}-{n}"
                state = claims.state(stem)
                if state == "stale" and (out / f"{stem}.json").is_file():
                    claims.clear(stem)  # killed after its sidecar: the unit is finished, only the claim is left
                    state = "none"
                if stem.lower() in used or state in ("mine", "live"):
                    continue
                exists = any((out / f"{stem}{suffix}").exists() for suffix in OUTPUT_SUFFIXES)
                if state == "none" and skip_expected is not None and sidecar_matches(
                        out / f"{stem}.json", info, skip_expected):
                    done = True
                    break
                if chosen is None and (state == "stale" or overwrite or not exists):
                    chosen = stem
                # with skip_existing, look on to the first unused stem for a finished result
                if not exists or (chosen is not None and skip_expected is None):
                    break
            if done:
                stems.append(None)
                continue
            assert chosen is not None  # the walk ends at a stem with no files, which is usable
            claims.take(chosen)
            used.add(chosen.lower())
            stems.append(chosen)
    return stems


def remove_outputs(out: Path, stem: str) -> None:
    """Delete whatever exists of one stem's outputs (an unfinished or replaced unit)."""
    for suffix in OUTPUT_SUFFIXES:
        (out / f"{stem}{suffix}").unlink(missing_ok=True)


# -- what a sidecar records ---------------------------------------------------------------------
def raster_options(probs: str | None, nodata: float | None, stretch: Any = "file") -> dict[str, Any]:
    """The raster options a result depends on, as its sidecar stores them (strict JSON)."""
    import math

    return {"probs": probs, "nodata_option": None if nodata is None else ("nan" if math.isnan(nodata) else nodata),
            "stretch": stretch}


def stretch_record(choice: Any) -> Any:
    """A stretch choice (``batch``, ``file`` or a given Stretch) as sidecars record it."""
    return choice if isinstance(choice, str) else {"low": list(choice.low), "high": list(choice.high)}


def settings_record(seg: Any, vocab: Any, gis: GisOutputs) -> dict[str, Any]:
    """The part of a sidecar that skip_existing compares: classes, every model/recipe setting and
    the GIS outputs asked for (in JSON form, as a sidecar read back gives it)."""
    import json

    background = seg.recipe.inference.background_threshold is not None
    record = {"classes": [list(c) for c in vocab.classes] + ([["background"]] if background else []),
              **seg.describe(), "gis": dataclasses.asdict(gis)}
    return json.loads(json.dumps(record, default=str))


def overlay_note(seg: Any) -> str | None:
    """The warning drawn under an overlay's legend: labels of a random model are no result."""
    return "RANDOM WEIGHTS: not a result" if getattr(seg, "random_weights", False) else None


def plan_job(seg: Any, vocab: Any, raster: Any, stem: str, out: Path, probs: str | None,
             progress: BatchProgress) -> RasterJob:
    """Plan one input (blocks, stretch, grid) and name its outputs."""
    from resegzoo.batch.job import RasterOptions, plan_raster

    plan = plan_raster(raster, seg, RasterOptions(probs=probs), vocab)  # type: ignore[arg-type]
    if raster.stretch is not None and raster.stretch.scope == "file":
        progress.say(f"{raster.path}: {raster.dtype} data scaled to 8 bits by a {raster.stretch.describe()}")
    label_path = out / f"{stem}.labels.{'tif' if plan.label_driver == 'GTiff' else 'png'}"
    probs_path = None if probs is None else out / f"{stem}.probs.tif"
    return RasterJob(plan, label_path, probs_path, overlay=out / f"{stem}.overlay.png", sidecar=out / f"{stem}.json")


def unit_record(seg: Any, vocab: Any, job: RasterJob, run: RasterRun, options: BatchOptions) -> dict[str, Any]:
    """Draw the overlay of a segmented input; returns its sidecar record."""
    plan, raster = job.plan, job.plan.raster
    label_path, probs_path, overlay_path = job.destination, job.probs_destination, job.overlay
    assert overlay_path is not None
    draw_overlay(plan, label_path, overlay_path, note=overlay_note(seg))
    georef = raster.georef
    return {
        **path_record(raster.path),
        "outputs": {"labels": label_path.name, "overlay": overlay_path.name,
                    **({"probs": probs_path.name, "probs_format": options.probs} if probs_path else {})},
        "size": [raster.height, raster.width],
        "classes": [list(c) for c in vocab.classes] + ([["background"]] if len(plan.class_names) > len(vocab) else []),
        "class_names": list(plan.class_names),
        "palette": [list(c) for c in plan.palette],
        "pixel_fraction": run.pixel_fraction(),
        "nodata": {"label": NODATA_LABEL, "pixels": run.nodata_pixels,
                   "fraction": round(run.nodata_pixels / (raster.height * raster.width), 6),
                   "source": raster.describe()["nodata"], "from": raster.describe()["nodata_from"],
                   "windows_skipped": run.windows_skipped},
        "bands": list(raster.bands),
        "source_dtype": raster.dtype,
        "driver": raster.driver,
        "palette_expanded": raster.palette is not None,
        "stretch": None if raster.stretch is None else raster.stretch.to_dict(),
        "crs": georef.crs_string,
        "transform": None if georef.transform is None else list(georef.transform),
        "gcps": len(georef.gcps),
        "rpcs": bool(georef.rpcs),
        "raster_options": raster_options(options.probs, raster.nodata, options.stretch),
        "tiled": plan.tiled,
        "blocks": len(plan.blocks),
        "scale": plan.scale,
        "seconds": round(run.seconds, 3),
        **seg.describe(),
    }


def draw_overlay(plan: RasterPlan, label_path: Path, overlay_path: Path, note: str | None = None) -> None:
    """The overlay drawn from decimated reads of the image and the labels (bounded memory)."""
    import rasterio

    from resegzoo.outputs import imageio
    from resegzoo.raster.reader import quiet_georef

    shape = plan.raster.overview_shape()
    image, _ = plan.raster.read_rgb(out_shape=shape)
    with quiet_georef(), rasterio.open(label_path) as src:
        labels = src.read(1, out_shape=shape)
    imageio.write_overlay(overlay_path, image, labels, plan.palette, list(plan.class_names), note=note)


def written(job: RasterJob, record: dict[str, Any], out: Path | None = None) -> str:
    """Every file of a finished unit: ``FOLDER/x.labels.tif, x.overlay.png, ..., x.json`` (the
    folder relative to ``out`` when given)."""
    assert job.sidecar is not None
    names = list(dict.fromkeys([name for kind, name in record["outputs"].items() if kind != "probs_format"]
                               + [job.sidecar.name]))
    folder = job.folder if out is None else job.folder.relative_to(out)
    return ", ".join([str(folder / names[0])] + names[1:])


def summary(units: Sequence[tuple[str, dict[str, Any], str]]) -> str:
    """The table printed after a batch: per input (its path as mirrored under the output folder,
    its sidecar record, the outputs written) one row, and the total."""
    width = max([32] + [len(image) for image, _, _ in units])
    lines = [f"{'image':<{width}} {'pixels':>12} {'nodata':>7} {'classes':>7} {'seconds':>8}  outputs"]
    for image, r, outputs in units:
        lines.append(f"{image:<{width}} {r['size'][0] * r['size'][1]:>12,} "
                     f"{r['nodata']['fraction']:>7.1%} {sum(1 for v in r['pixel_fraction'].values() if v > 0):>7} "
                     f"{r['seconds']:>8.2f}  {outputs}")
    total_px = sum(r["size"][0] * r["size"][1] for _, r, _ in units)
    classes = {n for _, r, _ in units for n, v in r["pixel_fraction"].items() if v > 0}
    lines.append(f"{f'total: {len(units)} images':<{width}} {total_px:>12,} {'':>7} {len(classes):>7} "
                 f"{sum(r['seconds'] for _, r, _ in units):>8.2f}")
    return "\n".join(lines)


# -- the writer both engines use ------------------------------------------------------------------
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

    def __init__(self, job: RasterJob, spool: Path | None) -> None:
        self.job, self.spool = job, spool
        self.writer: Any = None
        self.remaining = {block.index for block in job.plan.blocks}
        self.spooled: dict[int, Path] = {}  # blocks of an earlier run, written with the first new one
        self.block_failures: list[_BlockFailure] = []
        self.error: str | None = None  # a failure in this process: the input stops there
        self.seconds = 0.0  # time spent on this input's blocks in this run
        self.finished = False

    def add(self, block: Any, result: Any) -> None:
        from resegzoo.batch.job import RasterWriter

        if self.writer is None:
            self.writer = RasterWriter(self.job.plan, self.job.destination, self.job.probs_destination).__enter__()
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


def write_units(seg: Any, vocab: Any, jobs: Sequence[RasterJob], options: BatchOptions, engine: Any,
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
        assembly = _Assembly(job, spool)
        assemblies.append(assembly)
        if spool is not None:
            assembly.spooled = spooled_blocks(spool, job.plan)
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
                            extra={"engine": engine.name})
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
    try:
        for assembly in assemblies:  # inputs whose every block came from the spool
            if not assembly.remaining - set(assembly.spooled):
                finish(assembly)
        plans = [job.plan for job in jobs]
        for outcome in engine.blocks(seg, vocab, plans, todo, lambda number: assemblies[number].failed):
            _take(assemblies[outcome.job], outcome, options)
            progress.block(outcome)
            assembly = assemblies[outcome.job]
            if not assembly.finished and (assembly.error is not None or not assembly.remaining):
                finish(assembly)
    finally:
        progress.close()
        for assembly in assemblies:  # interrupted: no partial outputs; the spool stays for the rerun
            if not assembly.finished:
                assembly.close(KeyboardInterrupt())
        if spool_root.is_dir() and not any(spool_root.iterdir()):
            spool_root.rmdir()
    for line in engine.report():
        progress.say(line)


def _take(assembly: _Assembly, outcome: BlockOutcome, options: BatchOptions) -> None:
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


def write_unit(seg: Any, vocab: Any, job: RasterJob, run: RasterRun, options: BatchOptions) -> dict[str, Any]:
    """An input's labels are written: draw its overlay, make its GIS products, then write its
    sidecar (last: the commit marker of the unit); returns the sidecar record."""
    from resegzoo.outputs import imageio

    record = unit_record(seg, vocab, job, run, options)
    record["outputs"].update(options.gis.write(job.folder, job.stem, record))
    record["gis"] = dataclasses.asdict(options.gis)
    assert job.sidecar is not None
    imageio.write_json(job.sidecar, record)
    return record


def run_batch(seg: Any, vocab: Any, rasters: Sequence[Any], options: BatchOptions, engine: Any = None,
              progress: BatchProgress | None = None, folders: Sequence[Path] | None = None) -> BatchResult:
    """Segment opened rasters (:func:`resegzoo.raster.reader.open_raster`) into ``options.out``, one
    unit of outputs each, on ``engine`` (default: this process). ``folders``: per raster, the
    folder of its outputs relative to ``options.out`` (mirrored input folders; default: none)."""
    from resegzoo.batch.local import LocalBlocks
    from resegzoo.outputs.claims import Claims

    engine = engine or LocalBlocks()
    progress = progress or BatchProgress()
    out = options.out
    relative = [Path(f) for f in folders] if folders is not None else [Path(".")] * len(rasters)
    expected = {**settings_record(seg, vocab, options.gis),
                "raster_options": raster_options(options.probs, options.nodata, options.stretch)}
    result = BatchResult()
    claims: dict[Path, Any] = {}  # per output folder: names are claimed where they are written
    try:
        stems: list[str | None] = [None] * len(rasters)
        for rel in dict.fromkeys(relative):
            folder = out / rel
            folder.mkdir(parents=True, exist_ok=True)
            claims[folder] = Claims(folder)
            here = [i for i, r in enumerate(relative) if r == rel]
            chosen = output_stems([rasters[i] for i in here], folder, claims[folder], options.overwrite,
                                  expected if options.skip_existing else None)
            for i, stem in zip(here, chosen):
                stems[i] = stem
        shared = {r.stretch for r, stem in zip(rasters, stems) if stem is not None and r.stretch is not None
                  and r.stretch.scope != "file"}
        for stretch in shared:  # one line for the inputs that share it
            users = [r for r in rasters if r.stretch == stretch]
            progress.say(f"{len(users)} input(s) ({', '.join(sorted({r.dtype for r in users}))}) scaled to 8 bits "
                         f"by a {stretch.describe()}")
        jobs = []
        for info, stem, rel in zip(rasters, stems, relative):
            folder = out / rel
            if stem is None:
                result.skipped.append(Path(info.path))
                progress.say(f"{info.path}: skipped, its result with these settings is already in {folder}")
                continue
            base = output_stem(Path(info.path).stem)
            if stem != base and not options.overwrite and sidecar_matches(folder / f"{base}.json", info, expected):
                # the resume rule is explicit: say it before the work is done again
                progress.say(f"{info.path}: its result with these settings is already in {folder / base}.json; "
                             f"writing {stem}.* (--skip-existing skips finished inputs: a rerun resumes)")
            remove_outputs(folder, stem)  # a stale run's leftovers, or what --overwrite replaces
            try:
                jobs.append(plan_job(seg, vocab, info, stem, folder, options.probs, progress))
            except Exception as exc:
                claims[folder].release(stem)
                if not options.continue_on_error:
                    raise
                result.failures.append((Path(info.path), f"{type(exc).__name__}: {exc}"))
        write_units(seg, vocab, jobs, options, engine, claims, progress, result)
    finally:
        progress.close()
        for held in claims.values():
            held.release_all()
    return result
