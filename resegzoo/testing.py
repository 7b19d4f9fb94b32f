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
