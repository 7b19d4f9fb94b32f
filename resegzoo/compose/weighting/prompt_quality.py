"""``prompt-quality``: weigh models by how well their text tower keeps classes stable and apart.

METHOD.md section 4. For model m, classes c and templates t, u(m,c,t) is the normalised text
embedding of template t filled with class c.
- consistency a_m: mean over c of the mean pairwise cosine of u(m,c,t), u(m,c,t') for t != t';
- separation b_m: mean over c != c' of the cosine between class centroids (normalised mean over
  templates, as the segmenter builds a class embedding); lower is better;
- quality q_m = a_m - b_m, weights w = softmax(q / tau).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from resegzoo.compose.weighting import (
    WeightingContext,
    WeightingError,
    WeightingResult,
    softmax,
)


def mean_offdiagonal(sim: torch.Tensor) -> torch.Tensor:
    """Mean of the off-diagonal entries of (..., n, n) similarity matrices."""
    n = sim.shape[-1]
    total = sim.sum(dim=(-1, -2)) - sim.diagonal(dim1=-2, dim2=-1).sum(-1)
    return total / (n * (n - 1))


def prompt_scores(u: torch.Tensor) -> tuple[float, float]:
    """(consistency, separation) from u of shape (C classes, T templates, D), rows normalised."""
    consistency = mean_offdiagonal(u @ u.transpose(1, 2)).mean()
    centroids = torch.nn.functional.normalize(u.mean(dim=1), dim=-1)
    separation = mean_offdiagonal(centroids @ centroids.T)
    return float(consistency), float(separation)


@dataclass
class PromptQuality:
    """softmax((consistency - separation) / tau) over the recipe's vocabulary and templates."""

    tau: float = 0.05

    def __post_init__(self) -> None:
        if not self.tau > 0:
            raise WeightingError(f"prompt-quality: tau must be > 0, got {self.tau}")

    def __call__(self, ctx: WeightingContext) -> WeightingResult:
        classes, templates = ctx.vocabulary.classes, ctx.vocabulary.templates
        if len(classes) < 2 or len(templates) < 2:
            raise WeightingError("prompt-quality needs at least 2 classes and 2 templates in the vocabulary")
        prompts = [t.replace("{}", c) for c in classes for t in templates]
        a, b = [], []
        for i in tqdm(range(len(ctx.labels)), desc="prompt-quality", unit="model"):
            scoring = ctx.load_model(i)
            u = scoring.encode_text(prompts).reshape(len(classes), len(templates), -1)
            del scoring  # one model in memory at a time
            ai, bi = prompt_scores(u)
            a.append(ai)
            b.append(bi)
        q = [ai - bi for ai, bi in zip(a, b)]
        return WeightingResult(
            weights=softmax(q, self.tau), scores={"consistency": a, "separation": b, "quality": q}
        )
