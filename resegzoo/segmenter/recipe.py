"""The segmentation recipe: every setting of ``resegzoo segment``, with METHOD.md's defaults.

A recipe is YAML with the sections below (all optional); unknown keys are errors that name the
key. ``registry/recipes/segment-default.yaml`` is the fully commented default.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from resegzoo.schema import SchemaError, check_limits, from_mapping, limit, load_yaml

# Limits of the settings that size memory (checked with the rest, before any work; see
# resegzoo.schema.limit): far above what any model or machine uses today, far below what would
# ask for the whole machine (a 100,000 px window pads a 64 x 64 image to 28 GiB).
#: sliding-window side and stride, px (CLIP: 224-448, SAM 3: 1008)
MAX_WINDOW = 4096
#: resize targets (short_side, fit_scale), px
MAX_RESIZE = 8192
#: block side (tile_size) and the context read around it (tile_overlap), px
MAX_TILE_SIZE, MAX_TILE_OVERLAP = 8192, 4096
#: windows per forward pass, and bands of windows prepared ahead
MAX_BATCH, MAX_PREFETCH = 1024, 16


@dataclass
class MaskSettings:
    #: mask generator name (``resegzoo list masks``): slic, felzenszwalb, sam, none, or a plugin's.
    generator: str = "slic"
    #: passed as keyword arguments to the generator's factory (each generator validates its own).
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScheduleSettings:
    #: one rule per ViT block: ``global``, ``segment:K``, ``neighbor:R``; one rule may be
    #: starred (``global*``) to fill the blocks the others leave, for models of any depth. None =
    #: METHOD.md's default for the model's depth (last 6 blocks segment:0..3 + 2 x neighbor:0,
    #: rest global).
    rules: Optional[list[str]] = None
    #: what patches no segment covers (id 0) may attend to: ``group`` (each other, as the
    #: reference code), ``self`` (only themselves) or ``global`` (every patch).
    uncovered: Literal["group", "self", "global"] = "group"


@dataclass
class TextSettings:
    #: a template set shipped in resegzoo/data/templates (``reference``, ``remote-sensing``,
    #: ``imagenet``) or a path to a text file with one template per line, ``{}`` for the name.
    templates: str = "reference"


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
    #: how the positional embeddings are resized for a grid other than the model's own (a window
    #: other than its native size; under ``shift``, the smaller crop of a short axis): ``size``
    #: (bicubic to the grid's size) or ``scale-factor`` (bicubic by (grid + 0.1) / native grid, the
    #: rule of DINO that SegEarth-OV's open_clip uses).
    position_interpolation: Literal["size", "scale-factor"] = "size"
    #: ``logits`` (patch cosines upsampled bilinearly to the window) or ``features`` (patch
    #: features upsampled, L2-normalised, then cosines: the official ReSeg-CLIP code).
    readout: Literal["logits", "features"] = "logits"
    #: what overlapping windows average: ``logits`` (cosines, the peers) or ``probabilities``
    #: (each window's softmax, the official ReSeg-CLIP code).
    average: Literal["logits", "probabilities"] = "logits"
    #: ``class``: softmax over classes of each class's best name cosine; ``name``: softmax over
    #: all names (synonyms are separate rows), then the max per class (SegEarth-OV).
    probabilities: Literal["class", "name"] = "class"
    #: windows encoded per forward pass.
    batch_size: int = field(default=8, metadata=limit(MAX_BATCH))
    #: probabilities are softmax(logit_scale x cosine).
    logit_scale: float = 50.0
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
    #: the next band of windows' segments (and eval's next image) are prepared in a background
    #: thread while the encoder runs; this many are made ahead (0: everything in turn).
    prefetch: int = field(default=1, metadata=limit(MAX_PREFETCH))


@dataclass
class ExtrasSettings:
    """Peer methods' tricks, all off by default (METHOD.md section 3)."""

    #: the last block's attention as a peer method defines it (METHOD.md section 7): vanilla,
    #: maskclip, sclip, clearclip, naclip, segearth-ov; None: the schedule's rule, open_clip's block.
    last_block: Optional[Literal["vanilla", "maskclip", "sclip", "clearclip", "naclip", "segearth-ov"]] = None
    #: keep the last block's residual connection and FFN (None: as the method defines it).
    last_block_residual: Optional[bool] = None
    #: NACLIP's Gaussian neighbourhood standard deviation, in patches (NACLIP's paper: 5).
    naclip_std: float = 5.0
    #: logits + lambda x the CLS token's logits; SegEarth-OV uses -0.3 (0: off).
    cls_token_lambda: float = 0.0
    #: replace the predicted label inside each finest segment by its majority label.
    majority_vote: bool = False


