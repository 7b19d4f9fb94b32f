"""``resegzoo segment``'s options as one checked object, from the CLI through the API to the engines.

:meth:`SegmentOptions.check` is the one checker: the CLI calls it with what its flags gave,
:func:`resegzoo.api.segment_files` with its keyword arguments. It checks every argument's type
(:class:`OptionTypeError`, a TypeError), every value (:class:`OptionValueError`, a ValueError), the
classes, the recipe, the method with its model and mask generator, the device, the engine and the
output folder (a probe file), before any model loads and before any input is read; the inputs are
opened next (:func:`resegzoo.batch.units.open_inputs`), still before the model. Nothing after it
checks again.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resegzoo.batch.errors import BatchInputError
from resegzoo.engines.options import EngineError, EngineOptions
from resegzoo.outputs.gis.products import GisOutputs
from resegzoo.raster.stretch import STRETCH_SCOPES, Stretch
from resegzoo.runtime.preflight import check_output_folder
from resegzoo.segmenter.spec import SegmenterSpec

#: the formats of ``STEM.probs.tif`` (``--probs``)
PROBS_FORMATS = ("uint8", "float16")
#: the formats of the GIS vectors (``--vector-format``)
VECTOR_FORMATS = ("gpkg", "geojson")


class OptionTypeError(BatchInputError, TypeError):
    """An argument of the wrong type (``segment_files(classes=None)``): says which and what to give."""


class OptionValueError(BatchInputError, ValueError):
    """An argument of the right type and a wrong value (``probs="float64"``): says which and what to give."""


@dataclass(frozen=True)
class SegmentOptions:
    """Everything ``resegzoo segment`` was asked, checked (make it with :meth:`check`)."""

    #: files, folders and glob patterns, as given
    inputs: tuple[str, ...]
    #: the classes (a :class:`resegzoo.vocabulary.Vocabulary`)
    classes: Any
    out: Path
    #: the recipe, model, mask generator, device and architecture, checked (the model is the spec
    #: the user gave; the model route's resolved model takes its place once it carries one)
    segmenter: SegmenterSpec
    #: band numbers (R, G, B) or (grey,), counting from 1; None: the file's first three
    bands: tuple[int, ...] | None = None
    #: the nodata value given for every input; None: each file's own masks
    nodata: float | None = None
    #: ``batch``, ``file`` or given values
    stretch: str | Stretch = "batch"
    #: also write STEM.probs.tif: "uint8" or "float16"
    probs: str | None = None
    recursive: bool = False
    overwrite: bool = False
    skip_existing: bool = False
    continue_on_error: bool = False
    trust_vrt: bool = False
    gis: GisOutputs = field(default_factory=GisOutputs)
    engine: EngineOptions = field(default_factory=EngineOptions)
    #: a STAC API search whose items are inputs too (a :class:`resegzoo.batch.stac.StacSearch`)
    stac: Any = None
    #: the STAC asset to read (None: the visual/RGB one)
    asset: str | None = None

    @property
    def vocab(self) -> Any:
        return self.classes

    @property
    def recipe(self) -> Any:
        return self.segmenter.recipe

    @classmethod
    def check(cls, inputs: Any, classes: Any, out: Any = "segment-out", *, recipe: Any = None, model: Any = None,
              masks: Any = None, method: Any = None, device: Any = "cpu", architecture: Any = None, bands: Any = None,
              nodata: Any = None, probs: Any = None, recursive: Any = False, overwrite: Any = False,
              skip_existing: Any = False, continue_on_error: Any = False, trust_vrt: Any = False,
              stretch: Any = "batch", gis: Any = None, engine: Any = "local", prompt_pool: Any = None,
              stac: Any = None, asset: Any = None) -> "SegmentOptions":
        """Check every argument (the keywords of :func:`resegzoo.api.segment_files`) and return the
        options; :class:`OptionTypeError` / :class:`OptionValueError` (both BatchInputError) name the
        argument. ``inputs``: one path or pattern, or a list of them. ``classes``: text
        (``"building; road, street"``) or a Vocabulary. ``recipe``: a SegmentRecipe, a recipe file or
        a shipped recipe's name, or None (the default). ``bands``: ``"4,3,2"`` or a sequence of band
        numbers. ``stretch``: ``batch``, ``file``, ``"LOW:HIGH"`` text or a Stretch. ``engine``:
        ``"local"``, ``"ray"`` or an EngineOptions. ``prompt_pool`` (the recipe's ``text.prompt_pool``
        when None) expands the classes here, once. ``stac``: a StacSearch; ``asset``: a STAC asset's
        name."""
        for name, value in (("recursive", recursive), ("overwrite", overwrite), ("skip_existing", skip_existing),
                            ("continue_on_error", continue_on_error), ("trust_vrt", trust_vrt)):
            if not isinstance(value, bool):
                raise OptionTypeError(f"{name}={value!r}: give True or False")
        if overwrite and skip_existing:
            raise OptionValueError("overwrite and skip_existing contradict each other (--overwrite replaces "
                                   "finished results, --skip-existing keeps them): give one")
        engine_options = _engine(engine)
        stac = _stac(stac)
        asset = _optional_text("asset", asset, "a STAC asset's name")
        recipe, vocab = _with_prompt_pool(_recipe(recipe), _vocabulary(classes),
                                          _optional_text("prompt_pool", prompt_pool, "a prompt pool's name or file"))
        gis = _gis(gis)
        spec = _segmenter(recipe, model, masks, method, device, architecture, objects=gis.objects)
        _label_count(vocab, spec.recipe)
        options = cls(inputs=_inputs(inputs, stac is not None), classes=vocab, out=_path("out", out), segmenter=spec,
                      bands=_bands(bands), nodata=_nodata(nodata), stretch=_stretch(stretch), probs=_probs(probs),
                      recursive=recursive, overwrite=overwrite, skip_existing=skip_existing,
                      continue_on_error=continue_on_error, trust_vrt=trust_vrt, gis=gis, engine=engine_options,
                      stac=stac, asset=asset)
        check_output_folder(options.out)  # a bad out must not cost the computing
        return options


# -- one check per argument --------------------------------------------------------------------
def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes)


def _path(name: str, value: Any) -> Path:
    if not _is_path(value):
        raise OptionTypeError(f"{name}={value!r}: give a folder path (text or pathlib.Path)")
    if not str(value).strip():
        raise OptionValueError(f"{name}: an empty path; give a folder")
    return Path(value)


def _optional_text(name: str, value: Any, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise OptionTypeError(f"{name}={value!r}: give {what} as text, or None for the recipe's")
    return value


def _inputs(inputs: Any, searched: bool = False) -> tuple[str, ...]:
    """One path, URL or pattern (text or a Path), or a list of them: never a string read letter by
    letter; none only with a STAC search (``searched``)."""
    from collections.abc import Iterable, Mapping

    if _is_path(inputs):
        inputs = [inputs]
    if not isinstance(inputs, Iterable) or isinstance(inputs, (bytes, Mapping)):
        raise OptionTypeError(f"inputs={inputs!r}: give a file, folder or glob pattern, or a list of them")
    items = list(inputs)
    bad = next((item for item in items if not _is_path(item)), None)
    if bad is not None:
        raise OptionTypeError(f"inputs: {bad!r} is not a path; give files, folders or glob patterns as text "
                              "or pathlib.Path")
    if not items and not searched:
        raise OptionValueError("inputs: no input given; give at least one file, folder, glob pattern, URL or "
                               "STAC item (or a STAC search)")
    return tuple(os.fspath(item) for item in items)


def _vocabulary(classes: Any) -> Any:
    from resegzoo.vocabulary import Vocabulary, VocabularyError

    if isinstance(classes, Vocabulary):
        return classes
    if not isinstance(classes, str):
        raise OptionTypeError(f"classes={classes!r}: give the classes as text, ';' between classes and ',' "
                              "between synonyms (\"building; road, street; tree\"), or a Vocabulary")
    try:
        return Vocabulary.parse(classes)
    except VocabularyError as exc:
        raise OptionValueError(str(exc)) from None


def _recipe(recipe: Any) -> Any:
    from resegzoo.schema import SchemaError
    from resegzoo.segmenter.recipe import SegmentRecipe, load_recipe, resolve_recipe

    if recipe is not None and not isinstance(recipe, SegmentRecipe) and not _is_path(recipe):
        raise OptionTypeError(f"recipe={recipe!r}: give a SegmentRecipe, a recipe file or a shipped recipe's "
                              "name, or None for the default")
    if isinstance(recipe, SegmentRecipe):
        return recipe
    try:
        return load_recipe(None if recipe is None else resolve_recipe(recipe))
    except SchemaError as exc:
        raise OptionValueError(f"bad recipe: {exc}") from None


def _with_prompt_pool(recipe: Any, vocab: Any, prompt_pool: str | None) -> tuple[Any, Any]:
    """The recipe with ``prompt_pool`` (when given) and the classes expanded by the recipe's pool."""
    from resegzoo.prompt_pools import PromptPoolError, expand_vocabulary, pool_for
    from resegzoo.vocabulary import VocabularyError

    if prompt_pool is not None:
        recipe = dataclasses.replace(recipe, text=dataclasses.replace(recipe.text, prompt_pool=prompt_pool))
    try:
        pool, _ = pool_for(recipe.text.prompt_pool)
        return recipe, vocab if pool is None else expand_vocabulary(vocab, pool)
    except (PromptPoolError, VocabularyError) as exc:
        raise OptionValueError(str(exc)) from None


