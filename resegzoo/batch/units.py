"""The batch: one input = one unit of outputs, whichever engine computes its blocks.

For each input raster a batch claims an output *stem* in the output folder
(:mod:`resegzoo.batch.naming`; a taken stem gets ``-2``, ``-3`` ...), plans the raster
(:func:`resegzoo.batch.job.plan_raster`) and hands the blocks still to compute to an *engine*
(:mod:`resegzoo.engines`: a task of :class:`resegzoo.batch.job.BlockWork` over ``(raster, block)``
items, in this process or on Ray actors). :mod:`resegzoo.batch.writer` is the one
writer of both (blocks as they arrive, the spool, the unit finished with its sidecar LAST);
:mod:`resegzoo.batch.records` is what a sidecar records; :mod:`resegzoo.batch.unit` the data.

An input that fails or is interrupted leaves none of its files (its finished blocks stay in the
spool, so a rerun computes only the rest). ``skip_existing`` skips inputs whose sidecar holds a
result of the same settings; ``continue_on_error`` reports failed inputs at the end instead of
stopping. This module runs a batch (:func:`run_batch`) and keeps the names the batch had before
it was split by job.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from resegzoo.batch.naming import OUTPUT_SUFFIXES, input_stem, output_stems, remove_outputs, sidecar_matches
from resegzoo.batch.progress import BatchProgress
from resegzoo.batch.records import (draw_overlay, overlay_note, raster_options, settings_record, stretch_record,
                                    unit_record, written)
from resegzoo.batch.options import SegmentOptions
from resegzoo.batch.unit import BatchResult, RasterJob, summary
from resegzoo.batch.writer import write_unit, write_units

__all__ = ["OUTPUT_SUFFIXES", "BatchResult", "OpenedInputs", "SegmentOptions", "RasterJob", "draw_overlay", "output_stems",
           "overlay_note", "plan_job", "raster_options", "remove_outputs", "run_batch", "settings_record",
           "segment", "open_inputs", "sidecar_matches", "stretch_record", "summary", "unit_record", "write_unit",
           "write_units", "written"]


def plan_job(seg: Any, vocab: Any, raster: Any, stem: str, out: Path, probs: str | None,
             progress: BatchProgress, objects: bool = False) -> RasterJob:
    """Plan one input (blocks, stretch, grid; ``objects``: its blocks give objects) and name its outputs."""
    from resegzoo.batch.job import RasterOptions, plan_raster

    plan = plan_raster(raster, seg, RasterOptions(probs=probs, objects=objects), vocab)  # type: ignore[arg-type]
    if raster.bands_note:
        progress.say(f"note: {raster.path}: {raster.bands_note}")
    if raster.stretch is not None and raster.stretch.scope == "file":
        progress.say(f"{raster.path}: {raster.dtype} data scaled to 8 bits by a {raster.stretch.describe()}")
    label_path = out / f"{stem}.labels.{'tif' if plan.label_driver == 'GTiff' else 'png'}"
    probs_path = None if probs is None else out / f"{stem}.probs.tif"
    return RasterJob(plan, label_path, probs_path, overlay=out / f"{stem}.overlay.png", sidecar=out / f"{stem}.json")


def run_batch(seg: Any, options: SegmentOptions, rasters: Sequence[Any], engine: Any = None,
              progress: BatchProgress | None = None, folders: Sequence[Path] | None = None) -> BatchResult:
    """Segment opened rasters (:func:`open_inputs`) into ``options.out`` with the segmenter ``seg``
    (built from ``options.segmenter``), one unit of outputs each, on ``engine`` (an open engine of
    :mod:`resegzoo.engines`; default: this process). ``folders``: per raster, the folder of its
    outputs relative to ``options.out`` (mirrored input folders; default: none)."""
    from resegzoo.engines.local import LocalEngine
    from resegzoo.outputs.claims import Claims

    engine = engine or LocalEngine()
    progress = progress or BatchProgress()
    vocab = options.classes
    out = options.out
    relative = [Path(f) for f in folders] if folders is not None else [Path(".")] * len(rasters)
    expected = {**settings_record(seg, vocab, options.gis),
                "raster_options": raster_options(options.probs, options.nodata, stretch_record(options.stretch))}
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
            base = input_stem(info)
            if stem != base and not options.overwrite and sidecar_matches(folder / f"{base}.json", info, expected):
                # the resume rule is explicit: say it before the work is done again
                progress.say(f"{info.path}: its result with these settings is already in {folder / base}.json; "
                             f"writing {stem}.* (--skip-existing skips finished inputs: a rerun resumes)")
            remove_outputs(folder, stem)  # a stale run's leftovers, or what --overwrite replaces
            try:
                jobs.append(plan_job(seg, vocab, info, stem, folder, options.probs, progress, options.gis.objects))
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


@dataclass
class OpenedInputs:
    """A batch's inputs, opened and checked before any model loads."""

    #: the opened rasters (:class:`resegzoo.raster.opening.Raster`), their stretch decided
    rasters: list[Any]
    #: per raster, the folder of its outputs relative to the output folder
    folders: list[Path]
    #: inputs that could not be opened (as errors may name them), with why (``continue_on_error``;
    #: else the first is raised)
    failures: list[tuple[Path | str, str]]
    #: how many inputs were found
    count: int
    #: what the user should know about the inputs (entries skipped, the last run's outputs left out)
    notes: list[str]


