"""The method seam: what a segmentation method is, what it declares, and the checks made before work.

A method turns a batch of windows and a vocabulary's names into one score map per name (or per
class). Everything around it is shared and method-agnostic (``resegzoo.segmenter.core``): the
resize and window protocol, stitching, names to classes, the background threshold, nodata,
raster blocks, GIS outputs, eval and ablations, ``--engine ray``, ``--precision``, prefetch and
sidecars. Methods are registered through the ``resegzoo_register_methods`` hook as
:class:`MethodSpec` records and chosen by the recipe key ``method:`` or ``--method NAME``.

This module sits below the segmenter: it imports nothing of it (the recipe and the vocabulary
are read by attribute), so methods and the pipeline depend on it, never the other way round.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Optional, Protocol, Sequence, runtime_checkable

from resegzoo.errors import EXIT_USAGE, ResegzooError

#: what a method's window scores are: cosine similarities the pipeline turns into probabilities
#: with softmax(logit_scale x score) (CLIP), or probabilities already (each in 0..1, no softmax;
#: the background threshold is applied to them directly, e.g. SegEarth-OV3's ``prob_thd``)
ScoreKind = Literal["cosine", "probabilities"]
SCORE_KINDS: tuple[str, ...] = ("cosine", "probabilities")

#: the method the recipe's ``method:`` defaults to: the CLIP pipeline (ReSeg-CLIP and the peer CLIP
#: methods, chosen by its settings: resegzoo.methods.clip)
DEFAULT_METHOD = "clip"

#: the mask generator name meaning "no segments"
NO_MASKS = "none"
#: ``masks.generator`` when a recipe does not set it (MaskSettings' default)
DEFAULT_MASKS = "slic"


class MethodError(ResegzooError, ValueError):
    """A method that cannot run as asked: unknown, a wrong combination (a mask generator, a model
    or settings the method does not take), or a method plugin that broke its contract."""

    exit_code = EXIT_USAGE


class ModelSpecError(MethodError):
    """A method's model that cannot be resolved: its exit status is its cause's (a name of the
    wrong kind or no such file: usage, 2; a download that failed: 1)."""

    exit_code = None


class ModelLoadError(ResegzooError, RuntimeError):
    """The model or the mask generator could not be set up (unknown name, missing file, a
    download that failed offline, bad generator settings); the message says which and why."""


@dataclass(frozen=True)
class MethodContext:
    """Everything a method's factory is given to build the method once (per process, per actor)."""

    #: the whole recipe (``resegzoo.segmenter.recipe.SegmentRecipe``): the shared inference settings
    #: (a method's own are :attr:`settings`)
    recipe: Any
    #: the model spec as given (``--model`` or the recipe's ``model:``; for messages and sidecars); None
    #: for a method that needs none. Build from :attr:`resolved`, never by reading this string again
    model: Optional[str]
    #: ``method.settings`` parsed into the spec's ``settings`` dataclass (a dict when it has none)
    settings: Any
    device: str = "cpu"
    #: the recipe's ``inference.precision`` (fp32, bf16, fp16): autocast for the method's image model
    precision: str = "fp32"
    #: the recipe's ``inference.batch_size``: how many windows one ``window_scores`` call gets at most
    batch_size: int = 8
    #: the mask generator built for a method with ``masks=True`` (None otherwise) and its name
    mask_generator: Any = None
    masks_name: str = NO_MASKS
    #: open_clip architecture of a bare checkpoint (``--arch``), for CLIP models
    architecture: Optional[str] = None
    #: the model spec resolved once by the API (``resegzoo.weights.zoo.ResolvedModel``: kind, source,
    #: files on disk, content fingerprint, the record); None for a method without a model
    resolved: Any = None