def _stac(stac: Any) -> Any:
    from resegzoo.batch.stac import StacSearch

    if stac is not None and not isinstance(stac, StacSearch):
        raise OptionTypeError(f"stac={stac!r}: give a resegzoo.batch.stac.StacSearch, or None")
    return stac


def _segmenter(recipe: Any, model: Any, masks: Any, method: Any, device: Any, architecture: Any,
               objects: bool = False) -> SegmenterSpec:
    """The checked segmenter spec; ``objects`` (``--objects``): the method must give instances."""
    from resegzoo.methods.base import MethodError, method_spec

    model = _optional_text("model", model, "a model spec (a zoo name, hf-hub:ORG/REPO, local-dir:DIR, a file)")
    masks = _optional_text("masks", masks, "a mask generator's name")
    method = _optional_text("method", method, "a method's name")
    architecture = _optional_text("architecture", architecture, "an open_clip architecture")
    if not isinstance(device, str):
        raise OptionTypeError(f"device={device!r}: give a torch device as text, e.g. 'cpu', 'cuda' or 'cuda:1'")
    try:
        spec = SegmenterSpec.check(recipe, model=model, masks=masks, method=method, device=device,
                                   architecture=architecture)
        if objects:
            method_spec(spec.recipe.method.name).check_objects()
        return spec
    except MethodError as exc:  # a missing download stays a failure (exit 1); the rest are usage errors
        from resegzoo.errors import same_kind

        raise same_kind(OptionValueError(str(exc)), exc) from None


