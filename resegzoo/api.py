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
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from resegzoo.batch.inputs import BatchInputError
from resegzoo.batch.job import RasterOptions, RasterPlan, RasterRun, plan_raster, segment_raster
from resegzoo.batch.progress import BatchProgress
from resegzoo.batch.units import BatchOptions, BatchResult
from resegzoo.methods.base import ModelLoadError
from resegzoo.outputs.gis.products import GisOutputs
from resegzoo.raster.reader import Stretch
from resegzoo.prompt_pools import PromptPool, PromptPoolError, expand_vocabulary, load_pool
from resegzoo.segmenter.recipe import SegmentRecipe, load_recipe
from resegzoo.vocabulary import Vocabulary, VocabularyError

#: names of the facade that live in modules importing torch: loaded when first asked for, so a
#: command that fails its option checks (or never segments) does not pay for torch
_LAZY = {"Segmenter": "resegzoo.segmenter.core", "SegmentResult": "resegzoo.segmenter.core",
         "check_image": "resegzoo.segmenter.core", "load_templates": "resegzoo.methods.clip.text"}


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
    "GisOutputs",
    "ModelLoadError",
    "PromptPool",
    "PromptPoolError",
    "RasterOptions",
    "RasterPlan",
    "RasterRun",
    "SegmentRecipe",
    "SegmentResult",
    "Stretch",
    "Segmenter",
    "Vocabulary",
    "VocabularyError",
    "check_image",
    "expand_vocabulary",
    "load_pool",
    "load_recipe",
    "load_templates",
    "plan_raster",
    "segment_files",
    "segment_raster",
]


