"""Helpers for the composition tests: tiny open_clip models saved in real checkpoint layouts.

Inputs are written with the safetensors library itself (not resegzoo's writer), so the tests
check resegzoo against an independent implementation of the format.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import save_file

from resegzoo.testing import make_tiny_clip, tiny_model_config


def related_models(n: int, seed: int = 0, spread: float = 0.01) -> list[torch.nn.Module]:
    """``n`` fine-tune-like variants of one tiny model: a shared initialisation plus small noise."""
    base = make_tiny_clip(seed)
    gen = torch.Generator().manual_seed(1000 + seed)
    models = []
    for _ in range(n):
        model = copy.deepcopy(base)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * spread)
        models.append(model)
    return models


def save_folder(model_or_sd, folder: Path, config: dict | None = None) -> Path:
    """An open_clip model folder (open_clip_config.json + open_clip_model.safetensors)."""
    sd = model_or_sd if isinstance(model_or_sd, dict) else model_or_sd.state_dict()
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": config or tiny_model_config()}))
    return folder


def save_folders(models: Sequence, root: Path) -> list[str]:
    return [str(save_folder(m, root / f"model{i}")) for i, m in enumerate(models)]


def reference_average(state_dicts: Sequence[dict], weights: Sequence[float]) -> dict:
    """sum_m w_m theta_m computed the obvious way, in float64, cast back to each tensor's dtype."""
    out = {}
    for key, first in state_dicts[0].items():
        if first.is_floating_point():
            total = sum(w * sd[key].double() for w, sd in zip(weights, state_dicts))
            out[key] = total.to(first.dtype)
        else:
            out[key] = first.clone()
    return out


def load_safetensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))
