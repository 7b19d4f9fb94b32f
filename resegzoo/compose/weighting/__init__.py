"""Weighting strategies: how much each input model counts in the average.

A strategy is a callable dataclass whose fields are its parameters (validated strictly from the
recipe's ``weighting.params``); called with a :class:`WeightingContext` it returns a
:class:`WeightingResult`: weights >= 0 that sum to 1, and the per-model scores behind them.
Strategies are registered as plugins (``resegzoo.builtin.weightings``) through
``resegzoo_register_weightings``, exactly as a third-party strategy would be.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from resegzoo.errors import ResegzooError
from resegzoo.compose.recipe import PromptSet


class WeightingError(ResegzooError, ValueError):
    """Bad weighting parameters (negative, NaN or all-zero weights, too few templates, ...)."""


@dataclass
class WeightingResult:
    weights: list[float]
    #: score name -> one value per input model (in input order), e.g. consistency / separation / quality
    scores: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_weights(self.weights)


@dataclass
class WeightingContext:
    """What a strategy may look at. ``load_model(i)`` returns a :class:`ScoringModel` for input i."""

    labels: Sequence[str]
    vocabulary: PromptSet
    load_model: Callable[[int], Any]
    device: str = "cpu"


def check_weights(weights: Sequence[float]) -> None:
    if not weights:
        raise WeightingError("no weights")
    bad = [w for w in weights if not math.isfinite(w) or w < 0]
    if bad:
        raise WeightingError(f"weights must be finite and >= 0, got {list(weights)}")
    if abs(sum(weights) - 1.0) > 1e-6:
        raise WeightingError(f"weights must sum to 1, got {list(weights)} (sum {sum(weights)})")


def softmax(values: Sequence[float], tau: float) -> list[float]:
    """softmax(values / tau), stable; tau > 0 is the temperature (small tau: winner takes all)."""
    if not tau > 0:
        raise WeightingError(f"the temperature tau must be > 0, got {tau}")
    top = max(values)
    exps = [math.exp((v - top) / tau) for v in values]
    total = sum(exps)
    return [e / total for e in exps]
