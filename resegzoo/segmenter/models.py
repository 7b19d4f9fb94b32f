"""Turning names into parts: a model spec into a DenseEncoder, a generator name into a generator."""
from __future__ import annotations

from typing import Any, Mapping

from resegzoo.segmenter.recipe import SegmentRecipe


def build_encoder(spec: str, recipe: SegmentRecipe, device: str = "cpu", architecture: str | None = None) -> Any:
    """A DenseEncoder for ``spec``.

    A registry variant with a ``build`` callable (format ``custom``, e.g. the oracle plugin) builds
    its own encoder; anything else goes through ``resegzoo.loading.load_clip`` and is wrapped in
    the masked-attention encoder configured by the recipe's schedule and extras.
    """
    from resegzoo.loading import load_clip, resolve_variant
    from resegzoo.segmenter.core import ModelLoadError
    from resegzoo.segmenter.encoder import MaskedClipEncoder, UnsupportedModelError

    from resegzoo.hub import FetchError

    try:
        variant = resolve_variant(spec)  # None for paths, local-dir: and hf-hub:
        if variant is not None and variant.build is not None:
            return variant.build(device=device)
        loaded = load_clip(spec, device=device, architecture=architecture)
    except (LookupError, OSError, ValueError, FetchError) as exc:
        raise ModelLoadError(f"cannot load model {spec!r}: {exc}") from exc
    try:
        return MaskedClipEncoder.from_loaded(
            loaded, rules=recipe.schedule.rules, uncovered=recipe.schedule.uncovered,
            segearth_last_block=recipe.extras.segearth_last_block)
    except UnsupportedModelError as exc:
        raise ModelLoadError(f"model {spec!r}: {exc}") from exc


def build_mask_generator(name: str, settings: Mapping[str, Any], precision: str | None = None) -> Any:
    """The registered mask generator ``name`` built with ``settings`` (the recipe's masks.settings).

    ``precision`` (the recipe's ``inference.precision``) is passed on to generators that declare
    it in ``runtime_settings`` and whose settings do not set it themselves.
    Raises ModelLoadError (unknown name, bad settings, a checkpoint that cannot be fetched)."""
    from resegzoo.hub import FetchError
    from resegzoo.registry import get_registry
    from resegzoo.segmenter.core import ModelLoadError

    try:
        spec = get_registry().mask_generators.get(name)
        settings = dict(settings)
        if precision is not None and "precision" in spec.runtime_settings:
            settings.setdefault("precision", precision)
        return spec.factory(**settings)
    except (LookupError, OSError, ValueError, TypeError, FetchError) as exc:
        raise ModelLoadError(f"cannot build mask generator {name!r}: {exc}") from exc
