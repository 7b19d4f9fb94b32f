"""``resegzoo change BEFORE AFTER``: what changed between two dates of one place, on rasters of any size.

:meth:`ChangeOptions.check` checks everything a user gives before any model loads and any pixel is
read; :func:`detect_change_files` then opens both dates (the second read onto the first's grid:
:func:`resegzoo.raster.warp.onto_grid`), builds the segmenter once, hands the blocks still to
compute to an engine (:mod:`resegzoo.engines`: the task of
:class:`~resegzoo.change.blocks.ChangeBlockWork`, in this process or on Ray actors), spools every
finished block (an interrupted run resumes where it stopped), then makes the outputs from the whole raster (:mod:`.assemble`) and
writes the sidecar ``STEM.json`` last. :func:`resegzoo.api.detect_change` does all of it.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from resegzoo.batch.errors import BatchInputError
from resegzoo.errors import EXIT_FAILED, ResegzooError, same_kind
from resegzoo.change.assemble import Assembly, PairOutputs, assemble
from resegzoo.change.rule import PRESETS, ChangeSettings, ChangeSettingsError

#: the recipe it runs then (SAM 3's own 1008 px windows at stride 504)
DEFAULT_RECIPE = "method-segearth-ov3"
VECTOR_FORMATS = ("gpkg", "geojson")
#: the most bytes a sidecar read back may hold
SIDECAR_LIMIT = 16 << 20


class ChangeOptionError(BatchInputError, ValueError):
    """An option of ``resegzoo change`` that cannot be used (one line, before any work)."""


class ChangeRunError(ResegzooError):
    """Blocks that failed on a worker (their message each; the finished blocks stay spooled)."""

    exit_code = EXIT_FAILED


@dataclass(frozen=True)
class ChangeOptions:
    """Everything ``resegzoo change`` was asked, checked (make it with :meth:`check`)."""

    before: str
    after: str
    classes: Any  # a resegzoo.vocabulary.Vocabulary
    out: Path
    #: the recipe (its method chosen), the model spec and the torch device, checked once
    #: (:meth:`resegzoo.segmenter.spec.SegmenterSpec.check`): what the segmenter is built from
    segmenter: Any
    settings: ChangeSettings = field(default_factory=ChangeSettings)
    #: GDAL's resampling for reading AFTER onto BEFORE's grid
    resampling: str = "bilinear"
    bands: tuple[int, ...] | None = None
    nodata: float | None = None
    trust_vrt: bool = False
    vector_format: str = "gpkg"
    overwrite: bool = False
    stem: str = "change"

    @property
    def recipe(self) -> Any:
        return self.segmenter.recipe

    @property
    def model(self) -> Any:
        return self.segmenter.model

    @property
    def device(self) -> str:
        return self.segmenter.device

    @classmethod
    def check(cls, before: Any, after: Any, classes: Any, out: Any = "change-out", *, recipe: Any = None,
              model: Any = None, method: Any = None, device: str = "cpu", preset: str | None = None,
              background_threshold: float | None = None, coverage: float | None = None, min_area: int | None = None,
              background_classes: Any = None, resampling: str = "bilinear", bands: Any = None, nodata: Any = None,
              trust_vrt: bool = False, vector_format: str = "gpkg", overwrite: bool = False) -> "ChangeOptions":
        """Check every argument (the keywords of :func:`resegzoo.api.detect_change`) before any model
        loads: ChangeOptionError in one line (a method that cannot detect change or cannot run with
        the model given, a bad recipe, class list, option or output folder)."""
        from resegzoo.change.pair import check_change_method
        from resegzoo.methods.base import MethodError
        from resegzoo.batch.options import OptionTypeError, _bands, _nodata, _optional_text, _vocabulary
        from resegzoo.raster.warp import RESAMPLINGS
        from resegzoo.runtime.preflight import check_output_folder
        from resegzoo.segmenter.spec import SegmenterSpec
        from resegzoo.vocabulary import Vocabulary, VocabularyError

        for name, value in (("before", before), ("after", after), ("out", out)):
            if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
                raise ChangeOptionError(f"{name}={value!r}: give a path")
        # the argument types: segment's one checker of each (OptionTypeError names the argument)
        for name, value in (("trust_vrt", trust_vrt), ("overwrite", overwrite)):
            if not isinstance(value, bool):
                raise OptionTypeError(f"{name}={value!r}: give True or False")
        model = _optional_text("model", model, "a model spec (hf-hub:ORG/REPO, local-dir:DIR)")
        method = _optional_text("method", method, "a method's name")
        if not isinstance(device, str):
            raise OptionTypeError(f"device={device!r}: give a torch device as text, e.g. 'cpu', 'cuda' or 'cuda:1'")
        bands, nodata = _bands(bands), _nodata(nodata)
        if not isinstance(classes, (str, Vocabulary)):
            _vocabulary(classes)  # the type error, in segment's words
        try:
            vocab = classes if isinstance(classes, Vocabulary) else Vocabulary.parse(classes)
        except VocabularyError as exc:
            raise ChangeOptionError(str(exc)) from None
        if resampling not in RESAMPLINGS:
            raise ChangeOptionError(f"--resampling {resampling!r}: choose one of {', '.join(RESAMPLINGS)}")
        if vector_format not in VECTOR_FORMATS:
            raise ChangeOptionError(f"--vector-format {vector_format!r}: choose one of {', '.join(VECTOR_FORMATS)}")
        recipe = _recipe(recipe)
        try:
            check_change_method(method or recipe.method.name)  # before "no model given": the method is the problem
        except MethodError as exc:
            raise ChangeOptionError(str(exc)) from None
        settings = _settings(preset, background_threshold, coverage, min_area, background_classes)
        try:  # the method with the model, and the device: checked once, here
            spec = SegmenterSpec.check(recipe, model=model, method=method, device=device)
        except MethodError as exc:  # a missing download stays a failure (exit 1)
            raise same_kind(ChangeOptionError(str(exc)), exc) from None
        if len(vocab) + 1 > 254:
            raise ChangeOptionError(f"{len(vocab)} classes: at most 253 (and background) fit the 8-bit from/to rasters")
        options = cls(before=os.fspath(before), after=os.fspath(after), classes=vocab, out=Path(out),
                      segmenter=spec, settings=settings, resampling=resampling,
                      bands=bands, nodata=nodata, trust_vrt=trust_vrt, vector_format=vector_format,
                      overwrite=overwrite)
        check_output_folder(options.out)
        return options

    def build_segmenter(self) -> Any:
        """The segmenter (torch and the model load here): ModelLoadError in one line where the model
        or the method cannot be set up."""
        from resegzoo.methods.base import ModelLoadError
        from resegzoo.plugins.registry import RegistryError
        from resegzoo.schema import SchemaError
        from resegzoo.segmenter.core import Segmenter

        try:
            return Segmenter.from_spec(self.segmenter)  # checked already: its model resolved there, once
        except (ModelLoadError, RegistryError, SchemaError, ValueError, TypeError) as exc:
            raise ModelLoadError(str(exc)) from exc  # the chain keeps the error's kind (the exit status)


def _recipe(recipe: Any) -> Any:
    """A SegmentRecipe, a recipe file or a shipped recipe's name (None: :data:`DEFAULT_RECIPE`)."""
    from resegzoo.schema import SchemaError
    from resegzoo.segmenter.recipe import SegmentRecipe, load_recipe, resolve_recipe

    if isinstance(recipe, SegmentRecipe):
        return recipe
    if recipe is not None and not isinstance(recipe, (str, os.PathLike)):
        raise ChangeOptionError(f"recipe={recipe!r}: give a SegmentRecipe, a recipe file or a shipped recipe's name")
    try:
        return load_recipe(resolve_recipe(recipe if recipe is not None else DEFAULT_RECIPE))
    except SchemaError as exc:
        raise ChangeOptionError(f"bad recipe: {exc}") from None


