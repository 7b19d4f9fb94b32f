"""The ``segearth-ov3`` method: SegEarth-OV3's scores behind the method seam.

The pipeline cuts windows and stitches, upsamples, takes each class's best name and applies the
background threshold (SegEarth-OV3's ``prob_thd``, the recipe's ``inference.background_threshold``);
this module turns a batch of windows and the vocabulary's names into SegEarth-OV3's per-name
probabilities (:mod:`.model`, :mod:`.fusion`). ``method.settings`` is :class:`SegEarthOV3Settings`.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from resegzoo.errors import ResegzooError
from resegzoo.schema import check_limits, limit

NAME = "segearth-ov3"
LOCAL_DIR = "local-dir:"
HF_HUB = "hf-hub:"
#: transformers model types whose config Sam3Model reads (a SAM 3 video checkpoint holds the image model)
SAM3_MODEL_TYPES = ("sam3", "sam3_video")


class Sam3LoadError(ResegzooError, RuntimeError):
    """The SAM 3 model could not be found or read; the message says which and why."""


@dataclass
class SegEarthOV3Settings:
    """SegEarth-OV3's switches (its segmentor's arguments) in a recipe's ``method.settings``."""

    #: instances whose score sigmoid(class logit) x presence exceeds this are kept
    confidence_threshold: float = 0.5
    #: the instance head (``use_transformer_decoder``)
    instances: bool = True
    #: the semantic head (``use_sem_seg``)
    semantic: bool = True
    #: the presence score as a factor (``use_presence_score``)
    presence: bool = True
    #: SAM 3's geometry token for the empty prompt appended to each text prompt, as SAM 3's own
    #: model does (transformers' Sam3Model omits it); off only to compare with transformers
    geometry_token: bool = True
    #: names that share one decoder pass (memory: about 0.2 GB per name on the full model)
    name_batch: int = field(default=16, metadata=limit(256))

    def __post_init__(self) -> None:
        check_limits(self)
        if not 0.0 <= self.confidence_threshold <= 1.0:
            raise ValueError(f"confidence_threshold must be in 0..1, got {self.confidence_threshold}")
        if self.name_batch < 1:
            raise ValueError(f"name_batch must be at least 1, got {self.name_batch}")


def check_model(spec: str) -> None:
    """A SAM 3 model spec, checked without loading anything or using the network: a zoo name
    (``sam3``), ``local-dir:DIR`` (a folder written by ``save_pretrained``), ``hf-hub:ORG/REPO`` or
    a folder path. ValueError saying what is wrong otherwise."""
    from resegzoo.weights.zoo import sam3_models

    if spec.startswith(HF_HUB):
        if spec[len(HF_HUB):].count("/") != 1:
            raise ValueError(f"{spec!r}: write hf-hub:ORG/REPO")
        return
    if spec in sam3_models():
        return
    folder = Path(spec[len(LOCAL_DIR):] if spec.startswith(LOCAL_DIR) else spec).expanduser()
    if not folder.is_dir():
        raise ValueError(f"{spec!r} is neither a SAM 3 model of the zoo ({', '.join(sam3_models())}), nor a folder; "
                         "give sam3, local-dir:DIR (a folder written by Sam3Model.save_pretrained) or hf-hub:ORG/REPO")
    config = folder / "config.json"
    if not config.is_file():
        raise ValueError(f"{folder} has no config.json; a SAM 3 folder is written by Sam3Model.save_pretrained")
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError) as exc:
        raise ValueError(f"{config} is not a readable JSON config ({exc})") from None
    if model_type not in SAM3_MODEL_TYPES:
        raise ValueError(f"{config} is a {model_type!r} model, not SAM 3 (model_type sam3)")