@runtime_checkable
class Method(Protocol):
    """A built method: made once by its spec's factory, then asked for window scores.

    :class:`MethodBase` gives every optional part a default (subclass it); a method may also
    follow this protocol without it. Optional attributes (read with :func:`method_attribute`):

    * ``names_only`` (bool): the method always scores names, never classes: the pipeline asks it
      for per-name rows and takes each class's best name (protocol methods without it: False;
      MethodBase: True).
    * ``window_softmax`` (bool): with ``inference.average: probabilities`` its cosine scores are
      each window's softmax already (else the pipeline takes it).
    * ``notes``, ``cache_notes`` (lists of str): what the user must know about this setup (the
      first kept in the sidecar); ``random_weights`` (bool): the model's weights are random by design.
    * ``mask_levels()`` -> int or None: how many segment levels it reads (0: the mask generator is
      not called; None: unknown, always called). Only for methods whose spec has ``masks=True``.
    * ``facts()`` -> dict: per-image facts for the sidecar's ``info`` (e.g. the template count).
    * ``describe()`` -> dict: JSON-able facts about the built method (its model, its settings)
      for the sidecar; ``--skip-existing`` compares them.
    * ``refine_labels(image, labels, segments)`` -> labels: the whole image's labels refined
      (the clip method's majority vote); ``segments()`` gives the image's segment ids.
    * ``outputs`` (a set of :data:`WINDOW_OUTPUTS` names) and ``window_outputs(windows, vocab,
      per_name, maps, want)`` -> :class:`WindowOutputs`: what the method gives beside its scores
      from the same pass over the windows (e.g. ``features`` for change detection), when a caller
      asks (:func:`window_outputs`). A method without them gives scores only.
    """

    #: the window side the method works at when the recipe sets no ``inference.window``
    window: int
    #: ``inference.window`` must be a multiple of this (a ViT's patch size; 1: any side)
    window_multiple: int
    #: the torch device its scores are on
    device: Any

    def window_scores(self, windows: Any, vocab: Any, per_name: bool, maps: Optional[list[Any]] = None) -> Any:
        """Scores of a batch of windows.

        ``windows``: (B, S, S, 3) uint8 numpy array, RGB, S = the window side. ``vocab``: a
        :class:`resegzoo.vocabulary.Vocabulary` (``vocab.classes``: each class's names, in
        order; the flat name list is :func:`vocabulary_names`). ``per_name``: rows are the names
        (synonyms separate, in vocabulary order), else the classes (see :func:`names_to_classes`).
        ``maps``: each window's (L, S, S) int32 segment ids, for methods that read masks.

        Returns a float torch tensor (B, R, S, S) on ``device``: the spec's score kind
        (cosines, or probabilities in 0..1)."""
        ...


#: the outputs a method may give beside its window scores, from the same pass (``Method.outputs``):
#: ``features``: the image features of each window, (B, C, h, w) at the model's own grid (SAM 3: its
#: stride-14 FPN level), for comparing two dates (``resegzoo.change``); ``instances``: per window, the
#: list of :class:`~resegzoo.objects.instances.Instance` (name, score, presence, mask) it found, which
#: the pipeline makes whole across windows and blocks (``resegzoo segment --objects``)
FEATURES = "features"
INSTANCES = "instances"
WINDOW_OUTPUTS: tuple[str, ...] = (FEATURES, INSTANCES)


@dataclass
class WindowOutputs:
    """What :func:`window_outputs` gives for a batch of B windows: the scores (as
    :meth:`Method.window_scores` returns them) and each optional output asked for (None when not
    asked for)."""

    scores: Any
    #: (B, C, h, w) float tensor: the image features of each window at the model's grid; the caller
    #: upsamples them to the window (bilinear) where it needs them per pixel
    features: Any = None
    #: per window, a list of :class:`~resegzoo.objects.instances.Instance` (B lists)
    instances: Any = None


def method_outputs(method: Any) -> frozenset[str]:
    """The optional outputs ``method`` gives beside its scores (its ``outputs``; none by default)."""
    declared = frozenset(getattr(method, "outputs", ()) or ())
    unknown = sorted(declared - set(WINDOW_OUTPUTS))
    if unknown:
        raise MethodError(f"method {type(method).__name__} declares unknown outputs {unknown}; known: "
                          f"{', '.join(WINDOW_OUTPUTS)}")
    return declared


def window_outputs(method: Any, windows: Any, vocab: Any, per_name: bool, maps: Optional[list[Any]] = None,
                   want: frozenset[str] = frozenset()) -> WindowOutputs:
    """The window scores of ``method`` and the optional outputs in ``want``, from one pass over the
    windows: ``window_outputs`` of a method that declares them, ``window_scores`` when nothing else
    is wanted. A method that does not give what is wanted is a :class:`MethodError`."""
    if not want:
        return WindowOutputs(method.window_scores(windows, vocab, per_name, maps))
    missing = sorted(set(want) - method_outputs(method))
    if missing:
        raise MethodError(f"method {type(method).__name__} gives no {', '.join(missing)} (its outputs: "
                          f"{', '.join(sorted(method_outputs(method))) or 'scores only'})")
    out = method.window_outputs(windows, vocab, per_name, maps, frozenset(want))
    if not isinstance(out, WindowOutputs):
        raise MethodError(f"method {type(method).__name__}'s window_outputs returned {type(out).__name__}, "
                          "not WindowOutputs")
    for name in want:
        if getattr(out, name) is None:
            raise MethodError(f"method {type(method).__name__} was asked for {name} and gave none")
    return out


