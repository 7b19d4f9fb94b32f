"""Built-in segmentation methods (registered like any plugin's): the CLIP pipeline, SegEarth-OV3 and
ProC-SAM3."""
from __future__ import annotations

from typing import Any

from resegzoo.plugins.hookspecs import hookimpl


def _clip(context: Any) -> Any:
    from resegzoo.methods.clip.method import build_clip_method

    return build_clip_method(context)


def _clip_around(encoder: Any, context: Any) -> Any:
    from resegzoo.methods.clip.method import clip_method_around

    return clip_method_around(encoder, context)


def _segearth_ov3(context: Any) -> Any:
    from resegzoo.methods.segearth_ov3.method import build

    return build(context)


def _proc_sam3(context: Any) -> Any:
    from resegzoo.methods.proc_sam3.method import build

    return build(context)


@hookimpl
def resegzoo_register_methods(register):
    from resegzoo.methods.base import FEATURES, INSTANCES, MethodSpec

    from resegzoo.methods.clip import NAME as CLIP
    from resegzoo.methods.clip.settings import ClipSettings, check

    register(MethodSpec(
        CLIP, _clip,
        "dense CLIP scores: ReSeg-CLIP (segment-masked attention, the default schedule) and the peer CLIP "
        "methods (MaskCLIP, SCLIP, ClearCLIP, NACLIP, SegEarth-OV: recipes method-*), chosen by its settings "
        "(schedule, text, readout, extras); needs a CLIP model (`resegzoo list models --kind clip`) and reads --masks",
        model="clip", masks=True, scores="cosine", settings=ClipSettings, check=check, from_model=_clip_around))

    from resegzoo.methods.segearth_ov3.method import NAME, SegEarthOV3Settings

    register(MethodSpec(
        NAME, _segearth_ov3,
        "SegEarth-OV3 (arXiv 2512.08730): SAM 3's instance and semantic heads and presence score per name, "
        "no training; needs a SAM 3 model (sam3: gated, accept its licence and give a token, then `resegzoo "
        "fetch sam3`; or local-dir:DIR from save_pretrained, hf-hub:ORG/REPO) and pip install "
        "\"resegzoo[sam3]\"; recipes method-segearth-ov3*",
        model="sam3", masks=False, scores="probabilities", settings=SegEarthOV3Settings,
        outputs={FEATURES, INSTANCES}))

    from resegzoo.methods.proc_sam3.method import NAME as PROC, ProcSam3Settings

    register(MethodSpec(
        PROC, _proc_sam3,
        "ProC-SAM3 (arXiv 2606.21863): SegEarth-OV3's SAM 3 pass with several prompts per class (prompt "
        "pools: text.prompt_pool, --prompt-pool) and presence-guided residual fusion, no training; needs a SAM 3 "
        "model like segearth-ov3; recipes method-proc-sam3*",
        model="sam3", masks=False, scores="probabilities", settings=ProcSam3Settings,
        outputs={FEATURES, INSTANCES}))
