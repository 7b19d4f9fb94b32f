"""The segmentation recipe: every setting of ``resegzoo segment``, with METHOD.md's defaults.

A recipe is YAML with the sections below (all optional); unknown keys are errors that name the
key. ``registry/recipes/segment-default.yaml`` is the fully commented default.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from resegzoo.methods.base import DEFAULT_METHOD
from resegzoo.methods.clip import NAME as CLIP
from resegzoo.methods.clip.settings import (
    OLD_FORM, ExtrasSettings, ScheduleSettings, parse_settings as parse_clip_settings,
    settings_of as clip_settings_of)
from resegzoo.schema import MAX_IMAGE_SIDE, SchemaError, check_limits, from_mapping, limit, load_yaml

# Limits of the settings that size memory (checked with the rest, before any work; see
# resegzoo.schema.limit): far above what any model or machine uses today, far below what would
# ask for the whole machine (a 100,000 px window pads a 64 x 64 image to 28 GiB).
#: sliding-window side and stride, px (CLIP: 224-448, SAM 3: 1008)
MAX_WINDOW = MAX_IMAGE_SIDE
#: resize targets (short_side, fit_scale), px
MAX_RESIZE = 8192
#: block side (tile_size) and the context read around it (tile_overlap), px
MAX_TILE_SIZE, MAX_TILE_OVERLAP = 8192, 4096
#: windows per forward pass, and bands of windows prepared ahead
MAX_BATCH, MAX_PREFETCH = 1024, 16
#: softmax(logit_scale x cosine): a scale past float32's range makes NaN probabilities (CLIP's own is 100)
MAX_LOGIT_SCALE = 1000


@dataclass
class MaskSettings:
    #: mask generator name (``resegzoo list masks``): slic, felzenszwalb, sam, none, or a plugin's.
    generator: str = "slic"
    #: passed as keyword arguments to the generator's factory (each generator validates its own).
    settings: dict[str, Any] = field(default_factory=dict)
    #: whether the recipe (a file, its ``base:``, or an override) named the generator, as opposed
    #: to the default: a method that reads no segments refuses a named one (as ``--masks``). Set by
    #: :func:`load_recipe`; not a recipe key, not recorded (:meth:`SegmentRecipe.to_dict`).
    stated: bool = field(default=False, init=False, repr=False, compare=False)


@dataclass
class TextSettings:
    """Text settings every method shares (the clip method's prompt templates are its own:
    ``method.settings.templates``; ``text.templates`` in the recipe's old form)."""

    #: several prompts per class, for every method (resegzoo/prompt_pools.py): ``none``
    #: (off), ``dataset`` (eval: the dataset's own pool, e.g. ProC-SAM3's; elsewhere, and for
    #: datasets without one, the shipped union), ``remote-sensing`` (the shipped union of the
    #: benchmark datasets' pools) or a pool file (one class a line: its name, then its prompts)
    prompt_pool: str = "none"


@dataclass
class InferenceSettings:
    #: how the image is resized first: ``short-side`` (its short side becomes ``short_side``) or
    #: ``fit`` (mmcv's keep-ratio rule: scaled to fit inside ``fit_scale`` = [long, short], sides
    #: rounded as int(x * f + 0.5); the peers' protocol).
    resize: Literal["short-side", "fit"] = "short-side"
    #: resize the image so its short side has this length first (None: keep the size).
    short_side: Optional[int] = field(default=None, metadata=limit(MAX_RESIZE))
    #: [long, short] for ``resize: fit`` (None: keep the size).
    fit_scale: Optional[list[int]] = field(default=None, metadata=limit(MAX_RESIZE))
    #: ``antialias`` (torch bilinear, antialiased when shrinking) or ``opencv-bilinear``
    #: (cv2.resize INTER_LINEAR, what mmcv does: no antialiasing).
    resize_filter: Literal["antialias", "opencv-bilinear"] = "antialias"
    #: sliding-window side in pixels (None: the model's native image size).
    window: Optional[int] = field(default=None, metadata=limit(MAX_WINDOW))
    #: step between windows (None: half the window).
    stride: Optional[int] = field(default=None, metadata=limit(MAX_WINDOW))
    #: ``pad`` (pad the image at the bottom/right so windows at multiples of the stride cover
    #: it) or ``shift`` (mmseg's slide inference: the last window moved back to end at the border).
    #: ``image``: one window, the whole image whatever its shape (for methods that resize each
    #: window to their own square input: SegEarth-OV3 without sliding).
    window_placement: Literal["pad", "shift", "image"] = "pad"
    #: padding fill: ``edge`` (repeat border pixels) or ``zero`` (black, the reference code).
    pad_mode: Literal["edge", "zero"] = "edge"
    #: what overlapping windows average: ``logits`` (cosines, the peers) or ``probabilities``
    #: (each window's softmax, the official ReSeg-CLIP code).
    average: Literal["logits", "probabilities"] = "logits"
    #: ``class``: softmax over classes of each class's best name cosine; ``name``: softmax over
    #: all names (synonyms are separate rows), then the max per class (SegEarth-OV).
    probabilities: Literal["class", "name"] = "class"
    #: windows encoded per forward pass.
    batch_size: int = field(default=8, metadata=limit(MAX_BATCH))
    #: probabilities are softmax(logit_scale x cosine).
    logit_scale: float = field(default=50.0, metadata=limit(MAX_LOGIT_SCALE))
    #: pixels whose top probability is below this become the extra class ``background``
    #: (None: off).
    background_threshold: Optional[float] = None
    #: GeoTIFFs larger than this many pixels per side are read and written tile by tile.
    tile_size: int = field(default=2048, metadata=limit(MAX_TILE_SIZE))
    #: pixels of context read around each tile (at least one window is used).
    tile_overlap: int = field(default=128, metadata=limit(MAX_TILE_OVERLAP))
    #: image encoders (CLIP's image tower, SAM) in fp32, or under autocast in bf16 / fp16 (CUDA
    #: only); text embeddings and the softmax stay fp32. See resegzoo.runtime.precision.
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    #: the next encoder batch's segments (and the next image or block) are prepared in a background
    #: thread while the encoder runs; this many batches are made ahead (0: everything in turn).
    prefetch: int = field(default=1, metadata=limit(MAX_PREFETCH))


@dataclass
class MethodSettings:
    """Which method scores the windows (``resegzoo list methods``); ``method: NAME`` in YAML is
    short for ``method: {name: NAME}``."""

    #: ``clip``: the CLIP pipeline (ReSeg-CLIP's segment-masked attention and the peer CLIP
    #: methods, chosen by its settings: schedule, text, readout, extras); or another registered method.
    name: str = DEFAULT_METHOD
    #: the method's own settings, checked by the method (``resegzoo list methods --json``); the clip
    #: method's (:class:`resegzoo.methods.clip.settings.ClipSettings`) are checked with the recipe and
    #: written out whole, defaults included, as the other sections are.
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class SegmentRecipe:
    #: model spec (registry name, checkpoint path, ``local-dir:``, ``hf-hub:``); None: give
    #: ``--model`` / ``model=``.
    model: Optional[str] = None
    method: MethodSettings = field(default_factory=MethodSettings)
    masks: MaskSettings = field(default_factory=MaskSettings)
    text: TextSettings = field(default_factory=TextSettings)
    inference: InferenceSettings = field(default_factory=InferenceSettings)

    def __post_init__(self) -> None:
        inf = self.inference
        check_limits(inf, "inference.")
        for name in ("short_side", "window", "stride"):
            value = getattr(inf, name)
            if value is not None and value < 2:
                raise ValueError(f"inference.{name} must be at least 2, got {value}")
        if inf.fit_scale is not None and (len(inf.fit_scale) != 2 or min(inf.fit_scale) < 2):
            raise ValueError(f"inference.fit_scale must be [long, short], both at least 2, got {inf.fit_scale}")
        if inf.resize == "fit" and inf.short_side is not None:
            raise ValueError("inference.short_side is for resize: short-side; with resize: fit give fit_scale")
        if inf.resize == "short-side" and inf.fit_scale is not None:
            raise ValueError("inference.fit_scale is for resize: fit; with resize: short-side give short_side")
        if inf.window is not None and inf.stride is not None and inf.stride > inf.window:
            raise ValueError(f"inference.stride ({inf.stride}) is larger than the window ({inf.window}):"
                             " pixels between windows would get no prediction")
        if inf.batch_size < 1:
            raise ValueError(f"inference.batch_size must be at least 1, got {inf.batch_size}")
        if inf.background_threshold is not None and not 0.0 < inf.background_threshold < 1.0:
            raise ValueError(f"inference.background_threshold must be in (0, 1), got {inf.background_threshold}")
        if inf.prefetch < 0:
            raise ValueError(f"inference.prefetch must be 0 or more, got {inf.prefetch}")
        if inf.tile_size < 64 or inf.tile_overlap < 0:
            raise ValueError("inference.tile_size must be at least 64 and tile_overlap at least 0")
        if self.method.name == CLIP:  # checked with the rest, as they always were; every one written out
            self.method.settings = dataclasses.asdict(parse_clip_settings(self.method.settings))

    # -- the clip method's settings where they were before issue 22 ---------------------------
    @property
    def schedule(self) -> Any:
        """Deprecated: the clip method's ``schedule`` settings (now in ``method.settings``)."""
        return self._clip_section("schedule")

    @property
    def extras(self) -> Any:
        """Deprecated: the clip method's ``extras`` settings (now in ``method.settings``)."""
        return self._clip_section("extras")

    def _clip_section(self, name: str) -> Any:
        warnings.warn(f"SegmentRecipe.{name} is deprecated: the clip method's settings are in recipe.method.settings; "
                      f"read resegzoo.methods.clip.settings.settings_of(recipe).{name}",
                      DeprecationWarning, stacklevel=3)
        return getattr(clip_settings_of(self), name)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["masks"].pop("stated", None)  # how the recipe was written, not a setting
        return data


#: sections a whole mapping may be given for (``load_recipe(inference={...})``); schedule, text and
#: extras are the clip method's, in the recipe's old form (see :data:`OLD_FORM`)
_SECTIONS = ("masks", "schedule", "text", "inference", "extras")
#: what each section holds, for settings given by their bare name (``window=224``, ``rules=[...]``)
_SECTION_FIELDS: dict[str, type] = {"masks": MaskSettings, "schedule": ScheduleSettings, "text": TextSettings,
                                    "inference": InferenceSettings, "extras": ExtrasSettings}
#: the clip method's settings that were keys of a shared section in the old form: section -> keys
_OLD_KEYS: dict[str, tuple[str, ...]] = {
    section: tuple(old.split(".", 1)[1] for old in OLD_FORM if old.startswith(f"{section}."))
    for section in ("text", "inference")}

#: the key naming a recipe this one starts from (a path relative to the file, or a shipped name)
BASE_KEY = "base"

#: the protocols a results table names (METHOD.md section 6): the settings that decide them
PROTOCOLS: dict[str, dict[str, Any]] = {
    "peers": {"inference.resize": "fit", "inference.fit_scale": [448, 448], "inference.short_side": None,
              "inference.resize_filter": "opencv-bilinear", "inference.window": 224, "inference.stride": 112,
              "inference.window_placement": "shift", "clip.position_interpolation": "scale-factor",
              "inference.probabilities": "name",
              "clip.readout": "logits", "inference.average": "logits", "inference.logit_scale": 50.0,
              "clip.templates": "imagenet"},
    "resegzoo": {"inference.resize": "short-side", "inference.short_side": 448, "inference.fit_scale": None,
                 "inference.resize_filter": "antialias", "inference.window": 224, "inference.stride": 112,
                 "inference.window_placement": "pad", "inference.probabilities": "class",
                 "clip.readout": "logits", "inference.average": "logits", "inference.logit_scale": 50.0},
}
#: a ``clip.`` setting of a recipe whose method is not clip: it has none, so it decides nothing
_NOT_APPLICABLE = object()


def protocol_name(recipe: SegmentRecipe) -> str:
    """``peers`` (SegEarth-OV's evaluation protocol exactly: resize, windows, probabilities and
    its 80 ImageNet templates), ``resegzoo`` (resegzoo's earlier choices: short side 448,
    antialiased resize, padded windows, class softmax) or ``custom``, read off the recipe's
    settings, so a table's label cannot disagree with what ran. ``clip.`` settings (the templates,
    the readout) decide only for the clip method."""
    for name, settings in PROTOCOLS.items():
        if all(_same(_setting(recipe, key), value) for key, value in settings.items()):
            return name
    return "custom"


def _setting(recipe: SegmentRecipe, dotted: str) -> Any:
    first, *path = dotted.split(".")
    if first == CLIP:
        if recipe.method.name != CLIP:
            return _NOT_APPLICABLE
        value: Any = parse_clip_settings(recipe.method.settings)
    else:
        value = getattr(recipe, first)
    for key in path:
        value = getattr(value, key)
    return value


def _same(a: Any, b: Any) -> bool:
    if a is _NOT_APPLICABLE:
        return True
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return a is not None and b is not None and list(a) == list(b)
    return a == b


def shipped_recipes() -> dict[str, Path]:
    """The recipes shipped in the registry (``registry/recipes/NAME.yaml``: segment and eval
    settings, and the compositions ``resegzoo compose`` takes), by name, sorted: the one place
    that finds them (segment, eval, compose, ``base:`` and ``resegzoo list recipes`` ask here)."""
    from resegzoo.weights.zoo import registry_dir

    folder = registry_dir() / "recipes"
    return {p.stem: p for p in sorted(folder.glob("*.yaml")) if p.is_file()} if folder.is_dir() else {}


def shipped_recipe(name: str) -> Path | None:
    """registry/recipes/<name>.yaml when it exists."""
    return shipped_recipes().get(name)


def resolve_recipe(text: str | Path) -> Path:
    """A recipe file's path, or the shipped recipe of that name (e.g. ``eval-default``); a
    SchemaError naming the shipped ones otherwise."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():  # a FIFO or a device too: the YAML loader refuses it by name
        return path
    shipped = shipped_recipe(str(text))
    if shipped is not None:
        return shipped
    known = ", ".join(shipped_recipes()) or "none"
    raise SchemaError(f"recipe {str(text)!r}: no such file, and no shipped recipe of that name (shipped: {known})")


def read_recipe_data(path: str | Path) -> dict[str, Any]:
    """A recipe file's settings as a mapping, with its ``base:`` recipe (a path relative to the
    file, or a shipped recipe name such as eval-default) merged underneath, key by key; the clip
    method's settings under ``method.settings``, in whichever form each file gave them."""
    return _new_form(_read_merged(Path(path)))


