"""The ``segearth-ov3`` method: SegEarth-OV3's scores behind the method seam.

The pipeline cuts windows and stitches, upsamples, takes each class's best name and applies the
background threshold (SegEarth-OV3's ``prob_thd``, the recipe's ``inference.background_threshold``);
this module turns a batch of windows and the vocabulary's names into SegEarth-OV3's per-name
probabilities (:mod:`.model`, :mod:`.fusion`). ``method.settings`` is :class:`SegEarthOV3Settings`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from resegzoo.methods.base import MethodBase
from resegzoo.schema import check_limits, limit

NAME = "segearth-ov3"


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
        if not self.instances and not self.semantic:  # the score would be 0 everywhere: every pixel one class
            raise ValueError("instances and semantic cannot both be off: the method needs one of SAM 3's heads "
                             "(with neither, every score is 0)")


def _switches(settings: SegEarthOV3Settings) -> Any:
    from resegzoo.methods.segearth_ov3.fusion import FusionSwitches

    return FusionSwitches(confidence_threshold=settings.confidence_threshold, instances=settings.instances,
                          semantic=settings.semantic, presence=settings.presence)


class SegEarthOV3Method(MethodBase):
    """A loaded SAM 3 and SegEarth-OV3's settings (the method seam's ``Method``; the base class's
    defaults for the rest)."""

    #: SegEarth-OV3 scores names; the pipeline takes each class's best name (its max rule)
    names_only = True
    #: beside its scores it gives each window's backbone features (change detection compares them)
    outputs = frozenset({"features", "instances"})  # instances: SAM 3's kept ones (segment --objects)
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
        return self.window_outputs(windows, vocab, per_name, maps, frozenset()).scores

    def window_outputs(self, windows: Any, vocab: Any, per_name: bool, maps: Optional[list[Any]] = None,
                       want: frozenset[str] = frozenset()) -> Any:
        """:meth:`window_scores` and, when ``want`` has ``features``, SAM 3's stride-14 FPN features of
        each window from the same image pass (the method seam's ``window_outputs``); with ``instances``,
        per window SAM 3's kept instances (score above ``confidence_threshold``)."""
        import torch

        from resegzoo.methods.base import (FEATURES, INSTANCES, WindowOutputs, class_of_names, names_to_classes,
                                           vocabulary_names)

        names = vocabulary_names(vocab)
        pixels = torch.from_numpy(windows).permute(0, 3, 1, 2)
        found: list[Any] | None = [] if INSTANCES in want else None
        scores, features = self.scorer.score_windows_and_features(pixels, names, self.switches,
                                                                  features=FEATURES in want, instances=found)
        if not per_name:
            scores = names_to_classes(scores, class_of_names(vocab), len(vocab.classes), dim=1)
        return WindowOutputs(scores, features=features, instances=found)

    def describe(self) -> dict[str, Any]:
        return {"model": self.model, "resolution": self.scorer.resolution, "tokenizer": self.scorer.tokenizer_source,
                "settings": dataclasses.asdict(self.settings)}


def load_sam3_scorer(context: Any, method: str = NAME, decoder_precision: str | None = None) -> Any:
    """The SAM 3 the API resolved (``context.resolved``), loaded through the model route once for a
    method (every SAM 3 method loads through here): a
    :class:`~resegzoo.methods.segearth_ov3.model.Sam3Scorer` with the settings' ``name_batch`` and
    ``geometry_token``."""
    from resegzoo.methods.segearth_ov3.model import Sam3Scorer
    from resegzoo.methods.segearth_ov3.tokenizer import tokenizer_for
    from resegzoo.weights.loading import load_sam3, resolve_model
    from resegzoo.weights.records import SAM3

    settings = context.settings
    resolved = context.resolved or resolve_model(context.model, SAM3)  # a context made by hand: resolved here
    tokenize, source = tokenizer_for(resolved.files.folder)  # before the model: a bad file costs no loading
    model = load_sam3(resolved, context.device)
    return Sam3Scorer(model, tokenize, device=context.device, precision=context.precision,
                      name_batch=settings.name_batch, geometry_token=settings.geometry_token,
                      tokenizer_source=source, decoder_precision=decoder_precision)


def build(context: Any) -> SegEarthOV3Method:
    """The method seam's factory: SAM 3 as the API resolved it (``context.resolved``)."""
    return SegEarthOV3Method(load_sam3_scorer(context), context.settings, model=context.model)
