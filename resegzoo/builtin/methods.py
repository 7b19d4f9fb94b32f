"""Built-in segmentation methods (registered like any plugin's): the CLIP pipeline."""
from __future__ import annotations

from typing import Any

from resegzoo.plugins.hookspecs import hookimpl


def _clip(context: Any) -> Any:
    from resegzoo.segmenter.clip_method import build_clip_method

    return build_clip_method(context)


@hookimpl
def resegzoo_register_methods(register):
    from resegzoo.methods.base import MethodSpec

    register(MethodSpec(
        "clip", _clip,
        "dense CLIP scores: ReSeg-CLIP (segment-masked attention, the default schedule) and the peer CLIP "
        "methods (MaskCLIP, SCLIP, ClearCLIP, NACLIP, SegEarth-OV: recipes method-*), chosen by the "
        "recipe's schedule and extras; needs a CLIP model (`resegzoo list variants`) and reads --masks",
        model="clip", masks=True, scores="cosine"))
