"""``uniform``: every input counts the same (the paper's plain model soup)."""
from __future__ import annotations

from dataclasses import dataclass

from resegzoo.compose.weighting import WeightingContext, WeightingResult


@dataclass
class Uniform:
    """Equal weights 1/M; needs no model."""

    def __call__(self, ctx: WeightingContext) -> WeightingResult:
        m = len(ctx.labels)
        return WeightingResult(weights=[1.0 / m] * m)