def _settings(preset: str | None, background_threshold: float | None, coverage: float | None,
              min_area: int | None, background_classes: Any) -> ChangeSettings:
    if preset is not None and preset not in PRESETS:
        raise ChangeOptionError(f"--preset {preset!r}: choose one of {', '.join(PRESETS)} (SegEarth-OV3's settings "
                                "for that dataset)")
    from resegzoo.batch.options import OptionTypeError

    base = PRESETS[preset] if preset is not None else ChangeSettings()
    given = {k: v for k, v in (("background_threshold", background_threshold), ("coverage", coverage),
                               ("min_area", min_area)) if v is not None}
    for name, value in given.items():
        whole = name == "min_area"
        if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
            raise OptionTypeError(f"{name}={value!r}: give {'a whole number of pixels' if whole else 'a number, 0..1'}"
                                  ", or None for the preset's")
    if background_classes is not None and not isinstance(background_classes, str) and (
            not isinstance(background_classes, (list, tuple))
            or not all(isinstance(name, str) for name in background_classes)):
        raise OptionTypeError(f"background_classes={background_classes!r}: give a class label as text or a list "
                              "of them, or None for 'background'")
    if background_classes is not None:
        given["background_classes"] = (background_classes,) if isinstance(background_classes, str) \
            else tuple(background_classes)
    try:
        return dataclasses.replace(base, **given)
    except ChangeSettingsError as exc:
        raise ChangeOptionError(str(exc)) from None