def _label_count(vocab: Any, recipe: Any) -> None:
    from resegzoo.batch.job import check_label_count
    from resegzoo.raster.errors import ImageError

    try:
        check_label_count(len(vocab), recipe.inference.background_threshold is not None)
    except ImageError as exc:
        raise OptionValueError(str(exc)) from None


def _engine(engine: Any) -> EngineOptions:
    if isinstance(engine, EngineOptions):
        options = engine
    elif isinstance(engine, str):
        options = EngineOptions(engine)
    else:
        raise OptionTypeError(f"engine={engine!r}: give 'local', 'ray' or a resegzoo.engines.EngineOptions")
    try:
        return options.check()
    except EngineError as exc:
        raise OptionValueError(str(exc)) from None


def _bands(bands: Any) -> tuple[int, ...] | None:
    from resegzoo.raster.errors import ImageError
    from resegzoo.raster.options import parse_bands

    if bands is None or isinstance(bands, str):
        try:
            return parse_bands(bands)
        except ImageError as exc:
            raise OptionValueError(str(exc)) from None
    if not isinstance(bands, (list, tuple)) or not all(isinstance(b, int) and not isinstance(b, bool) for b in bands):
        raise OptionTypeError(f"bands={bands!r}: give band numbers as text (\"4,3,2\") or a sequence of whole "
                              "numbers ((4, 3, 2), or (1,) for grey)")
    if len(bands) not in (1, 3) or any(b < 1 for b in bands):
        raise OptionValueError(f"bands={tuple(bands)!r}: give 3 band numbers (R,G,B) or 1 (grey), counting from 1")
    return tuple(bands)


