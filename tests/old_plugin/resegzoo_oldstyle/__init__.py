"""oldstyle: tiny CLIP variants, stripe masks and a fixed weighting for resegzoo.

Registered through resegzoo's hooks (see ``resegzoo.hookspecs``).
"""
from __future__ import annotations

from functools import partial

from resegzoo.hookspecs import hookimpl
from resegzoo.zoo import ClipVariant

from resegzoo_oldstyle.stripes import StripeMasks
from resegzoo_oldstyle.tiny import TINY_SEEDS, make_weights


@hookimpl
def resegzoo_register_variants(register):
    from resegzoo.testing import tiny_model_config

    for name, seed in TINY_SEEDS.items():
        register(ClipVariant(
            name=name,
            architecture="oldstyle-tiny",
            format="safetensors",
            license="MIT",
            citation="oldstyle plugin",
            model_config=tiny_model_config(),
            fetcher=partial(make_weights, seed),
            description=f"tiny random CLIP (seed {seed})",
            random_weights=True,
        ))


@hookimpl
def resegzoo_register_mask_generators(register):
    from resegzoo.interfaces import MaskGeneratorSpec

    register(MaskGeneratorSpec("oldstyle-stripes", StripeMasks, "vertical stripes at several widths"))


@hookimpl
def resegzoo_register_weightings(register):
    from resegzoo.interfaces import WeightingSpec

    from resegzoo_oldstyle.weighting import FixedWeights

    register(WeightingSpec("oldstyle-fixed", FixedWeights, "the first model gets `first`, the rest share the rest"))