@dataclass
class ChangeRun:
    """What :func:`detect_change_files` did: the sidecar record and the files written."""

    record: dict[str, Any]
    outputs: PairOutputs
    skipped: bool = False

    @property
    def files(self) -> list[Path]:
        return [p for p in self.outputs.files if p.exists()]


def _sidecar_settings(segmenter: Any, options: ChangeOptions) -> dict[str, Any]:
    """What decides the result (a rerun with the same settings finds it done)."""
    record = {"classes": [list(c) for c in options.classes.classes], "change": options.settings.to_dict(),
              "resampling": options.resampling, "bands": options.bands,
              "nodata": None if options.nodata is None else ("nan" if math.isnan(options.nodata) else options.nodata),
              "vector_format": options.vector_format, **segmenter.describe()}
    return json.loads(json.dumps(record, default=str))


def detect_change_files(options: ChangeOptions, say: Callable[[str], None] = lambda line: None,
                        progress: bool = False, engine: Any = None) -> ChangeRun:
    """Run ``resegzoo change`` with checked options: the pair opened and planned, the segmenter
    built once, the blocks computed on ``engine`` (an open engine of :mod:`resegzoo.engines`; default:
    this process), the outputs made, the sidecar
    written last."""
    from resegzoo.batch.spool import SPOOL_DIR
    from resegzoo.change.blocks import pair_key, plan_pair, spooled_blocks
    from resegzoo.change.pair import check_segmenter
    from resegzoo.batch.job import RasterOptions
    from resegzoo.outputs import imageio
    from resegzoo.outputs.claims import claimed_output
    from resegzoo.outputs.reading import read_text
    from resegzoo.raster.errors import ImageError
    from resegzoo.raster.opening import open_raster
    from resegzoo.raster.warp import onto_grid

    start = time.perf_counter()
    out, vocab = options.out, options.classes
    outputs = PairOutputs(out, options.stem, options.vector_format)
    # both dates opened and put on one grid before the model loads: a pair that cannot be compared
    # costs no model
    try:
        before = open_raster(options.before, options.bands, options.nodata, trust_vrt=options.trust_vrt)
        after = open_raster(options.after, options.bands, options.nodata, trust_vrt=options.trust_vrt)
        onto_grid(after, before, options.resampling)  # checked here; planned again with the segmenter below
    except ImageError as exc:  # found before any work: what the user gave cannot be compared
        raise ChangeOptionError(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    with claimed_output(out / options.stem, "change run"):
        segmenter = options.build_segmenter()
        check_segmenter(segmenter, vocab)
        for note in segmenter.notes + segmenter.cache_notes:
            say(f"note: {note}")
        expected = _sidecar_settings(segmenter, options)
        sidecar = outputs.path("sidecar")
        if sidecar.is_file() and not options.overwrite:
            try:
                done = json.loads(read_text(sidecar, SIDECAR_LIMIT))
            except (OSError, ValueError):
                done = None
            if isinstance(done, dict) and done.get("settings") == expected and _same_inputs(done, before, after):
                say(f"{sidecar}: these dates with these settings are done already (--overwrite computes them again)")
                return ChangeRun(done, outputs, skipped=True)
            raise ChangeOptionError(f"{sidecar} holds another result; pass --overwrite to replace it, or choose "
                                    "another --out")
        for path in outputs.files:  # --overwrite, or a killed run's leftovers: never mixed with new files
            path.unlink(missing_ok=True)
        pair = plan_pair(before, after, segmenter, vocab, options.settings, RasterOptions(), options.resampling)
        if pair.note:
            say(f"note: {pair.note}")
        spool = out / SPOOL_DIR / pair_key(pair, expected)
        notes: list[str] = []
        spooled = spooled_blocks(spool, pair, len(vocab), notes)
        for note in notes:
            say(f"note: {note}")
        if spooled:
            say(f"{options.before}: resuming, {len(spooled)} of {len(pair.blocks)} block(s) done by an earlier run")
        todo = [b for b in pair.blocks if b.index not in spooled]
        _compute(segmenter, vocab, pair, todo, spool, spooled, options, engine, progress, say)
        found = assemble(pair, vocab, spooled, outputs, say)
        record = _record(options, pair, segmenter, expected, found, outputs, time.perf_counter() - start)
        imageio.write_json(sidecar, record)  # last: the result's commit marker
        shutil.rmtree(spool, ignore_errors=True)
        if spool.parent.is_dir() and not any(spool.parent.iterdir()):
            spool.parent.rmdir()
        return ChangeRun(record, outputs)


def _same_inputs(record: dict[str, Any], before: Any, after: Any) -> bool:
    from resegzoo.raster.names import path_record

    return record.get("before") == path_record(before.path) and record.get("after") == path_record(after.path)


def _compute(segmenter: Any, vocab: Any, pair: Any, todo: list[Any], spool: Path, spooled: dict[int, Path],
             options: ChangeOptions, engine: Any, progress: bool, say: Callable[[str], None]) -> None:
    """The blocks still to compute, on the engine; each finished block is spooled at once. A block
    that failed on another process is reported with the others after the rest are done (its
    finished neighbours stay spooled); an exception raised here stops the run."""
    from resegzoo.change.blocks import change_task, save_block
    from resegzoo.engines.local import LocalEngine

    if not todo:
        return
    engine = engine if engine is not None else LocalEngine()
    # Ray actors build the segmenter from the recipe and the model the driver resolved (no second
    # resolve or download on a worker); this process's engine uses the segmenter built here
    spec = dataclasses.replace(options.segmenter, resolved=getattr(segmenter, "resolved", None))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pair.blocks), initial=len(pair.blocks) - len(todo), desc="blocks", unit="block")
    failures: list[str] = []
    try:
        for outcome in engine.run(change_task(segmenter, vocab, pair, spec), todo, segmenter=lambda: segmenter):
            block = outcome.item
            if isinstance(outcome.error, BaseException):  # raised in this process: the run stops
                raise outcome.error
            if outcome.error is not None:  # another process's message: reported with the others
                failures.append(f"block {block.index} (rows {block.read[0]}:{block.read[2]}, cols "
                                f"{block.read[1]}:{block.read[3]}): {outcome.error}")
                continue
            path = spool / f"{block.index}.npz"
            save_block(path, outcome.value)
            spooled[block.index] = path
            if bar is not None:
                bar.update(1)
        for line in engine.report():
            say(line)
    finally:
        if bar is not None:
            bar.close()
    if failures:
        raise ChangeRunError(f"{options.before}: {'; '.join(failures[:5])} (its finished blocks are kept: a rerun "
                                "computes only the rest)")


