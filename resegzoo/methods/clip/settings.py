"""The ``clip`` method's settings: the recipe's ``method.settings`` when ``method.name`` is ``clip``.

::

    method:
      name: clip
      settings:
        schedule: {rules: null, uncovered: group}   # segment-masked attention, block by block
        templates: reference                        # prompt templates
        readout: logits                             # or features (the official ReSeg-CLIP code)
        position_interpolation: size                # or scale-factor (SegEarth-OV's open_clip)
        extras: {last_block: null, last_block_residual: null, naclip_std: 5.0,
                 cls_token_lambda: 0.0, majority_vote: false}

Before issue 22 these were top-level recipe sections (``schedule:``, ``extras:``) and keys of shared
sections (``text.templates``, ``inference.readout``, ``inference.position_interpolation``);
:data:`OLD_FORM` says where each lived, and recipes written that way still load (``resegzoo.segmenter.recipe`` moves them here).
This module is light (no torch): the recipe loader imports it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Optional

from resegzoo.schema import from_mapping


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
class ClipSettings:
    """Everything the ``clip`` method reads from the recipe besides the shared ``inference:``."""

    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    #: prompt templates: a set shipped in resegzoo/data/templates (``reference``, ``remote-sensing``,
    #: ``imagenet``, ``sentence``: the name alone) or a text file with one template per line, ``{}``
    #: for the name.
    templates: str = "reference"
    #: ``logits`` (patch cosines upsampled bilinearly to the window) or ``features`` (patch
    #: features upsampled, L2-normalised, then cosines: the official ReSeg-CLIP code).
    readout: Literal["logits", "features"] = "logits"
    #: how the positional embeddings are resized for a grid other than the model's own (a window
    #: other than its native size; under ``shift``, the smaller crop of a short axis): ``size``
    #: (bicubic to the grid's size) or ``scale-factor`` (bicubic by (grid + 0.1) / native grid, the
    #: rule of DINO that SegEarth-OV's open_clip uses).
    position_interpolation: Literal["size", "scale-factor"] = "size"
    extras: ExtrasSettings = field(default_factory=ExtrasSettings)

    def __post_init__(self) -> None:
        rules = self.schedule.rules
        if rules is not None:
            from resegzoo.methods.clip.schedule import check_rules

            check_rules(rules)
        if self.extras.last_block is not None and rules and str(rules[-1]).strip() not in ("global", "global*"):
            raise ValueError(f"schedule.rules ends with {rules[-1]!r}, but extras.last_block="
                             f"{self.extras.last_block!r} replaces the last block's attention: make the last "
                             "rule 'global' or leave schedule.rules null (METHOD.md section 7)")
        if self.extras.last_block_residual is not None and self.extras.last_block is None:
            raise ValueError("extras.last_block_residual needs extras.last_block (a peer method's last block)")
        if self.extras.naclip_std <= 0:
            raise ValueError(f"extras.naclip_std must be positive, got {self.extras.naclip_std}")


#: where each setting lived in the recipe before issue 22: the old recipe path (a top-level section,
#: or a key of a shared section) -> the key of ``method.settings`` it is now
OLD_FORM: dict[str, str] = {
    "schedule": "schedule",
    "text.templates": "templates",
    "extras": "extras",
    "inference.readout": "readout",
    "inference.position_interpolation": "position_interpolation",
}


def parse_settings(settings: Any, where: str = "method.settings") -> ClipSettings:
    """``method.settings`` of a ``clip`` recipe (a mapping, or ClipSettings already) as ClipSettings;
    unknown keys and bad values are SchemaErrors naming the key."""
    if isinstance(settings, ClipSettings):
        return settings
    if settings is None:
        settings = {}
    if not isinstance(settings, Mapping):
        return from_mapping(ClipSettings, settings, where=where)  # the error names what it got
    return from_mapping(ClipSettings, dict(settings), where=where)


def settings_of(recipe: Any) -> ClipSettings:
    """The clip method's settings of ``recipe`` (a SegmentRecipe): its ``method.settings`` parsed when
    its method is clip, the defaults otherwise."""
    from resegzoo.methods.clip import NAME

    method = recipe.method
    return parse_settings(method.settings if method.name == NAME else {})


def check(settings: ClipSettings, masks: str) -> None:
    """The ``clip`` method's own checks before any model loads (the method seam's ``check`` hook):
    the template set or file can be read, and majority vote has segments to vote in."""
    from resegzoo.methods.clip.text import load_templates

    load_templates(settings.templates)
    if settings.extras.majority_vote and masks == "none":
        raise ValueError("extras.majority_vote needs segments, but mask generator 'none' gives none; "
                         "use e.g. --masks slic or turn majority_vote off in the recipe")
