"""How far apart the inputs are: relative L2 distance per pair of inputs, overall and per block.

rel(a, b) = ||a - b|| / sqrt((||a||^2 + ||b||^2) / 2). Two fine-tunes of one model are typically
well below 0.3; two independent initialisations of the same architecture land near sqrt(2) ~ 1.4.
Averaging models that do not share an initialisation destroys them (METHOD.md section 4).
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import torch


def block_of(key: str) -> str:
    """Group a tensor name by transformer block (``visual.transformer.resblocks.3``) or module."""
    parts = key.split(".")
    if "resblocks" in parts:
        i = parts.index("resblocks")
        return ".".join(parts[: i + 2])
    return ".".join(parts[:-1]) or key


@dataclass
class _Sums:
    diff: float = 0.0
    norm_a: float = 0.0
    norm_b: float = 0.0

    def relative(self) -> float:
        scale = math.sqrt((self.norm_a + self.norm_b) / 2)
        return math.sqrt(self.diff) / scale if scale > 0 else 0.0


@dataclass
class DistanceReport:
    labels: list[str]
    #: (label_i, label_j) -> relative L2 distance over all floating tensors
    pairs: dict[tuple[str, str], float]
    #: block -> (label_i, label_j) -> relative L2 distance inside that block
    blocks: dict[str, dict[tuple[str, str], float]]
    threshold: float

    def far_pairs(self) -> list[tuple[str, str, float]]:
        return [(a, b, d) for (a, b), d in self.pairs.items() if d > self.threshold]

    def warnings(self) -> list[str]:
        return [
            f"inputs {a!r} and {b!r} are far apart (relative L2 distance {d:.3f} > {self.threshold}); "
            f"they probably do not share an initialisation, and their average is likely a broken model"
            for a, b, d in self.far_pairs()
        ]

    def farthest_blocks(self, n: int = 5) -> list[tuple[str, str, str, float]]:
        """The ``n`` (block, a, b, distance) entries with the largest distances."""
        rows = [(blk, a, b, d) for blk, per in self.blocks.items() for (a, b), d in per.items()]
        return sorted(rows, key=lambda r: -r[3])[:n]

    def to_dict(self) -> dict:
        return {
            "threshold": self.threshold,
            "pairs": [{"a": a, "b": b, "relative_l2": d} for (a, b), d in self.pairs.items()],
            "blocks": {blk: {f"{a} / {b}": d for (a, b), d in per.items()} for blk, per in self.blocks.items()},
        }


@dataclass
class DistanceMeter:
    """Accumulates squared norms tensor by tensor, so it runs inside the single merge pass."""

    labels: Sequence[str]
    threshold: float = 0.5
    _total: dict[tuple[int, int], _Sums] = field(default_factory=lambda: defaultdict(_Sums))
    _blocks: dict[str, dict[tuple[int, int], _Sums]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(_Sums)))

    def add(self, key: str, sq_norms: Sequence[float], sq_dists: dict[tuple[int, int], float]) -> None:
        """Add one tensor (or one chunk of it): squared norms per input, squared distances per pair."""
        for (i, j), diff in sq_dists.items():
            for sums in (self._total[(i, j)], self._blocks[block_of(key)][(i, j)]):
                sums.diff += diff
                sums.norm_a += sq_norms[i]
                sums.norm_b += sq_norms[j]

    def update(self, key: str, tensors: Sequence[torch.Tensor]) -> None:
        """Add one tensor of every input, computing norms and distances from scratch."""
        if not tensors[0].is_floating_point():
            return
        flat = [t.reshape(-1).float() for t in tensors]
        sq_norms = [float(torch.linalg.vector_norm(f)) ** 2 for f in flat]
        self.add(key, sq_norms, {(i, j): float(torch.dist(flat[i], flat[j])) ** 2
                                 for i, j in combinations(range(len(flat)), 2)})

    def report(self) -> DistanceReport:
        name = lambda ij: (self.labels[ij[0]], self.labels[ij[1]])
        return DistanceReport(
            labels=list(self.labels),
            pairs={name(ij): s.relative() for ij, s in self._total.items()},
            blocks={blk: {name(ij): s.relative() for ij, s in per.items()} for blk, per in self._blocks.items()},
            threshold=self.threshold,
        )
