"""resegzoo entry point: registers the oracle CLIP models (built by this plugin, no weights file)."""
from __future__ import annotations

import functools

from resegzoo.plugin import hookimpl


@hookimpl
def resegzoo_register_models(register):
    from resegzoo.plugin import ClipDetails, ModelRecord

    for name, patch in (("oracle", 1), ("oracle-p4", 4)):
        register(ModelRecord(
            name=name,
            kind="clip",
            details=ClipDetails(architecture="oracle"),
            license="Apache-2.0",
            citation="resegzoo test plugin (no publication)",
            description=f"synthetic colour encoder for tests: patch {patch} px, window 32 px",
            build=functools.partial(_build, patch_size=patch, image_size=32),
        ))


def _build(device: str = "cpu", patch_size: int = 1, image_size: int = 32):
    # imported when a model is built, not when variants are listed: the encoder imports torch
    from resegzoo_oracle.encoder import build

    return build(device=device, patch_size=patch_size, image_size=image_size)