def open_inputs(options: SegmentOptions) -> OpenedInputs:
    """Expand ``options.inputs`` (files, folders, patterns) and open each raster with the bands,
    nodata and trust asked for, then decide the stretch (a batch stretch reads every input,
    decimated) and check the GIS products can be made: a BatchInputError before any model loads."""
    from resegzoo.batch.errors import BatchInputError
    from resegzoo.batch.inputs import expand_inputs
    from resegzoo.outputs.gis.products import GisOptionError
    from resegzoo.raster.errors import ImageError
    from resegzoo.raster.opening import open_raster
    from resegzoo.raster.stretch import with_stretch

    notes: list[str] = []
    files = expand_inputs(options.inputs, options.recursive, out=options.out, notes=notes, stac_search=options.stac,
                          asset=options.asset, trust_vrt=options.trust_vrt)
    rasters, folders, failures = [], [], []
    for f in files:
        try:
            # --bands wins over the bands an input names (a STAC asset's by common name)
            raster = open_raster(f.path, options.bands if options.bands is not None else f.bands, options.nodata,
                                 trust_vrt=options.trust_vrt, stretch=False)
            rasters.append(dataclasses.replace(raster, origin=f.origin) if f.origin else raster)
            folders.append(f.folder)
        except ImageError as exc:
            if not options.continue_on_error:
                raise BatchInputError(str(exc)) from None
            failures.append((f.public, str(exc)))
    rasters = with_stretch(rasters, options.stretch)
    try:
        options.gis.check(rasters)
    except GisOptionError as exc:
        raise BatchInputError(str(exc)) from None
    return OpenedInputs(rasters, folders, failures, len(files), notes)


def segment(options: SegmentOptions, progress: BatchProgress | None = None) -> BatchResult:
    """What ``resegzoo segment`` does with checked options (:meth:`SegmentOptions.check`): open
    the inputs, resolve the model spec once, build the segmenter once (the model loads here, after
    every check), then segment every input on the engine asked for."""
    from resegzoo.engines import open_engine
    from resegzoo.plugins.registry import RegistryError
    from resegzoo.schema import SchemaError
    from resegzoo.methods.base import ModelLoadError

    progress = progress or BatchProgress()
    opened = open_inputs(options)
    for note in opened.notes:
        progress.note(note)
    from resegzoo.segmenter.core import Segmenter  # torch: only once the inputs opened (start-up, issue 27)

    try:
        # the model spec resolved once (fetched, fingerprinted): the segmenter here and every Ray
        # actor build from the resolved model
        options = dataclasses.replace(options, segmenter=options.segmenter.resolve())
        seg = Segmenter.from_spec(options.segmenter)
    except (ModelLoadError, RegistryError, SchemaError, ValueError, TypeError) as exc:
        raise ModelLoadError(str(exc)) from exc  # the chain keeps the error's kind (the exit status)
    for note in seg.notes + seg.cache_notes:
        progress.note(note)
    with open_engine(options.engine.logging_into(options.out)) as engine:
        result = run_batch(seg, options, opened.rasters, engine, progress, opened.folders)
    result.failures[:0] = opened.failures
    result.inputs = opened.count
    return result
