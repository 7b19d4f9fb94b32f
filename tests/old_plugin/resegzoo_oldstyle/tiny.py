"""Tiny random CLIP weights, made once into resegzoo's cache folder."""
from __future__ import annotations

import os

TINY_SEEDS = {"oldstyle-tiny-a": 0, "oldstyle-tiny-b": 1}


def make_weights(seed):
    from resegzoo.hub import cache_dir

    path = cache_dir() / "plugins" / "oldstyle" / f"tiny-seed{seed}.safetensors"
    if path.is_file():
        return path
    from safetensors.torch import save_file

    from resegzoo.testing import make_tiny_clip

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in make_tiny_clip(seed=seed).state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp))
    os.replace(tmp, path)
    return path
