"""resegzoo entry point: registers the oracle CLIP variants."""
from __future__ import annotations

import functools

from resegzoo.plugins.hookspecs import hookimpl


@hookimpl
def resegzoo_register_variants(register):
    from resegzoo.weights.zoo import ClipVariant

    from resegzoo_oracle import build

    for name, patch in (("oracle", 1), ("oracle-p4", 4)):
        register(ClipVariant(
            name=name,
            architecture="oracle",
            format="custom",
            license="Apache-2.0",
            citation="resegzoo test plugin (no publication)",
            description=f"synthetic colour encoder for tests: patch {patch} px, window 32 px",
            build=functools.partial(build, patch_size=patch, image_size=32),
        ))
