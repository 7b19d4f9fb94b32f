"""The composition recipe: which models to average, how to weigh them, what to write.

Loaded strictly with :func:`resegzoo.schema.from_mapping`: an unknown key is an error naming it.
Example (``registry/recipes/reseg-clip-l14.yaml`` is the paper's composition)::

    name: my-composition
    inputs:
      - model: remoteclip-vit-l-14          # registry name, file, folder, local-dir: or hf-hub:
      - {model: ./georsclip.pt, label: GeoRSCLIP}
    architecture: ViT-L-14-quickgelu        # needed only for bare checkpoint files
    weighting: {strategy: prompt-quality, params: {tau: 0.05}}
    dtype: same                             # same | fp32 | fp16 | bf16
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal

from resegzoo.schema import SchemaError, from_mapping, load_yaml
from resegzoo.vocabulary import Vocabulary as _Vocabulary, VocabularyError  # this module's old `Vocabulary`: below

OutputDtype = Literal["same", "fp32", "fp16", "bf16"]

#: Classes the prompt-based strategies score with unless the recipe names its own: the union of
#: the land-cover classes of the common remote-sensing benchmarks (METHOD.md section 6).
DEFAULT_CLASSES = [
    "bareland", "rangeland", "developed space", "road", "tree", "water", "agricultural land",
    "building", "low vegetation", "car", "forest", "ship", "airplane", "storage tank", "bridge",
]
#: Prompt templates the prompt-based strategies vary over (``{}`` is the class name).
DEFAULT_TEMPLATES = [
    "a satellite image of {}.",
    "an aerial image of {}.",
    "a remote sensing image of {}.",
    "a photo of {}.",
    "there is {} in the scene.",
    "a top-down view of {}.",
    "an aerial photograph showing {}.",
    "a high resolution satellite photo of the {}.",
]


@dataclass
class InputModel:
    """One model to average. ``model``: registry name, checkpoint file, folder, ``local-dir:`` or ``hf-hub:``."""

    model: str
    label: str | None = None


@dataclass
class WeightingConfig:
    """A weighting strategy by name (``resegzoo list weightings``) and its parameters."""

    strategy: str = "uniform"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class PromptSet:
    """Classes and prompt templates that prompt-based weighting strategies score with (the recipe's
    ``vocabulary:`` section). The class names are checked as every vocabulary's are
    (:class:`resegzoo.vocabulary.Vocabulary`, the one vocabulary class); this only adds templates."""

    classes: list[str] = field(default_factory=lambda: list(DEFAULT_CLASSES))
    templates: list[str] = field(default_factory=lambda: list(DEFAULT_TEMPLATES))

    def __post_init__(self) -> None:
        try:
            _Vocabulary(self.classes)
        except VocabularyError as exc:
            raise VocabularyError(f"vocabulary.classes: {exc}") from None
        bad = [t for t in self.templates if "{}" not in t]
        if bad:
            raise ValueError(f"vocabulary.templates must each contain '{{}}' for the class name: {bad[0]!r}")


@dataclass
class Recipe:
    inputs: list[str | InputModel]
    name: str = "composed-clip"
    description: str = ""
    #: open_clip architecture name for inputs that do not carry one (bare .pt / .safetensors files)
    architecture: str | None = None
    #: full open_clip model config instead of a named architecture (custom or tiny models)
    model_config: dict | None = None
    weighting: WeightingConfig = field(default_factory=WeightingConfig)
    vocabulary: PromptSet = field(default_factory=PromptSet)
    dtype: OutputDtype = "same"
    #: output folder; the CLI's --out overrides it
    output: str | None = None
    #: warn when the relative L2 distance of two inputs exceeds this (different initialisations)
    distance_warning: float = 0.5

    def __post_init__(self) -> None:
        self.inputs = [InputModel(model=i) if isinstance(i, str) else i for i in self.inputs]
        if len(self.inputs) < 1:
            raise ValueError("inputs: give at least one model")
        labels = self.labels
        if len(set(labels)) != len(labels):
            raise ValueError(f"inputs: labels must be distinct, got {labels}; set `label:` per input")

    @property
    def models(self) -> list[InputModel]:
        return [i for i in self.inputs if isinstance(i, InputModel)]

    @property
    def labels(self) -> list[str]:
        """Each input's label: its own, else its name without the local folders above it."""
        defaults = default_labels([i.model for i in self.models])
        return [i.label or default for i, default in zip(self.models, defaults)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def published_dict(self, public_specs: list[str]) -> dict[str, Any]:
        """The recipe as a composed model publishes it: inputs named by ``public_specs`` (registry
        names, ``hf-hub:`` ids, file names), no output folder, no local path anywhere."""
        data = self.to_dict()
        data["inputs"] = [{"model": spec, "label": label} for spec, label in zip(public_specs, self.labels)]
        data["output"] = None
        return without_local_paths(data)


def _is_local_path(text: str) -> bool:
    text = text.removeprefix("local-dir:")
    return (PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute() or text.startswith("~")
            or ".." in PurePosixPath(text.replace("\\", "/")).parts)


def public_name(spec: str) -> str:
    """``spec`` without the local folders above it: ``/home/me/ckpt/remote.pt`` -> ``remote.pt``;
    registry names and ``hf-hub:`` ids are public already."""
    if spec.startswith("hf-hub:"):
        return spec
    text = spec.removeprefix("local-dir:").replace("\\", "/").rstrip("/")
    return text.rsplit("/", 1)[-1] or spec


def without_local_paths(value: Any) -> Any:
    """``value`` (JSON-like) with every absolute, home-relative or climbing path cut to its name."""
    if isinstance(value, str):
        return public_name(value) if _is_local_path(value) else value
    if isinstance(value, dict):
        return {k: without_local_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_local_paths(v) for v in value]
    return value


def default_labels(specs: list[str]) -> list[str]:
    """Short distinct labels: the file or folder name, with parent folders added only where two
    inputs would otherwise share a label (labels are published; full local paths never are)."""
    parts = [spec.removeprefix("local-dir:").replace("\\", "/").rstrip("/").split("/") for spec in specs]
    for depth in range(1, max((len(p) for p in parts), default=1) + 1):
        labels = [spec if spec.startswith("hf-hub:") else "/".join(p[-depth:]).lstrip("/") or spec
                  for spec, p in zip(specs, parts)]
        if len(set(labels)) == len(labels):
            return labels
    return list(specs)


def recipe_from_mapping(data: Any, where: str = "recipe", base_dir: Path | None = None) -> Recipe:
    """Validate ``data`` into a Recipe; relative paths are taken relative to ``base_dir``."""
    recipe = from_mapping(Recipe, data, where)
    if base_dir is not None:
        for item in recipe.models:
            candidate = base_dir / item.model.removeprefix("local-dir:")
            if not Path(item.model.removeprefix("local-dir:")).is_absolute() and candidate.exists():
                item.model = str(candidate)
        if recipe.output is not None and not Path(recipe.output).is_absolute():
            recipe.output = str(base_dir / recipe.output)
        images = recipe.weighting.params.get("images")
        if isinstance(images, list):
            recipe.weighting.params["images"] = [
                str(base_dir / p) if isinstance(p, str) and not Path(p).is_absolute() else p for p in images
            ]
    return recipe


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe YAML file; relative paths inside it are relative to the file."""
    path = Path(path)
    data = load_yaml(path)
    if data is None:
        raise SchemaError(f"{path}: the file is empty")
    return recipe_from_mapping(data, where=str(path), base_dir=path.parent)


def __getattr__(name: str) -> Any:
    """Names that moved away from here still work, with a DeprecationWarning (resegzoo.moved.LEFT)."""
    from resegzoo.moved import left_module_attribute

    return left_module_attribute(__name__, name)