def _record(options: ChangeOptions, pair: Any, segmenter: Any, settings: dict[str, Any], found: Assembly,
            outputs: PairOutputs, seconds: float) -> dict[str, Any]:
    from resegzoo.raster.names import path_record

    raster = pair.before.raster
    names = list(options.classes.class_names) + ["background"]
    total = found.valid_pixels + found.nodata_pixels
    georef = raster.georef
    return {
        "before": path_record(raster.path),
        "after": path_record(pair.after.path),
        "after_read": pair.note or "on the first date's grid already",
        "outputs": {kind: outputs.path(kind).name for kind in ("change", "from", "to", "vector", "overlay")},
        "size": [raster.height, raster.width],
        "crs": georef.crs_string,
        "transform": None if georef.transform is None else list(georef.transform),
        "change_classes": ["unchanged", "changed"],
        "class_names": names,
        "thresholds": {names[c]: t for c, t in zip(pair.classes, found.thresholds)},
        "pixels": {"valid": found.valid_pixels, "nodata": found.nodata_pixels, "changed": found.changed_pixels,
                   "changed_fraction": round(found.changed_pixels / found.valid_pixels, 6) if found.valid_pixels else 0.0,
                   "object_rule": found.object_pixels, "pixel_rule": found.pixel_rule_pixels,
                   "nodata_fraction": round(found.nodata_pixels / total, 6) if total else 0.0},
        "transitions": [{"before": a, "after": b, "pixels": n} for (a, b), n in sorted(found.transitions.items())],
        "polygons": found.polygons,
        "blocks": len(pair.blocks),
        "windows_skipped_nodata": found.windows_skipped,
        "scale": pair.before.scale,
        "seconds": round(seconds, 3),
        "settings": settings,
    }