def _nodata(nodata: Any) -> float | None:
    from resegzoo.raster.errors import ImageError
    from resegzoo.raster.options import parse_nodata

    if nodata is None or isinstance(nodata, str):
        try:
            return parse_nodata(nodata)
        except ImageError as exc:
            raise OptionValueError(str(exc)) from None
    if isinstance(nodata, bool) or not isinstance(nodata, (int, float)):
        raise OptionTypeError(f"nodata={nodata!r}: give a number (e.g. 0, -9999 or float('nan')), or None for "
                              "each file's own")
    return float(nodata)


def _stretch(stretch: Any) -> str | Stretch:
    from resegzoo.raster.errors import ImageError
    from resegzoo.raster.options import parse_stretch

    if isinstance(stretch, Stretch):
        return stretch
    if not isinstance(stretch, str):
        raise OptionTypeError(f"stretch={stretch!r}: give {', '.join(STRETCH_SCOPES)}, LOW:HIGH text or a "
                              "resegzoo.api.Stretch")
    try:
        return parse_stretch(stretch)
    except ImageError as exc:
        raise OptionValueError(str(exc)) from None


def _probs(probs: Any) -> str | None:
    if probs is None:
        return None
    if not isinstance(probs, str):
        raise OptionTypeError(f"probs={probs!r}: give {' or '.join(PROBS_FORMATS)}, or None for no probabilities")
    if probs not in PROBS_FORMATS:
        raise OptionValueError(f"probs={probs!r}: STEM.probs.tif is written as {' or '.join(PROBS_FORMATS)}")
    return probs


def _gis(gis: Any) -> GisOutputs:
    if gis is None:
        return GisOutputs()
    if not isinstance(gis, GisOutputs):
        raise OptionTypeError(f"gis={gis!r}: give a resegzoo.api.GisOutputs, or None for none")
    for name in ("cog", "vector", "objects", "objects_raster"):
        if not isinstance(getattr(gis, name), bool):
            raise OptionTypeError(f"gis.{name}={getattr(gis, name)!r}: give True or False")
    if gis.vector_format not in VECTOR_FORMATS:
        raise OptionValueError(f"gis.vector_format={gis.vector_format!r}: give {' or '.join(VECTOR_FORMATS)}")
    for name in ("simplify", "min_area", "min_object_area", "max_object_area"):
        value = getattr(gis, name)
        if value is None and name == "max_object_area":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise OptionTypeError(f"gis.{name}={value!r}: give a number" + (", or None for no limit"
                                                                          if name == "max_object_area" else ""))
        if not value >= 0 or value == float("inf"):
            raise OptionValueError(f"gis.{name}={value!r}: give a finite number, 0 or more")
    return gis

