"""The hooks resegzoo calls on its plugins (pluggy project name ``resegzoo``).

Every hook is a register-callback: the plugin calls ``register(...)`` once per thing it adds.
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("resegzoo")
hookimpl = pluggy.HookimplMarker("resegzoo")


@hookspec
def resegzoo_register_variants(register):
    """Add CLIP variants: call ``register(resegzoo.weights.zoo.ClipVariant(...))`` for each."""


@hookspec
def resegzoo_register_mask_generators(register):
    """Add mask generators: call ``register(resegzoo.plugins.interfaces.MaskGeneratorSpec(...))`` for each."""


@hookspec
def resegzoo_register_methods(register):
    """Add segmentation methods: call ``register(resegzoo.methods.base.MethodSpec(...))`` for each."""


@hookspec
def resegzoo_register_weightings(register):
    """Add weighting strategies: call ``register(resegzoo.plugins.interfaces.WeightingSpec(...))`` for each."""


@hookspec
def resegzoo_register_datasets(register):
    """Add datasets: call ``register(resegzoo.plugins.interfaces.DatasetSpec(...))`` for each."""


@hookspec
def resegzoo_register_commands(cli):
    """Add CLI commands to the ``resegzoo`` click group ``cli``."""