def _read_merged(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """:func:`read_recipe_data` with the clip method's settings where the old form has them (see
    :func:`_old_form`), so files of both forms merge key by key, a file's over its base's."""
    loaded = load_yaml(path)
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, Mapping):
        raise SchemaError(f"{path}: a recipe is a mapping of sections, got {type(loaded).__name__}")
    data = _old_form(_method_mapping(dict(loaded)), str(path))
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise SchemaError(f"{path}: `base:` names one recipe (a path or a shipped name), got {base!r}")
    local = (path.parent / base).expanduser()
    base_path = local if local.is_file() else shipped_recipe(base)
    if base_path is None:
        raise SchemaError(f"{path}: base recipe {base!r} is neither a file next to it nor a shipped recipe")
    if base_path.resolve() in _seen + (path.resolve(),):
        raise SchemaError(f"{path}: base recipes form a cycle through {base_path}")
    return _merge(_read_merged(base_path, _seen + (path.resolve(),)), data)


def _method_mapping(data: dict[str, Any]) -> dict[str, Any]:
    """``method: NAME`` as ``method: {name: NAME}``, so recipes merge the same either way."""
    if isinstance(data.get("method"), str):
        data["method"] = {"name": data["method"]}
    return data


def _old_form(data: dict[str, Any], where: str) -> dict[str, Any]:
    """One file's (or override's) settings with ``method.settings`` of a method named ``clip`` moved to
    where the recipe's old form keeps them (``schedule:``, ``text:``, ``extras:``, ``inference.readout``,
    ``inference.position_interpolation``; :data:`resegzoo.methods.clip.settings.OLD_FORM`).

    Recipes are merged in this form: a file's CLIP settings then override its base's key by key,
    whichever form either file uses; :func:`_new_form` moves them back when all are merged. A setting
    given in both forms in one file is an error (which one was meant?)."""
    method = data.get("method")
    if not (isinstance(method, Mapping) and method.get("name") == CLIP and isinstance(method.get("settings"), Mapping)):
        return data
    settings = dict(method["settings"])
    for old, new in OLD_FORM.items():
        if new not in settings:
            continue
        section, _, key = old.partition(".")
        value = settings.pop(new)
        if key:  # a key of inference:
            given = data.get(section)
            if isinstance(given, Mapping) and key in given:
                raise SchemaError(f"{where}: {old} and method.settings.{new} are the same setting given twice "
                                  f"(the old form and the new); keep method.settings.{new}")
            data[section] = {**(given if isinstance(given, Mapping) else {}), key: value}
        else:
            given = data.get(section)
            if isinstance(given, Mapping) and isinstance(value, Mapping) and (twice := set(given) & set(value)):
                raise SchemaError(f"{where}: {section}.{sorted(twice)[0]} is given twice: as a top-level section "
                                  f"(the old form) and under method.settings; keep method.settings.{new}")
            data[section] = _merge(dict(given), value) if isinstance(given, Mapping) and isinstance(value, Mapping) \
                else value
    data["method"] = {**method, "settings": settings}
    return data