class MethodBase:
    """The defaults of a built method: subclass it, give :attr:`window` and :meth:`window_scores`,
    and a method plugin is its scores and its settings.

    Everything else is the pipeline's (``resegzoo.segmenter.core``): resize and windows, stitching,
    names to classes, the softmax of cosine scores (per window too, with ``inference.average:
    probabilities``), the background threshold, nodata. By default a method scores the
    vocabulary's names (:attr:`names_only`) and the pipeline takes each class's best name. Override
    any default below; a method written to the :class:`Method` protocol without subclassing this gets
    the same defaults (:func:`method_attribute`), except that it is asked for class rows when the
    recipe wants class probabilities (``names_only`` False, as before this class existed).
    """

    #: the window side the method works at when the recipe sets no ``inference.window``
    window: int
    #: ``inference.window`` must be a multiple of this (a ViT's patch size; 1: any side)
    window_multiple: int = 1
    #: the torch device (or its name) its scores are on
    device: Any = "cpu"
    #: cosine or probabilities (:data:`ScoreKind`); None: what the spec declares
    scores: Optional[str] = None
    #: True: :meth:`window_scores` always gives the names' rows, the pipeline reduces them to
    #: classes; False: it also gives class rows when asked (``per_name`` False)
    names_only: bool = True
    #: its cosine scores are each window's softmax already when ``inference.average`` is
    #: ``probabilities`` (False: the pipeline takes it, the same for every cosine method)
    window_softmax: bool = False
    #: what the user must know about this setup (printed, kept in the sidecar)
    notes: Sequence[str] = ()
    #: printed, not kept in sidecars (e.g. a cache folder it cannot use)
    cache_notes: Sequence[str] = ()
    #: the model's weights are random by design (a demo or test model)
    random_weights: bool = False
    #: what it gives beside its scores through ``window_outputs`` (:data:`WINDOW_OUTPUTS`); none
    outputs: frozenset[str] = frozenset()

    def window_scores(self, windows: Any, vocab: Any, per_name: bool, maps: Optional[list[Any]] = None) -> Any:
        """(B, R, S, S) scores of (B, S, S, 3) uint8 windows (see :meth:`Method.window_scores`)."""
        raise NotImplementedError(f"{type(self).__name__} gives no window_scores")

    def mask_levels(self) -> Optional[int]:
        """How many segment levels it reads (0: the mask generator is not called; None: unknown,
        always called). Only for methods whose spec has ``masks=True``."""
        return None

    def facts(self) -> dict[str, Any]:
        """Per-image facts for the sidecar's ``info``."""
        return {}

    def describe(self) -> dict[str, Any]:
        """JSON-able facts about the built method (its model, its settings) for the sidecar;
        ``--skip-existing`` compares them."""
        return {}

    def refine_labels(self, image: Any, labels: Any, segments: Callable[[], Any]) -> Any:
        """The (H, W) int32 labels of the whole ``image``, refined (e.g. a majority vote inside
        segments); ``segments()`` gives the image's (L, H, W) segment ids from the mask generator,
        made only when called (None: there is none). Default: the labels as they are."""
        return labels


#: what a method written to the protocol (not a MethodBase) that does not say ``names_only`` does:
#: it gives class rows when asked, as every method did before MethodBase
_PROTOCOL_DEFAULTS: dict[str, Any] = {"names_only": False}


def method_attribute(method: Any, name: str) -> Any:
    """``method.<name>``, or the default :class:`MethodBase` gives (bound to ``method``, for methods
    and properties) when a method written to the :class:`Method` protocol does not have it."""
    try:
        return getattr(method, name)
    except AttributeError:
        pass
    if name in _PROTOCOL_DEFAULTS:
        return _PROTOCOL_DEFAULTS[name]
    default = getattr(MethodBase, name)
    return default.__get__(method) if callable(default) else default


