"""A weighting strategy: called with resegzoo's WeightingContext, returns a WeightingResult."""
from __future__ import annotations


class FixedWeights:
    def __init__(self, first=0.25):
        self.first = float(first)

    def __call__(self, context):
        from resegzoo.compose.weighting import WeightingResult

        n = len(context.labels)
        rest = (1.0 - self.first) / (n - 1)
        return WeightingResult([self.first] + [rest] * (n - 1), {"fixed": [1.0] * n})
