"""Turning names into parts: a generator name into a mask generator.

The CLIP method's model building (``build_encoder``, ``fit_schedule``, ``text_tower_key``) moved to
:mod:`resegzoo.methods.clip.build`; ``ModelLoadError`` and ``mask_level_count`` to
:mod:`resegzoo.methods.base`; ``random_weights_note`` to :mod:`resegzoo.weights.resolve`. The old
names still work here, with a DeprecationWarning (``ModelLoadError`` without one: the API names it).
"""
from __future__ import annotations

from typing import Any, Mapping

from resegzoo.methods.base import ModelLoadError


def build_mask_generator(name: str, settings: Mapping[str, Any], precision: str | None = None) -> Any:
    """The registered mask generator ``name`` built with ``settings`` (the recipe's masks.settings).

    ``precision`` (the recipe's ``inference.precision``) is passed on to generators that declare
    it in ``runtime_settings`` and whose settings do not set it themselves.
    Raises ModelLoadError (unknown name, bad settings, a checkpoint that cannot be fetched)."""
    from resegzoo.plugins.registry import get_registry
    from resegzoo.weights.zoo import FetchError

    try:
        spec = get_registry().mask_generators.get(name)
        settings = dict(settings)
        if precision is not None and "precision" in spec.runtime_settings:
            settings.setdefault("precision", precision)
        return spec.factory(**settings)
    except (LookupError, OSError, ValueError, TypeError, FetchError) as exc:
        raise ModelLoadError(f"cannot build mask generator {name!r}: {exc}") from exc


def __getattr__(name: str) -> Any:
    """Names that moved away from here still work, with a DeprecationWarning (resegzoo.moved.LEFT)."""
    from resegzoo.moved import left_module_attribute

    return left_module_attribute(__name__, name)
