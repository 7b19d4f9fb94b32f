"""Model composition: weighted averaging of CLIP variants of one architecture (METHOD.md section 4).

Public API::

    from resegzoo.compose import load_recipe, compose, read_metadata
    result = compose(load_recipe("recipe.yaml"), out="composed/")   # -> ComposeResult
    result.weighting.weights, result.weighting.scores, result.distances.pairs
    read_metadata("composed/")   # recipe, inputs + sha256, weights, scores, resegzoo_version
"""
from resegzoo.compose.composer import ComposeResult, DistanceWarning, compose
from resegzoo.compose.inputs import CompositionError
from resegzoo.compose.output import read_metadata
from resegzoo.compose.recipe import (
    InputModel,
    PromptSet,
    Recipe,
    WeightingConfig,
    load_recipe,
    recipe_from_mapping,
)

__all__ = [
    "ComposeResult", "CompositionError", "DistanceWarning", "InputModel", "PromptSet", "Recipe",
    "WeightingConfig", "compose", "load_recipe", "read_metadata", "recipe_from_mapping",
]


def __getattr__(name: str) -> object:
    """Names that moved away from here still work, with a DeprecationWarning (resegzoo.moved.LEFT)."""
    from resegzoo.moved import left_module_attribute

    return left_module_attribute(__name__, name)