@dataclass
class MethodSettings:
    """Which method scores the windows (``resegzoo list methods``); ``method: NAME`` in YAML is
    short for ``method: {name: NAME}``."""

    #: ``clip``: the CLIP pipeline (ReSeg-CLIP's segment-masked attention and the peer CLIP
    #: methods, chosen by the schedule and extras sections); or another registered method.
    name: str = "clip"
    #: the method's own settings, checked by the method (``resegzoo list methods --json``).
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class SegmentRecipe:
    #: model spec (registry name, checkpoint path, ``local-dir:``, ``hf-hub:``); None: give
    #: ``--model`` / ``model=``.
    model: Optional[str] = None
    method: MethodSettings = field(default_factory=MethodSettings)
    masks: MaskSettings = field(default_factory=MaskSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    text: TextSettings = field(default_factory=TextSettings)
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    extras: ExtrasSettings = field(default_factory=ExtrasSettings)

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
        if self.schedule.rules is not None:
            from resegzoo.methods.clip.schedule import check_rules

            check_rules(self.schedule.rules)
        rules = self.schedule.rules
        if self.extras.last_block is not None and rules and str(rules[-1]).strip() not in ("global", "global*"):
            raise ValueError(f"schedule.rules ends with {rules[-1]!r}, but extras.last_block="
                             f"{self.extras.last_block!r} replaces the last block's attention: make the last "
                             "rule 'global' or leave schedule.rules null (METHOD.md section 7)")
        if self.extras.last_block_residual is not None and self.extras.last_block is None:
            raise ValueError("extras.last_block_residual needs extras.last_block (a peer method's last block)")
        if self.extras.naclip_std <= 0:
            raise ValueError(f"extras.naclip_std must be positive, got {self.extras.naclip_std}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = ("masks", "schedule", "text", "inference", "extras")

#: the key naming a recipe this one starts from (a path relative to the file, or a shipped name)
BASE_KEY = "base"

#: the protocols a results table names (METHOD.md section 6): the settings that decide them
PROTOCOLS: dict[str, dict[str, Any]] = {
    "peers": {"inference.resize": "fit", "inference.fit_scale": [448, 448], "inference.short_side": None,
              "inference.resize_filter": "opencv-bilinear", "inference.window": 224, "inference.stride": 112,
              "inference.window_placement": "shift", "inference.position_interpolation": "scale-factor",
              "inference.probabilities": "name",
              "inference.readout": "logits", "inference.average": "logits", "inference.logit_scale": 50.0,
              "text.templates": "imagenet"},
    "resegzoo": {"inference.resize": "short-side", "inference.short_side": 448, "inference.fit_scale": None,
                 "inference.resize_filter": "antialias", "inference.window": 224, "inference.stride": 112,
                 "inference.window_placement": "pad", "inference.probabilities": "class",
                 "inference.readout": "logits", "inference.average": "logits", "inference.logit_scale": 50.0},
}


def protocol_name(recipe: SegmentRecipe) -> str:
    """``peers`` (SegEarth-OV's evaluation protocol exactly: resize, windows, probabilities and
    its 80 ImageNet templates), ``resegzoo`` (resegzoo's earlier choices: short side 448,
    antialiased resize, padded windows, class softmax) or ``custom``, read off the recipe's
    settings, so a table's label cannot disagree with what ran."""
    for name, settings in PROTOCOLS.items():
        if all(_same(_setting(recipe, key), value) for key, value in settings.items()):
            return name
    return "custom"


def _setting(recipe: SegmentRecipe, dotted: str) -> Any:
    section, key = dotted.split(".")
    return getattr(getattr(recipe, section), key)


def _same(a: Any, b: Any) -> bool:
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


def read_recipe_data(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe file's settings as a mapping, with its ``base:`` recipe (a path relative to the
    file, or a shipped recipe name such as eval-default) merged underneath, key by key."""
    path = Path(path)
    loaded = load_yaml(path)
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, Mapping):
        raise SchemaError(f"{path}: a recipe is a mapping of sections, got {type(loaded).__name__}")
    data = _method_mapping(dict(loaded))
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
    return _merge(read_recipe_data(base_path, _seen + (path.resolve(),)), data)


def _method_mapping(data: dict[str, Any]) -> dict[str, Any]:
    """``method: NAME`` as ``method: {name: NAME}``, so recipes merge the same either way."""
    if isinstance(data.get("method"), str):
        data["method"] = {"name": data["method"]}
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
    """The section holding field ``key`` (so ``window=224`` means ``inference.window``)."""
    hits = []
    for section in _SECTIONS:
        cls = SegmentRecipe.__dataclass_fields__[section].default_factory  # type: ignore[misc]
        if key in {f.name for f in dataclasses.fields(cls)}:
            hits.append(section)
    if len(hits) != 1:
        raise SchemaError(f"unknown recipe setting {key!r}; give it as SECTION={{{key!r}: ...}} with "
                          f"SECTION one of model, method, {', '.join(_SECTIONS)}")
    return hits[0]


def load_recipe(path: str | Path | None = None, **overrides: Any) -> SegmentRecipe:
    """Read a recipe YAML (None: the defaults) and apply ``overrides``.

    Overrides are either whole sections merged key by key (``inference={"window": 32}``), the
    model (``model="oracle"``), the method (``method="clip"`` or ``method={"name": ..., "settings":
    {...}}``), or a setting's bare name when only one section has it
    (``window=32``, ``generator="none"``). A None override leaves the setting as it is.
    """
    data: dict[str, Any] = {}
    where = "recipe"
    if path is not None:
        data = read_recipe_data(path)
        where = str(path)
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "model" or (key in _SECTIONS and isinstance(value, Mapping)):
            data = _merge(data, {key: value})
        elif key == "method":
            data = _merge(data, _method_mapping({key: value}))
        else:
            data = _merge(data, {_section_of(key): {key: value}})
    return from_mapping(SegmentRecipe, data, where)