def _new_form(data: dict[str, Any]) -> dict[str, Any]:
    """Merged settings with the clip method's moved from the old form's places into ``method.settings``
    (when the method is clip), or left out (another method: they were never its settings; only a
    majority vote asked for is an error, as it always was)."""
    data = dict(data)
    found: dict[str, Any] = {}
    for old, new in OLD_FORM.items():
        section, _, key = old.partition(".")
        if not key:
            if section in data:
                found[new] = data.pop(section)
        elif isinstance(data.get(section), Mapping) and key in data[section]:
            rest = dict(data[section])
            found[new] = rest.pop(key)
            data[section] = rest
    method = data.get("method")
    name = method.get("name", DEFAULT_METHOD) if isinstance(method, Mapping) else DEFAULT_METHOD
    if name == CLIP:
        if found:
            method = dict(method) if isinstance(method, Mapping) else {}
            given = method.get("settings")
            method["settings"] = _merge(found, given) if isinstance(given, Mapping) else found if given is None \
                else given  # not a mapping: from_mapping names it
            data["method"] = method
    elif isinstance(found.get("extras"), Mapping) and found["extras"].get("majority_vote"):
        raise SchemaError(f"extras.majority_vote needs segments, but method {name!r} uses no mask generator; turn "
                          "majority_vote off in the recipe (it is a setting of the clip method)")
    return data


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if key == "method" and isinstance(value, Mapping) and isinstance(out.get(key), Mapping) \
                and value.get("name", out[key].get("name")) != out[key].get("name"):
            out[key] = value  # another method: the base's settings belong to the base's method
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _section_of(key: str) -> str:
    """The section holding field ``key`` (so ``window=224`` means ``inference.window``, and the clip
    method's ``rules=[...]`` ``schedule.rules``, ``readout="features"`` its readout)."""
    hits = [section for section, cls in _SECTION_FIELDS.items()
            if key in {f.name for f in dataclasses.fields(cls)} or key in _OLD_KEYS.get(section, ())]
    if len(hits) != 1:
        raise SchemaError(f"unknown recipe setting {key!r}; give it as SECTION={{{key!r}: ...}} with "
                          f"SECTION one of model, method, {', '.join(_SECTIONS)}")
    return hits[0]


