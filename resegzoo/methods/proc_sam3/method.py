"""The ``proc-sam3`` method: ProC-SAM3's scores behind the method seam.

Everything but the fusion is SegEarth-OV3's: the same SAM 3 loaded the same way
(:func:`~resegzoo.methods.segearth_ov3.method.load_sam3_scorer`), the same image pass and batched
prompts; the pipeline takes each class's best prompt and applies the background threshold
(``prob_thd``). The prompt pools are the vocabulary's (the recipe's ``text.prompt_pool``), so
they reach this method as ordinary synonyms. ``method.settings`` is :class:`ProcSam3Settings`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from resegzoo.methods.segearth_ov3.method import SegEarthOV3Method, SegEarthOV3Settings, load_sam3_scorer

NAME = "proc-sam3"


@dataclass
class ProcSam3Settings(SegEarthOV3Settings):
    """SegEarth-OV3's switches (ProC-SAM3's segmentor takes the same ones) and its residual fusion."""

    #: Presence-Guided Residual Fusion (``semantic_instance_fusion: pgrf``); false: SegEarth-OV3's
    #: max rule (``max``)
    residual: bool = True

    # SegEarthOV3Settings.__post_init__ checks the rest (one of the heads must be on)


class ProcSam3Method(SegEarthOV3Method):
    """A loaded SAM 3 with ProC-SAM3's fusion rule (the method seam's ``Method``)."""

    def __init__(self, scorer: Any, settings: ProcSam3Settings, model: str = "") -> None:
        from resegzoo.methods.proc_sam3.fusion import ProcSwitches

        super().__init__(scorer, settings, model=model)
        self.switches = ProcSwitches(confidence_threshold=settings.confidence_threshold,
                                     instances=settings.instances, semantic=settings.semantic,
                                     presence=settings.presence, residual=settings.residual)


def build(context: Any) -> ProcSam3Method:
    """The method seam's factory: SAM 3 as SegEarth-OV3 loads it; under ``--precision bf16`` only
    the image encoder runs in bf16 and the prompt encoder and decoders in float32 (ProC-SAM3's
    ``image_encoder_dtype='bf16'``, ``inference_dtype='fp32'``)."""
    scorer = load_sam3_scorer(context, method=NAME, decoder_precision="fp32")
    return ProcSam3Method(scorer, context.settings, model=context.model)