def model_folder(spec: str) -> Path:
    """The local folder of a SAM 3 model spec, downloaded into the Hugging Face cache if needed."""
    from resegzoo.weights.hub import HF_MODEL_FILES, fetch_hf_snapshot, fetch_record
    from resegzoo.weights.zoo import FetchError, get_sam3_model, sam3_models

    try:
        check_model(spec)
    except ValueError as exc:
        raise Sam3LoadError(str(exc)) from None
    try:
        if spec.startswith(HF_HUB):
            return fetch_hf_snapshot(spec[len(HF_HUB):], spec, HF_MODEL_FILES)
        if spec in sam3_models():
            return fetch_record(get_sam3_model(spec))
    except FetchError as exc:
        raise Sam3LoadError(str(exc)) from None
    return Path(spec[len(LOCAL_DIR):] if spec.startswith(LOCAL_DIR) else spec).expanduser()


def _switches(settings: SegEarthOV3Settings) -> Any:
    from resegzoo.methods.segearth_ov3.fusion import FusionSwitches

    return FusionSwitches(confidence_threshold=settings.confidence_threshold, instances=settings.instances,
                          semantic=settings.semantic, presence=settings.presence)


class SegEarthOV3Method:
    """A loaded SAM 3 and SegEarth-OV3's settings (the method seam's ``Method``)."""

    #: SegEarth-OV3 scores names; the pipeline takes each class's best name (its max rule)
    names_only = True
    #: SAM 3 resizes every window to its own square input, so any window side works
    window_multiple = 1
    scores = "probabilities"

    def __init__(self, scorer: Any, settings: SegEarthOV3Settings, model: str = "") -> None:
        self.scorer = scorer
        self.settings = settings
        #: the fusion rule and its switches (another SAM 3 method gives its own: ``switches.fuse``)
        self.switches = _switches(settings)
        self.model = model
        #: the window side when the recipe sets none: SAM 3's own input side
        self.window = scorer.resolution
        self.device = scorer.device
        self.notes: list[str] = []
        self.random_weights = False

    def window_scores(self, windows: Any, vocab: Any, per_name: bool, maps: Optional[list[Any]] = None) -> Any:
        """(B, R, H, W) probabilities of (B, H, W, 3) uint8 windows: R = names, or classes (max)."""
        import torch

        from resegzoo.methods.base import class_of_names, names_to_classes, vocabulary_names

        names = vocabulary_names(vocab)
        pixels = torch.from_numpy(windows).permute(0, 3, 1, 2)
        scores = self.scorer.score_windows(pixels, names, self.switches)
        if per_name:
            return scores
        return names_to_classes(scores, class_of_names(vocab), len(vocab.classes), dim=1)

    def describe(self) -> dict[str, Any]:
        return {"model": self.model, "resolution": self.scorer.resolution, "tokenizer": self.scorer.tokenizer_source,
                "settings": dataclasses.asdict(self.settings)}


def load_sam3_scorer(context: Any, method: str = NAME, decoder_precision: str | None = None) -> Any:
    """The SAM 3 named by ``context.model``, loaded once for a method (every SAM 3 method loads
    through here): a :class:`~resegzoo.methods.segearth_ov3.model.Sam3Scorer` with the settings'
    ``name_batch`` and ``geometry_token``."""
    from resegzoo.methods.segearth_ov3.model import Sam3Scorer
    from resegzoo.methods.segearth_ov3.tokenizer import tokenizer_for

    settings = context.settings
    folder = model_folder(context.model)
    try:
        from transformers import Sam3Model
    except ImportError:
        raise Sam3LoadError(f"method {method} needs transformers with Sam3Model: "
                            "pip install \"resegzoo[sam3]\"") from None
    try:
        model = Sam3Model.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise Sam3LoadError(f"cannot read SAM 3 from {folder}: {' '.join(str(exc).split())}") from None
    model = model.to(context.device).eval()
    tokenize, source = tokenizer_for(folder)
    return Sam3Scorer(model, tokenize, device=context.device, precision=context.precision,
                      name_batch=settings.name_batch, geometry_token=settings.geometry_token,
                      tokenizer_source=source, decoder_precision=decoder_precision)


def build(context: Any) -> SegEarthOV3Method:
    """The method seam's factory: load the SAM 3 named by ``context.model``."""
    return SegEarthOV3Method(load_sam3_scorer(context), context.settings, model=context.model)