def segment_files(inputs: Sequence[str | Path], classes: "str | Vocabulary", out: str | Path = "segment-out", *,
                  recipe: "SegmentRecipe | str | Path | None" = None, model: str | None = None,
                  masks: str | None = None, method: str | None = None, device: str = "cpu",
                  architecture: str | None = None, bands: str | Sequence[int] | None = None, nodata: float | str | None = None,
                  probs: str | None = None, recursive: bool = False, overwrite: bool = False,
                  skip_existing: bool = False, continue_on_error: bool = False, trust_vrt: bool = False,
                  stretch: "str | Stretch" = "batch", gis: GisOutputs | None = None,
                  engine: Any = "local", progress: BatchProgress | None = None,
                  prompt_pool: str | None = None, stac: Any = None, asset: str | None = None) -> BatchResult:
    """Segment files, folders (``recursive``: and below) and glob patterns into ``out``: per input
    a label map, an overlay, the GIS products of ``gis`` and a JSON sidecar written last, exactly
    as ``resegzoo segment`` does (it calls this). Outputs are never overwritten (taken names get
    ``-2``, ``-3`` ...; ``overwrite`` replaces); ``skip_existing`` skips inputs whose result with
    these settings is there; ``continue_on_error`` records failing inputs in the result instead of
    raising; ``trust_vrt`` lets VRTs read raw bands, network and archive sources. ``stretch`` (for
    data that is not 8-bit): ``"batch"`` (one 2-98 percentile stretch over every input), ``"file"``
    (one per input), given values (``"0:3000"``, ``"0:3000,0:2800,0:2500"``) or a
    :class:`resegzoo.raster.reader.Stretch`. ``engine``:
    ``"local"``, ``"ray"`` or a :class:`resegzoo.engines.EngineOptions`.

    ``prompt_pool`` (default: the recipe's ``text.prompt_pool``): ``remote-sensing`` (shipped) or
    a pool file gives each class whose name is a key of the pool that key's prompts as synonyms;
    each sidecar's ``classes`` lists the names every class was prompted with.

    Inputs may be URLs (``s3://``, ``https://`` ...: read where they are) and STAC items or item
    collections (``.json``); ``stac`` (a :class:`resegzoo.batch.stac.StacSearch`) adds the items a
    STAC API search finds; ``asset`` names the STAC asset to read (default: the visual/RGB one).

    ``method`` (default: the recipe's ``method:``) is checked against ``model`` and ``masks``
    (:func:`resegzoo.methods.base.check_method`) with the rest, before the model loads.

    Everything is checked before the model loads (classes, recipe, method, inputs, bands, nodata,
    GIS options: a :class:`BatchInputError`; the device and a writable ``out``)."""
    import dataclasses

    from resegzoo.batch.inputs import expand_inputs
    from resegzoo.batch.units import run_batch, stretch_record
    from resegzoo.methods.clip.text import load_templates
    from resegzoo.engines import EngineOptions, SegmenterSpec, raster_engine
    from resegzoo.errors import same_kind
    from resegzoo.methods.base import MethodError, check_method
    from resegzoo.outputs.gis.products import GisOptionError
    from resegzoo.plugins.registry import RegistryError
    from resegzoo.raster import reader
    from resegzoo.runtime.preflight import check_device, check_output_folder
    from resegzoo.schema import SchemaError

    out = Path(out)
    gis = gis or GisOutputs()
    progress = progress or BatchProgress()
    options = engine if isinstance(engine, EngineOptions) else EngineOptions(str(engine)).check()
    try:
        vocab = classes if isinstance(classes, Vocabulary) else Vocabulary.parse(classes)
    except VocabularyError as exc:
        raise BatchInputError(str(exc)) from None
    if len(vocab) + 1 > reader.NODATA_LABEL:
        raise BatchInputError(f"{len(vocab)} classes: at most {reader.NODATA_LABEL - 1} fit an 8-bit label map "
                              f"(with background; {reader.NODATA_LABEL} is nodata)")
    if not isinstance(recipe, SegmentRecipe):
        try:
            recipe = load_recipe(recipe)
        except SchemaError as exc:
            raise BatchInputError(f"bad recipe: {exc}") from None
    try:
        recipe, vocab = _with_prompt_pool(recipe, vocab, prompt_pool)
    except (PromptPoolError, VocabularyError) as exc:
        raise BatchInputError(str(exc)) from None
    try:
        choice = check_method(recipe, method=method, model=model, masks=masks)
    except MethodError as exc:  # a missing download stays a failure (exit 1); the rest are usage errors
        raise same_kind(BatchInputError(str(exc)), exc) from None
    recipe, model, masks = choice.recipe, choice.model, choice.masks
    notes: list[str] = []
    files = expand_inputs(inputs, recursive, out=out, notes=notes, stac_search=stac, asset=asset, trust_vrt=trust_vrt)
    for note in notes:
        progress.note(note)
    try:
        band_list = reader.parse_bands(bands) if bands is None or isinstance(bands, str) else tuple(bands)
        nodata_value = reader.parse_nodata(nodata) if nodata is None or isinstance(nodata, str) else float(nodata)
        stretch_choice = reader.parse_stretch(stretch) if isinstance(stretch, str) else stretch
    except reader.ImageError as exc:
        raise BatchInputError(str(exc)) from None
    failures: list[tuple[Path, str]] = []
    rasters = []
    folders = []
    for f in files:
        try:
            raster = reader.open_raster(f.path, band_list if band_list is not None else f.bands, nodata_value,
                                        trust_vrt=trust_vrt, stretch=False)
            rasters.append(dataclasses.replace(raster, origin=f.origin) if f.origin else raster)
            folders.append(f.folder)
        except reader.ImageError as exc:
            if not continue_on_error:
                raise BatchInputError(str(exc)) from None
            failures.append((f.public, str(exc)))
    rasters = reader.with_stretch(rasters, stretch_choice)  # a batch stretch reads every input (decimated)
    try:
        gis.check(rasters)
    except GisOptionError as exc:
        raise BatchInputError(str(exc)) from None
    check_device(device)
    check_output_folder(out)  # before the model loads: a bad out must not cost the computing
    try:
        from resegzoo.segmenter.core import Segmenter  # torch: only once every check has passed

        seg = Segmenter.from_recipe(recipe, model=model, masks=masks, device=device, architecture=architecture)
    except (ModelLoadError, RegistryError, SchemaError, ValueError, TypeError) as exc:
        raise ModelLoadError(str(exc)) from exc  # the chain keeps the error's kind (the exit status)
    for note in seg.notes + seg.cache_notes:
        progress.note(note)
    spec = SegmenterSpec(recipe, seg.resolved or model, masks, device, architecture)  # actors get the resolved model
    batch = BatchOptions(out=out, probs=probs, nodata=nodata_value, overwrite=overwrite, skip_existing=skip_existing,
                         continue_on_error=continue_on_error, gis=gis, stretch=stretch_record(stretch_choice))
    result = run_batch(seg, vocab, rasters, batch, raster_engine(options, spec), progress, folders)
    result.failures[:0] = failures
    result.inputs = len(files)
    return result


def _with_prompt_pool(recipe: SegmentRecipe, vocab: Vocabulary, prompt_pool: str | None) -> tuple[SegmentRecipe, Vocabulary]:
    """The recipe with ``prompt_pool`` (when given) and the vocabulary expanded by the recipe's pool."""
    import dataclasses

    from resegzoo.prompt_pools import pool_for

    if prompt_pool is not None:
        recipe = dataclasses.replace(recipe, text=dataclasses.replace(recipe.text, prompt_pool=prompt_pool))
    pool, _ = pool_for(recipe.text.prompt_pool)
    return recipe, vocab if pool is None else expand_vocabulary(vocab, pool)
