"""Building one input as a plain open_clip model, for strategies that score text or images.

Models are built one at a time from the same safetensors file the composer averages, so scoring
never holds more than one model.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from resegzoo.compose.inputs import ResolvedInput

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ScoringModel:
    model: Any
    tokenizer: Any
    image_size: int
    mean: Sequence[float]
    std: Sequence[float]

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """(N, D) L2-normalised text embeddings."""
        device = next(self.model.parameters()).device
        out = [self.model.encode_text(self.tokenizer(list(texts[i:i + batch_size])).to(device), normalize=True)
               for i in range(0, len(texts), batch_size)]
        return torch.cat(out).float().cpu()

    @torch.no_grad()
    def encode_patches(self, images: torch.Tensor) -> torch.Tensor:
        """(B, P, D) L2-normalised patch embeddings of the plain model: the last block's patch
        tokens through ln_post and proj (the segmenter's dense readout with an all-global
        schedule, i.e. no attention masking)."""
        from resegzoo.segmenter.encoder import MaskedClipEncoder

        depth = len(self.model.visual.transformer.resblocks)
        encoder = MaskedClipEncoder(self.model, self.tokenizer, rules=["global"] * depth, mean=self.mean, std=self.std)
        return encoder.encode_tokens(images)[:, 1:].cpu()


def load_scoring_model(item: ResolvedInput, device: str = "cpu") -> ScoringModel:
    """Build ``item`` as an open_clip model with its averaged-from weights (open_clip's own loader)."""
    import open_clip
    from open_clip.model import CLIP, CustomTextCLIP

    cfg = copy.deepcopy(item.model_config or {})
    custom_text = cfg.pop("custom_text", False) or "hf_model_name" in cfg.get("text_cfg", {})
    model = (CustomTextCLIP if custom_text else CLIP)(**cfg)
    open_clip.load_checkpoint(model, str(item.weights), strict=True, weights_only=True)
    model = model.to(device).eval()
    text_cfg = cfg.get("text_cfg", {})
    if item.architecture:
        tokenizer = open_clip.get_tokenizer(item.architecture)
    elif text_cfg.get("hf_tokenizer_name"):
        tokenizer = open_clip.tokenizer.HFTokenizer(text_cfg["hf_tokenizer_name"], context_length=text_cfg.get("context_length", 77))
    else:
        tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=text_cfg.get("context_length", 77))
    image_size = cfg.get("vision_cfg", {}).get("image_size", 224)
    image_size = image_size[0] if isinstance(image_size, (list, tuple)) else image_size
    pp = item.preprocess_cfg or {}
    return ScoringModel(model, tokenizer, int(image_size), tuple(pp.get("mean", OPENAI_MEAN)), tuple(pp.get("std", OPENAI_STD)))
