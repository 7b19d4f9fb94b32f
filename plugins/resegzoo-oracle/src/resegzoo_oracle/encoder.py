"""The oracle's encoder (torch): features are colours, see the package docstring."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from resegzoo_oracle import color_of


def embed_color(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3) colours in [0, 255] -> (..., 4) unit vectors; equal vectors only for equal colours.

    Centre to u in [-1, 1]^3, append sqrt(3 - |u|^2) (so |.| = sqrt 3), divide by sqrt 3.
    """
    u = rgb.float() / 127.5 - 1.0
    rest = torch.sqrt((3.0 - (u * u).sum(-1, keepdim=True)).clamp_min(0.0))
    return torch.cat([u, rest], dim=-1) / math.sqrt(3.0)


class OracleEncoder:
    """Follows ``resegzoo.plugin.DenseEncoder``; images are given in [0, 1] (mean 0, std 1)."""

    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)
    #: names are embedded bare: the oracle reads colours from names, not from prompts.
    prompt_templates = ("{}",)

    def __init__(self, patch_size: int = 1, image_size: int = 32, device: str = "cpu") -> None:
        if patch_size < 1 or image_size % patch_size:
            raise ValueError(f"image_size {image_size} must be a positive multiple of patch_size {patch_size}")
        self.patch_size = patch_size
        self.image_size = image_size
        self.device = torch.device(device)
        self.text_calls = 0  # lets tests check that text is embedded once per vocabulary

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        self.text_calls += 1
        colours = torch.tensor(np.array([color_of(t) for t in texts], dtype=np.float32).reshape(-1, 3))
        return embed_color(colours).to(self.device)

    def encode_dense(self, images: torch.Tensor, token_ids: torch.Tensor | None = None,
                     return_cls: bool = False):
        rgb = images.to(self.device).float() * 255.0
        patches = F.avg_pool2d(rgb, self.patch_size)  # (B, 3, gh, gw) mean colour per patch
        feats = embed_color(patches.permute(0, 2, 3, 1))
        if return_cls:
            return feats, embed_color(rgb.mean(dim=(2, 3)))
        return feats


def build(device: str = "cpu", patch_size: int = 1, image_size: int = 32) -> OracleEncoder:
    return OracleEncoder(patch_size=patch_size, image_size=image_size, device=device)
