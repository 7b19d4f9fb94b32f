"""resegzoo's public Python API: what the CLI, the evaluation and notebook users call.

    from resegzoo.api import load_recipe, Segmenter, Vocabulary
    recipe = load_recipe(None, window=224)                 # METHOD.md defaults + overrides
    seg = Segmenter.from_recipe(recipe, model="remoteclip-vit-l-14", masks="slic")
    res = seg.segment(image_uint8_hw3, Vocabulary.parse("building; road, street; tree"))
    res.labels        # (H, W) int32 indices into res.class_names
    res.probs         # (K, H, W) float32 softmax over the K vocabulary classes

With ``inference.background_threshold`` set, pixels whose top probability is below it get the
label ``len(vocabulary)`` and ``res.class_names[-1] == "background"``.

Rasters of any size (anything GDAL opens), block by block in bounded memory, nodata kept:

    from resegzoo.api import RasterOptions, segment_raster
    run = segment_raster(seg, vocab, "scene.tif", "scene.labels.tif", RasterOptions(nodata=0))
    run.pixel_fraction()   # per class, of the valid pixels; run.nodata_pixels

Files, folders and glob patterns, one unit of outputs per input (what ``resegzoo segment`` does):

    from resegzoo.api import segment_files
    result = segment_files(["tiles/"], "building; road, street; tree", "labels/", model="oracle")
    result.records         # each written input's sidecar record; result.failures, result.skipped
    print(result.summary())

Several prompts per class (a prompt pool: the shipped ``remote-sensing`` union or a file, one
class a line: its name, then its prompts), for ``segment_files`` and for ``Segmenter`` alike:

    result = segment_files(["tiles/"], "building; road; tree", "labels/", model="oracle",
                           prompt_pool="remote-sensing")
    vocab = expand_vocabulary(Vocabulary.parse("building; road"), load_pool("remote-sensing"))

What changed between two dates (SegEarth-OV3's change rule on a SAM 3 method; docs/change.md): two
rasters of any size and on any grids (what ``resegzoo change`` does), or two arrays:

    run = detect_change("2019.tif", "2023.tif", "building; tree; water", "changes/", model="sam3")
    run.record["pixels"]["changed"], run.files        # change.tif, .from/.to.tif, .gpkg, overlay, json
    maps = ChangeDetector(seg, vocab, ChangeSettings()).detect(image_2019, image_2023)
    maps.change       # (H, W) uint8: 0 unchanged, 1 changed, 255 nodata at either date
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from resegzoo.batch.inputs import BatchInputError
from resegzoo.batch.job import RasterOptions, RasterPlan, RasterRun, plan_raster, segment_raster
from resegzoo.batch.progress import BatchProgress
from resegzoo.batch.options import OptionTypeError, OptionValueError, SegmentOptions
from resegzoo.batch.units import BatchResult
from resegzoo.methods.base import ModelLoadError
from resegzoo.outputs.gis.products import GisOutputs
from resegzoo.raster.stretch import Stretch
from resegzoo.prompt_pools import PromptPool, PromptPoolError, expand_vocabulary, load_pool
from resegzoo.segmenter.recipe import SegmentRecipe, load_recipe
from resegzoo.vocabulary import Vocabulary, VocabularyError

#: names of the facade that live in modules importing torch: loaded when first asked for, so a
#: command that fails its option checks (or never segments) does not pay for torch
_LAZY = {"Segmenter": "resegzoo.segmenter.core", "SegmentResult": "resegzoo.segmenter.core",
         "check_image": "resegzoo.segmenter.core", "load_templates": "resegzoo.methods.clip.text",
         "ChangeDetector": "resegzoo.change.pair", "ChangeMaps": "resegzoo.change.rule",
         "ChangeSettings": "resegzoo.change.rule", "ChangeRun": "resegzoo.change.run"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "BatchInputError",
    "BatchProgress",
    "BatchResult",
    "ChangeDetector",
    "ChangeMaps",
    "ChangeRun",
    "ChangeSettings",
    "GisOutputs",
    "ModelLoadError",
    "OptionTypeError",
    "OptionValueError",
    "PromptPool",
    "PromptPoolError",
    "RasterOptions",
    "RasterPlan",
    "RasterRun",
    "SegmentRecipe",
    "SegmentOptions",
    "SegmentResult",
    "Stretch",
    "Segmenter",
    "Vocabulary",
    "VocabularyError",
    "check_image",
    "detect_change",
    "expand_vocabulary",
    "load_pool",
    "load_recipe",
    "load_templates",
    "plan_raster",
    "segment_files",
    "segment_raster",
    "run_segment",
]


def segment_files(inputs: "str | Path | Sequence[str | Path]", classes: "str | Vocabulary",
                  out: str | Path = "segment-out", *, recipe: "SegmentRecipe | str | Path | None" = None,
                  model: str | None = None, masks: str | None = None, method: str | None = None,
                  device: str = "cpu", architecture: str | None = None, bands: str | Sequence[int] | None = None,
                  nodata: float | str | None = None, probs: str | None = None, recursive: bool = False,
                  overwrite: bool = False, skip_existing: bool = False, continue_on_error: bool = False,
                  trust_vrt: bool = False, stretch: "str | Stretch" = "batch", gis: GisOutputs | None = None,
                  engine: Any = "local", progress: BatchProgress | None = None, prompt_pool: str | None = None,
                  stac: Any = None, asset: str | None = None) -> BatchResult:
    """Segment files, folders (``recursive``: and below) and glob patterns into ``out``: per input
    a label map, an overlay, the GIS products of ``gis`` and a JSON sidecar written last, exactly
    as ``resegzoo segment`` does. ``inputs``: one path or pattern, or a list of them. Outputs are
    never overwritten (taken names get ``-2``, ``-3`` ...; ``overwrite`` replaces);
    ``skip_existing`` skips inputs whose result with these settings is there (not with
    ``overwrite``); ``continue_on_error`` records failing inputs in the result instead of raising;
    ``trust_vrt`` lets VRTs read raw bands, network and archive sources. ``recipe``: a
    SegmentRecipe, a recipe file or a shipped recipe's name. ``bands``: ``"4,3,2"`` or a sequence
    of band numbers (one: grey). ``probs``: ``"uint8"`` or ``"float16"``. ``stretch`` (for data
    that is not 8-bit): ``"batch"`` (one 2-98 percentile stretch over every input), ``"file"``
    (one per input), given values (``"0:3000"``, ``"0:3000,0:2800,0:2500"``) or a
    :class:`Stretch`. ``engine``: ``"local"``, ``"ray"`` or a
    :class:`resegzoo.engines.EngineOptions`.

    ``prompt_pool`` (default: the recipe's ``text.prompt_pool``): ``remote-sensing`` (shipped) or
    a pool file gives each class whose name is a key of the pool that key's prompts as synonyms;
    each sidecar's ``classes`` lists the names every class was prompted with.

    Inputs may be URLs (``s3://``, ``https://`` ...: read where they are) and STAC items or item
    collections (``.json``); ``stac`` (a :class:`resegzoo.batch.stac.StacSearch`) adds the items a
    STAC API search finds; ``asset`` names the STAC asset to read (default: the visual/RGB one).

    ``method`` (default: the recipe's ``method:``) is checked against ``model`` and ``masks``
    (:func:`resegzoo.methods.base.check_method`) with the rest, before the model loads.

    Everything is checked once, before any input is read or the model loads, by the checker the
    CLI uses too (:meth:`SegmentOptions.check`): an argument of the wrong type is a TypeError, a
    wrong value a ValueError (both :class:`BatchInputError`), as are the classes, recipe, method,
    inputs, bands, nodata and GIS options; the device and a writable ``out`` too. The model spec
    is then resolved once (the model route: a model of another kind than the method's is a
    :class:`ModelLoadError` in one line, before any model loads). This is
    ``run_segment(SegmentOptions.check(...))``."""
    options = SegmentOptions.check(inputs, classes, out, recipe=recipe, model=model, masks=masks, method=method,
                                   device=device, architecture=architecture, bands=bands, nodata=nodata,
                                   probs=probs, recursive=recursive, overwrite=overwrite,
                                   skip_existing=skip_existing, continue_on_error=continue_on_error,
                                   trust_vrt=trust_vrt, stretch=stretch, gis=gis, engine=engine,
                                   prompt_pool=prompt_pool, stac=stac, asset=asset)
    return run_segment(options, progress)


def detect_change(before: str | Path, after: str | Path, classes: "str | Vocabulary", out: str | Path = "change-out",
                  *, recipe: "SegmentRecipe | str | Path | None" = None, model: str | None = None,
                  method: str | None = None, device: str = "cpu", preset: str | None = None,
                  background_threshold: float | None = None, coverage: float | None = None,
                  min_area: int | None = None, background_classes: str | Sequence[str] | None = None,
                  resampling: str = "bilinear", bands: str | Sequence[int] | None = None,
                  nodata: float | str | None = None, trust_vrt: bool = False, vector_format: str = "gpkg",
                  overwrite: bool = False, engine: Any = "local", say: Any = None,
                  progress: bool = False) -> Any:
    """What changed between ``before`` and ``after`` (two rasters of one place, anything GDAL opens):
    exactly what ``resegzoo change`` does (it calls this), into ``out``: ``change.tif`` (0 unchanged,
    1 changed, 255 nodata), ``change.from.tif``/``change.to.tif``, ``change.gpkg`` (or ``.geojson``),
    ``change.overlay.png`` and the sidecar ``change.json``. ``after`` is read onto ``before``'s grid
    (``resampling``: GDAL's kernel); ``preset`` (``levir-cd``, ``whu-cd``, ``s2looking``) and the
    three settings after it are the rule's (docs/change.md); ``engine``: ``"local"``, ``"ray"`` or a
    :class:`resegzoo.engines.EngineOptions`; ``say(line)`` gets the notes. Everything is checked
    before the model loads (one-line :class:`resegzoo.errors.ResegzooError` subclasses). Returns a
    :class:`resegzoo.change.run.ChangeRun` (``record``: the sidecar; ``files``; ``skipped``: the same
    result was there already)."""
    from resegzoo.change.run import ChangeOptions, detect_change_files
    from resegzoo.engines import EngineOptions, open_engine

    if say is not None and not callable(say):
        raise OptionTypeError(f"say={say!r}: give a function of one line of text, or None")
    if not isinstance(progress, bool):
        raise OptionTypeError(f"progress={progress!r}: give True or False")
    engine_options = engine if isinstance(engine, EngineOptions) else EngineOptions(str(engine))
    engine_options.check()
    options = ChangeOptions.check(before, after, classes, out, recipe=recipe, model=model, method=method,
                                  device=device, preset=preset, background_threshold=background_threshold,
                                  coverage=coverage, min_area=min_area, background_classes=background_classes,
                                  resampling=resampling, bands=bands, nodata=nodata, trust_vrt=trust_vrt,
                                  vector_format=vector_format, overwrite=overwrite)
    with open_engine(engine_options.logging_into(options.out)) as running:
        return detect_change_files(options, say=say or (lambda line: None), progress=progress, engine=running)


def run_segment(options: SegmentOptions, progress: BatchProgress | None = None) -> BatchResult:
    """Segment what checked ``options`` (:meth:`SegmentOptions.check`) ask for; the CLI's and
    :func:`segment_files`' one way in (see :func:`resegzoo.batch.units.segment`)."""
    from resegzoo.batch.units import segment

    if not isinstance(options, SegmentOptions):
        raise OptionTypeError(f"options={options!r}: give a SegmentOptions (SegmentOptions.check(...) makes one)")
    if progress is not None and not isinstance(progress, BatchProgress):
        raise OptionTypeError(f"progress={progress!r}: give a resegzoo.api.BatchProgress (or a subclass), or None")
    return segment(options, progress)
