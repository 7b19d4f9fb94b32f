"""Tiny open_clip models for tests and plugin authors: real architecture, a few MB, random weights."""
from __future__ import annotations

import copy
from typing import Any

#: A 8-block ViT (so the default schedule's last 6 special blocks fit) with a tiny text tower.
#: open_clip model-config layout, as in open_clip_config.json's ``model_cfg``.
TINY_MODEL_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 64, "layers": 8, "width": 64, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2},
}


def tiny_model_config(**vision_overrides: Any) -> dict[str, Any]:
    """A copy of :data:`TINY_MODEL_CONFIG`, with vision settings overridden."""
    cfg = copy.deepcopy(TINY_MODEL_CONFIG)
    cfg["vision_cfg"].update(vision_overrides)
    return cfg


def make_tiny_clip(seed: int = 0, config: dict[str, Any] | None = None):
    """A randomly initialised open_clip ``CLIP`` in eval mode, reproducible from ``seed``."""
    import open_clip
    import torch

    cfg = copy.deepcopy(config or TINY_MODEL_CONFIG)
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = open_clip.CLIP(
            embed_dim=cfg["embed_dim"],
            vision_cfg=cfg["vision_cfg"],
            text_cfg=cfg["text_cfg"],
            quick_gelu=cfg.get("quick_gelu", False),
        )
        # open_clip zero-inits nothing useful for tests; perturb every parameter so that
        # positional embeddings, biases and norms all matter in equality checks.
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.02)
    finally:
        torch.random.set_rng_state(gen_state)
    return model.eval()


#: A SAM 3 (transformers' Sam3Config) small enough for tests: 56 px input, 14 px patches, 2 ViT
#: blocks, 32-wide everywhere, 10 queries; the full CLIP vocabulary so real token ids fit.
#: About 1.8 M parameters (7 MB), built in well under a second on a CPU.
TINY_SAM3_CONFIG: dict[str, Any] = {
    "vision_config": {
        "backbone_config": {"model_type": "sam3_vit_model", "hidden_size": 32, "intermediate_size": 64,
                            "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 56, "patch_size": 14,
                            "window_size": 2, "global_attn_indexes": [1], "pretrain_image_size": 28},
        "fpn_hidden_size": 32, "backbone_feature_sizes": [[16, 16], [8, 8], [4, 4]]},
    "text_config": {"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 64, "projection_dim": 32,
                    "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 32},
    "geometry_encoder_config": {"hidden_size": 32, "num_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
    "detr_encoder_config": {"hidden_size": 32, "num_layers": 1, "num_attention_heads": 2, "intermediate_size": 64},
    "detr_decoder_config": {"hidden_size": 32, "num_layers": 2, "num_queries": 10, "num_attention_heads": 2,
                            "intermediate_size": 64},
    "mask_decoder_config": {"hidden_size": 32, "num_upsampling_stages": 2, "num_attention_heads": 2},
}


def make_tiny_sam3(seed: int = 0, config: dict[str, Any] | None = None):
    """A randomly initialised transformers ``Sam3Model`` in eval mode, reproducible from ``seed``
    (every parameter perturbed, so zero-initialised biases and norms matter in equality checks)."""
    import torch
    from transformers import Sam3Config, Sam3Model

    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = Sam3Model(Sam3Config(**copy.deepcopy(config or TINY_SAM3_CONFIG)))
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.02)
    finally:
        torch.random.set_rng_state(gen_state)
    return model.eval()


def save_tiny_sam3(folder: Any, seed: int = 0) -> Any:
    """Write :func:`make_tiny_sam3` with ``save_pretrained`` (no tokenizer files: resegzoo then
    uses open_clip's CLIP BPE) and return the folder."""
    from pathlib import Path

    folder = Path(folder)
    make_tiny_sam3(seed).save_pretrained(str(folder))
    return folder
