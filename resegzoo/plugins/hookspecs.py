"""The hooks resegzoo calls on its plugins (pluggy project name ``resegzoo``).

Every hook is a register-callback: the plugin calls ``register(...)`` once per thing it adds.
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("resegzoo")
hookimpl = pluggy.HookimplMarker("resegzoo")


@hookspec
def resegzoo_register_models(register):
    """Add model weights of any kind (CLIP, SAM, SAM 2.1, SAM 3, your own): call
    ``register(resegzoo.weights.records.ModelRecord(...))`` for each. Every record shares one
    namespace: ``resegzoo list models``, ``resegzoo fetch NAME`` and ``--model NAME`` find it."""


@hookspec
def resegzoo_register_variants(register):
    """Earlier releases' hook, still called: ``register(ClipVariant(...))`` adds a CLIP record, as
    ``resegzoo_register_models`` does (new plugins implement that one)."""


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
