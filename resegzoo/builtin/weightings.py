"""Built-in weighting strategies for model composition, registered like any plugin's."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from resegzoo.plugins.hookspecs import hookimpl


def _strict(target: str) -> Callable[..., Any]:
    """A factory for the strategy class ``module:Class`` that validates ``weighting.params``
    against its dataclass fields. The import waits until the strategy is used (torch is heavy)."""

    def factory(**params: Any) -> Any:
        from resegzoo.schema import from_mapping

        module, name = target.split(":")
        return from_mapping(getattr(importlib.import_module(module), name), params, where="weighting.params")

    return factory


@hookimpl
def resegzoo_register_weightings(register):
    from resegzoo.plugins.interfaces import WeightingSpec

    pkg = "resegzoo.compose.weighting"
    register(WeightingSpec("uniform", _strict(f"{pkg}.uniform:Uniform"), "equal weights 1/M"))
    register(WeightingSpec(
        "manual", _strict(f"{pkg}.manual:Manual"), "user weights (params: weights: [..]), normalised to sum 1"
    ))
    register(WeightingSpec(
        "prompt-quality", _strict(f"{pkg}.prompt_quality:PromptQuality"),
        "softmax((text consistency across templates - class separation) / tau) (params: tau)",
    ))
    register(WeightingSpec(
        "image-agreement", _strict(f"{pkg}.image_agreement:ImageAgreement"),
        "softmax(agreement of patch labels across templates on unlabelled images / tau) "
        "(params: images: [..], tau, max_images)",
    ))
