"""Built-in CLIP variants: the zoo records in registry/*.yaml."""
from __future__ import annotations

from resegzoo.plugins.hookspecs import hookimpl


@hookimpl
def resegzoo_register_variants(register):
    from resegzoo.weights.zoo import load_builtin_variants

    for variant in load_builtin_variants():
        register(variant)