@dataclass(frozen=True)
class MethodSpec:
    """A named method; ``factory(context: MethodContext)`` builds a :class:`Method`.

    What it declares is checked before any model loads (:func:`check_method`), so a wrong
    combination is a one-line error, not a failure after minutes of work."""

    name: str
    factory: Callable[[MethodContext], Method]
    description: str = ""
    #: the kind of model ``--model`` names for it: ``clip`` (an open_clip model), ``sam3``, a plugin's
    #: own kind (`resegzoo list models --kind K`), or None: it takes no model. The API resolves the
    #: spec as this kind once, before any model loads (a model of another kind is a one-line error),
    #: and hands the method ``MethodContext.resolved``
    model: Optional[str] = "clip"
    #: whether it reads a mask generator's segments (``--masks``); False: giving one is an error
    masks: bool = False
    #: what its scores are (see :data:`ScoreKind`)
    scores: ScoreKind = "probabilities"
    #: a dataclass for the recipe's ``method.settings`` (strict: unknown keys are errors naming
    #: the key); None: the method takes no settings
    settings: Optional[type] = None
    #: ``check_model(spec)``: raise ValueError or LookupError when ``spec`` is not a model of this
    #: method's kind (checked before anything loads); for a plugin's kind resegzoo does not fetch
    #: (no record of it): resegzoo's own kinds are checked by the model route
    check_model: Optional[Callable[[str], None]] = None
    #: ``fingerprint(spec)`` -> JSON-able dict identifying the model's weights by content, for
    #: eval's run key; None: the model route's (files and sha256 of the spec's checkpoint or folder)
    fingerprint: Optional[Callable[[str], dict[str, Any]]] = None
    #: ``check(settings, masks)``: the method's own checks of its parsed settings against the mask
    #: generator asked for (its name; ``none``: no segments), made by :func:`check_method` before
    #: any model loads; raise ValueError (or LookupError, OSError) saying what to change. None: none
    check: Optional[Callable[[Any, str], None]] = None
    #: what the built method gives beside its scores (:data:`WINDOW_OUTPUTS`: ``features``), declared
    #: so a command that needs one (``resegzoo change``) refuses other methods before a model loads;
    #: the built method gives them through ``window_outputs`` (:func:`window_outputs`)
    outputs: frozenset[str] = frozenset()
    #: ``from_model(model, context)``: the method around a model the caller built, for the Python
    #: API's ``Segmenter(model, mask_generator, recipe)`` (the default method's: a DenseEncoder);
    #: ``context.model`` is None. None: the method is built by its factory only
    from_model: Optional[Callable[[Any, MethodContext], Method]] = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.outputs) - set(WINDOW_OUTPUTS))
        if unknown:
            raise ValueError(f"method {self.name!r}: unknown outputs {unknown}; known: {', '.join(WINDOW_OUTPUTS)}")
        object.__setattr__(self, "outputs", frozenset(self.outputs))
        if self.scores not in SCORE_KINDS:
            raise ValueError(f"method {self.name!r}: scores must be one of {', '.join(SCORE_KINDS)}, "
                             f"got {self.scores!r}")
        if self.settings is not None and not dataclasses.is_dataclass(self.settings):
            raise ValueError(f"method {self.name!r}: settings must be a dataclass (or None)")

    @property
    def needs(self) -> dict[str, Any]:
        """What the method needs, in words a listing shows."""
        return {"model": self.model, "masks": self.masks}

    def check_objects(self) -> None:
        """MethodError in one line when objects are asked of a method that gives no instances."""
        if INSTANCES not in self.outputs:
            from resegzoo.plugins.registry import get_registry

            methods = get_registry().methods
            giving = [name for name in methods if INSTANCES in methods.get(name).outputs]
            raise MethodError(f"--objects: method {self.name!r} gives no objects (instances), only class scores; "
                              f"use a method that does ({', '.join(giving) or 'none installed'}; "
                              "`resegzoo list methods`)")


@dataclass(frozen=True)
class MethodChoice:
    """The outcome of :func:`check_method`: the recipe to run (its ``method`` set, its masks set
    to ``none`` for a method that reads none), the spec and the parsed settings."""

    recipe: Any
    spec: MethodSpec
    settings: Any
    #: the model spec the method gets (None for a method without a model)
    model: Optional[str]
    #: the mask generator to build (``none`` for a method without masks)
    masks: str


def method_spec(name: str) -> MethodSpec:
    """The registered method ``name`` (MethodError naming the known ones otherwise)."""
    from resegzoo.plugins.registry import RegistryError, get_registry

    try:
        return get_registry().methods.get(name)
    except RegistryError as exc:
        raise MethodError(f"{exc}; see `resegzoo list methods`") from None


