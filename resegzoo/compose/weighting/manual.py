"""``manual``: weights given by the user, normalised to sum to 1."""
from __future__ import annotations

import math
from dataclasses import dataclass

from resegzoo.compose.weighting import WeightingContext, WeightingError, WeightingResult


@dataclass
class Manual:
    """User weights, one per input. Must be finite and >= 0 with a positive sum; they are
    divided by their sum, so ``[2, 1, 1]`` means ``[0.5, 0.25, 0.25]``."""

    weights: list[float]

    def __post_init__(self) -> None:
        if any(not math.isfinite(w) for w in self.weights):
            raise WeightingError(f"manual weights must be finite numbers, got {self.weights}")
        if any(w < 0 for w in self.weights):
            raise WeightingError(f"manual weights must be >= 0, got {self.weights}")
        if sum(self.weights) <= 0:
            raise WeightingError(f"manual weights must not all be zero, got {self.weights}")

    def __call__(self, ctx: WeightingContext) -> WeightingResult:
        if len(self.weights) != len(ctx.labels):
            raise WeightingError(
                f"{len(self.weights)} manual weight(s) given for {len(ctx.labels)} input model(s); give one per model"
            )
        total = sum(self.weights)
        weights = [w / total for w in self.weights]
        return WeightingResult(weights=weights, scores={"given": list(self.weights)})