def load_recipe(path: str | Path | None = None, **overrides: Any) -> SegmentRecipe:
    """Read a recipe YAML (None: the defaults) and apply ``overrides``.

    Overrides are either whole sections merged key by key (``inference={"window": 32}``), the
    model (``model="oracle"``), the method (``method="clip"`` or ``method={"name": ..., "settings":
    {...}}``), or a setting's bare name when only one section has it
    (``window=32``, ``generator="none"``, the clip method's ``templates="imagenet"``). The clip
    method's settings may also be given as the sections of the recipe's old form
    (``schedule={...}``, ``text={...}``, ``extras={...}``). A None override leaves the setting as it is.
    """
    data: dict[str, Any] = {}
    where = "recipe"
    if path is not None:
        data = _read_merged(Path(path))
        where = str(path)
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "model" or (key in _SECTIONS and isinstance(value, Mapping)):
            data = _merge(data, {key: value})
        elif key == "method":
            data = _merge(data, _old_form(_method_mapping({key: value}), "method="))
        else:
            data = _merge(data, {_section_of(key): {key: value}})
    data = _new_form(data)
    recipe = from_mapping(SegmentRecipe, data, where)
    masks = data.get("masks")
    recipe.masks.stated = isinstance(masks, Mapping) and "generator" in masks
    return recipe
