"""The segmentation recipe: every setting of ``resegzoo segment``, with METHOD.md's defaults.

A recipe is YAML with the sections below (all optional); unknown keys are errors that name the
key. ``registry/recipes/segment-default.yaml`` is the fully commented default.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from resegzoo.schema import SchemaError, from_mapping, load_yaml


@dataclass
class MaskSettings:
    #: mask generator name (``resegzoo list masks``): slic, felzenszwalb, sam, none, or a plugin's.
    generator: str = "slic"
    #: passed as keyword arguments to the generator's factory (each generator validates its own).
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScheduleSettings:
    #: one rule per ViT block: ``global``, ``segment:K``, ``neighbor:R``. None = METHOD.md's
    #: default for the model's depth (last 6 blocks segment:0..3 + 2 x neighbor:0, rest global).
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
    #: resize the image so its short side has this length first (None: keep the size).
    short_side: Optional[int] = None
    #: sliding-window side in pixels (None: the model's native image size).
    window: Optional[int] = None
    #: step between windows (None: half the window).
    stride: Optional[int] = None
    #: windows encoded per forward pass.
    batch_size: int = 8
    #: probabilities are softmax(logit_scale x cosine).
    logit_scale: float = 50.0
    #: pixels whose top probability is below this become the extra class ``background``
    #: (None: off).
    background_threshold: Optional[float] = None
    #: GeoTIFFs larger than this many pixels per side are read and written tile by tile.
    tile_size: int = 2048
    #: pixels of context read around each tile (at most a quarter of tile_size is used).
    tile_overlap: int = 128
    #: image encoders (CLIP's image tower, SAM) in fp32, or under autocast in bf16 / fp16 (CUDA
    #: only); text embeddings and the softmax stay fp32. See resegzoo.runtime.
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    #: the next band of windows' segments (and eval's next image) are prepared in a background
    #: thread while the encoder runs; this many are made ahead (0: everything in turn).
    prefetch: int = 1


@dataclass
class ExtrasSettings:
    """Peer methods' tricks, all off by default (METHOD.md section 3)."""

    #: SegEarth-OV: the last block becomes q-q + k-k + v-v attention without residual and FFN.
    segearth_last_block: bool = False
    #: logits + lambda x the CLS token's logits; SegEarth-OV uses -0.3 (0: off).
    cls_token_lambda: float = 0.0
    #: replace the predicted label inside each finest segment by its majority label.
    majority_vote: bool = False


@dataclass
class SegmentRecipe:
    #: model spec (registry name, checkpoint path, ``local-dir:``, ``hf-hub:``); None: give
    #: ``--model`` / ``model=``.
    model: Optional[str] = None
    masks: MaskSettings = field(default_factory=MaskSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    text: TextSettings = field(default_factory=TextSettings)
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    extras: ExtrasSettings = field(default_factory=ExtrasSettings)

    def __post_init__(self) -> None:
        inf = self.inference
        for name in ("short_side", "window", "stride"):
            value = getattr(inf, name)
            if value is not None and value < 2:
                raise ValueError(f"inference.{name} must be at least 2, got {value}")
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
            from resegzoo.segmenter.schedule import parse_rule

            for rule in self.schedule.rules:
                parse_rule(rule)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = ("masks", "schedule", "text", "inference", "extras")


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
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
                          f"SECTION one of model, {', '.join(_SECTIONS)}")
    return hits[0]


def load_recipe(path: str | Path | None = None, **overrides: Any) -> SegmentRecipe:
    """Read a recipe YAML (None: the defaults) and apply ``overrides``.

    Overrides are either whole sections merged key by key (``inference={"window": 32}``), the
    model (``model="oracle"``), or a setting's bare name when only one section has it
    (``window=32``, ``generator="none"``). A None override leaves the setting as it is.
    """
    data: dict[str, Any] = {}
    where = "recipe"
    if path is not None:
        loaded = load_yaml(path)
        where = str(path)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, Mapping):
            raise SchemaError(f"{path}: a recipe is a mapping of sections, got {type(loaded).__name__}")
        data = dict(loaded)
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "model" or (key in _SECTIONS and isinstance(value, Mapping)):
            data = _merge(data, {key: value})
        else:
            data = _merge(data, {_section_of(key): {key: value}})
    return from_mapping(SegmentRecipe, data, where)
