"""Building one input as a plain open_clip model, for strategies that score text or images.

Models are built one at a time from the same safetensors file the composer averages, so scoring
never holds more than one model, and by the builder segment and eval use
(:func:`resegzoo.weights.build.build_clip`), so a scored model is exactly the model that would segment.
"""
from __future__ import annotations

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
        from resegzoo.methods.clip.text_tower import encode_tokens

        device = next(self.model.parameters()).device
        tokens = self.tokenizer(list(texts)).to(device)
        out = torch.nn.functional.normalize(encode_tokens(self.model, tokens, chunk=batch_size), dim=-1)
        return out.float().cpu()

    @torch.no_grad()
    def encode_patches(self, images: torch.Tensor) -> torch.Tensor:
        """(B, P, D) L2-normalised patch embeddings of the plain model: the last block's patch
        tokens through ln_post and proj (the segmenter's dense readout with an all-global
        schedule, i.e. no attention masking)."""
        from resegzoo.methods.clip.encoder import MaskedClipEncoder

        depth = len(self.model.visual.transformer.resblocks)
        encoder = MaskedClipEncoder(self.model, self.tokenizer, rules=["global"] * depth, mean=self.mean, std=self.std)
        return encoder.encode_tokens(images)[:, 1:].cpu()


def load_scoring_model(item: ResolvedInput, device: str = "cpu") -> ScoringModel:
    """Build ``item`` as an open_clip model with its averaged-from weights."""
    from resegzoo.weights.build import build_clip
    from resegzoo.weights.read import read_state_dict

    assert item.model_config is not None  # resolve_inputs fills it in or refuses the input
    loaded = build_clip(read_state_dict(item.weights), item.model_config, name=item.label,
                        architecture=item.architecture, preprocess=item.preprocess_cfg, device=device)
    return ScoringModel(loaded.model, loaded.tokenizer, loaded.image_size, loaded.mean, loaded.std)