def parse_settings(spec: MethodSpec, settings: Mapping[str, Any]) -> Any:
    """``method.settings`` checked against the spec's settings dataclass (SchemaError names the key)."""
    from resegzoo.schema import from_mapping

    if spec.settings is None:
        if settings:
            raise MethodError(f"method {spec.name!r} takes no settings, but method.settings gives "
                              f"{', '.join(map(str, settings))}")
        return {}
    return from_mapping(spec.settings, dict(settings), where="method.settings")


def check_method(recipe: Any, method: str | None = None, model: str | None = None,
                 masks: str | None = None) -> MethodChoice:
    """Check, before any model loads, that the method (``method`` or the recipe's) can run with the
    model and mask generator asked for (``model``/``masks`` or the recipe's).

    A method with ``masks=False`` and a mask generator asked for (``--masks``, ``--sam-checkpoint``
    or a recipe's ``masks:``), a method without a model and a ``--model``, a method with a model
    and none given, settings it does not take: each is a :class:`MethodError` with one line that
    says what to change. ``method`` other than the recipe's replaces it and drops the recipe's
    ``method.settings`` (they belong to the recipe's method), as ``--masks`` does for masks."""
    chosen = recipe.method
    if method is not None and method != chosen.name:
        chosen = dataclasses.replace(chosen, name=method, settings={})
    spec = method_spec(chosen.name)
    settings = parse_settings(spec, chosen.settings)
    recipe = dataclasses.replace(recipe, method=chosen)
    model = model or recipe.model
    if spec.model is None:
        if model:
            raise MethodError(f"method {spec.name!r} takes no model, but {model!r} was given; "
                              "remove --model (or the recipe's model:)")
        model = None
    elif not model:
        raise MethodError(f"no model given: method {spec.name!r} needs a {spec.model} model; pass --model "
                          f"(see `resegzoo list models --kind {spec.model}`), local-dir:DIR or hf-hub:ORG/REPO, or "
                          "set `model:` in the recipe")
    elif spec.check_model is not None and not is_model_name(model):  # a record's name: the route checks it
        try:
            spec.check_model(model)
        except (ValueError, LookupError) as exc:
            raise MethodError(f"method {spec.name!r} needs a {spec.model} model: {exc}") from None
    masks_name = masks or recipe.masks.generator
    if not spec.masks:
        asked = masks not in (None, NO_MASKS) or recipe.masks.generator not in (DEFAULT_MASKS, NO_MASKS) \
            or (recipe.masks.generator == DEFAULT_MASKS and (recipe.masks.settings or recipe.masks.stated))
        if asked:
            raise MethodError(f"method {spec.name!r} reads no segments, so mask generator {masks_name!r} cannot "
                              "be used with it; remove --masks/--sam-checkpoint (or the recipe's masks:)")
        masks_name = NO_MASKS
        recipe = dataclasses.replace(recipe, masks=dataclasses.replace(recipe.masks, generator=NO_MASKS, settings={}))
    if spec.check is not None:
        try:
            spec.check(settings, masks_name)
        except (ValueError, LookupError, OSError) as exc:
            raise MethodError(f"method {spec.name!r}: {exc}") from None
    return MethodChoice(recipe=recipe, spec=spec, settings=settings, model=model, masks=masks_name)


def is_model_name(spec: str) -> bool:
    """Whether ``spec`` is the name of a registered model record (of any kind)."""
    from resegzoo.plugins.registry import get_registry

    return spec in get_registry().models


def resolve_method_model(spec: MethodSpec, model: Optional[str], architecture: Optional[str] = None,
                         progress: bool = True) -> Any:
    """The method's model spec resolved ONCE into a ``resegzoo.weights.zoo.ResolvedModel`` (kind,
    source, files on disk, content fingerprint, the record), before any model loads: what
    ``MethodContext.resolved``, eval run keys, the text cache, sidecars and Ray actors receive.
    None for a method without a model. A spec of another kind than the method's (a CLIP model for
    segearth-ov3, SAM 3 for clip), unknown or missing is a :class:`MethodError` in one line.

    A method that checks its specs itself (``check_model``, a plugin's kind) gets any spec that is no
    registered model's name as it is, fingerprinted by the spec's ``fingerprint``; the names of
    records (of its kind) take the model route like every other."""
    if spec.model is None or not model:
        return None
    from resegzoo.errors import ResegzooError
    from resegzoo.weights.loading import resolve_model
    from resegzoo.weights.zoo import ResolvedModel

    if spec.check_model is not None and not is_model_name(model):
        # a plugin's kind with specs of its own (check_model): the method reads them itself
        try:
            fingerprint = spec.fingerprint(model) if spec.fingerprint is not None else {"spec": model}
        except (LookupError, OSError, ValueError) as exc:
            raise ModelSpecError(f"cannot load model {model!r}: {exc}") from exc
        return ResolvedModel(model, spec.model, None, None, fingerprint)
    try:
        resolved = resolve_model(model, spec.model, architecture=architecture, progress=progress)
        if spec.fingerprint is not None:
            resolved = dataclasses.replace(resolved, fingerprint=spec.fingerprint(model))
    except (LookupError, OSError, ValueError, ResegzooError) as exc:
        detail = str(exc)
        detail = detail[len(model) + 2:] if detail.startswith(f"{model}: ") else detail  # named once
        raise ModelSpecError(f"cannot load model {model!r}: {detail}") from exc
    return resolved


def vocabulary_names(vocab: Any) -> list[str]:
    """Every name of a vocabulary, class by class (the rows of per-name scores)."""
    return [name for names in vocab.classes for name in names]


def class_of_names(vocab: Any) -> list[int]:
    """The class index of each of :func:`vocabulary_names`."""
    return [i for i, names in enumerate(vocab.classes) for _ in names]


def names_to_classes(values: Any, class_of_name: Any, num_classes: int, dim: int = 0) -> Any:
    """Per-name values (N along ``dim``) -> per-class values (K): the max over each class's names.

    ``class_of_name``: (N,) class index per name (a tensor or a list, e.g. :func:`class_of_names`)."""
    import torch

    if len(class_of_name) == num_classes and all(int(c) == i for i, c in enumerate(class_of_name)):
        return values  # one name per class, in order: the classes are the names
    moved = values.movedim(dim, -1)
    index = torch.as_tensor(class_of_name, device=moved.device).expand_as(moved)
    out = moved.new_full((*moved.shape[:-1], num_classes), float("-inf"))
    return out.scatter_reduce(-1, index, moved, reduce="amax", include_self=True).movedim(-1, dim)


def check_scores(name: str, scores: Any, shape: Sequence[int]) -> Any:
    """A method's window scores, checked: a plugin that breaks the contract is named, not a
    shape error deep in the stitcher."""
    import torch

    if not isinstance(scores, torch.Tensor):
        raise MethodError(f"method {name!r} returned {type(scores).__name__} window scores; a method returns a "
                          "torch tensor (B, R, S, S)")
    if tuple(scores.shape) != tuple(shape):
        raise MethodError(f"method {name!r} returned window scores of shape {tuple(scores.shape)}, expected "
                          f"{tuple(shape)} (windows, rows, window side, window side)")
    return scores


#: side of the test image a generator that does not declare ``level_count`` is probed with
PROBE_SIDE = 32


def mask_level_count(generator: Any, name: str) -> int:
    """How many segment levels ``generator`` returns: its ``level_count`` attribute, else the
    number of maps it gives for a small test image (asked once, at setup, never per image)."""
    import numpy as np

    declared = getattr(generator, "level_count", None)
    if declared is not None:
        return int(declared)
    ramp = np.linspace(0, 255, PROBE_SIDE, dtype=np.float32)
    probe = np.stack([ramp[None, :].repeat(PROBE_SIDE, 0), ramp[:, None].repeat(PROBE_SIDE, 1),
                      np.full((PROBE_SIDE, PROBE_SIDE), 128, np.float32)], axis=-1).astype(np.uint8)
    try:
        maps = np.asarray(generator(probe))
    except Exception as exc:  # a plugin's generator: any failure here is a setup error to report
        raise ModelLoadError(f"mask generator {name!r} failed on a {PROBE_SIDE}x{PROBE_SIDE} test image "
                             f"({type(exc).__name__}: {exc}); it cannot be used") from exc
    if maps.ndim != 3:
        raise ModelLoadError(f"mask generator {name!r} returned shape {maps.shape} for a {PROBE_SIDE}x{PROBE_SIDE} "
                             "image; a generator returns (levels, H, W) segment ids")
    return int(maps.shape[0])


def upsample_patch_logits(logits: Any, size: tuple[int, int]) -> Any:
    """(B, K, gh, gw) patch logits -> (B, K, h, w), bilinear as in the reference code."""
    import torch.nn.functional as F

    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
