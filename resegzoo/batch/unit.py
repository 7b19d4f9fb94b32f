"""One unit of outputs and the batch around it, as data: :class:`RasterJob` (an input's plan and the
files it becomes), :class:`BatchResult` (what it did, and the table printed after it). Where and
how a batch writes is :class:`resegzoo.batch.options.SegmentOptions`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from resegzoo.batch.job import RasterPlan


@dataclass
class RasterJob:
    """One input to segment: its plan and where its outputs go."""

    plan: RasterPlan
    destination: Path
    probs_destination: Path | None = None
    overlay: Path | None = None
    sidecar: Path | None = None

    @property
    def stem(self) -> str:
        assert self.sidecar is not None
        return self.sidecar.name.removesuffix(".json")

    @property
    def folder(self) -> Path:
        """Where its outputs go (the output folder, or a mirrored input folder below it)."""
        return self.destination.parent


@dataclass
class BatchResult:
    """What a batch did: the sidecar records of the units written, the inputs skipped (their
    result was there), and the inputs that failed with why."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)
    #: how many inputs were asked for (files found)
    inputs: int = 0
    #: per written input: its path mirrored under the output folder, its record, its outputs
    units: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)

    def summary(self) -> str:
        return summary(self.units)


def summary(units: Sequence[tuple[str, dict[str, Any], str]]) -> str:
    """The table printed after a batch: per input (its path as mirrored under the output folder,
    its sidecar record, the outputs written) one row, and the total."""
    width = max([32] + [len(image) for image, _, _ in units])
    counted = any("objects" in r for _, r, _ in units)  # --objects: a column of object counts
    head = f" {'objects':>8}" if counted else ""
    lines = [f"{'image':<{width}} {'pixels':>12} {'nodata':>7} {'classes':>7}{head} {'seconds':>8}  outputs"]
    for image, r, outputs in units:
        objects = f" {r['objects']['count'] if 'objects' in r else '-':>8}" if counted else ""
        lines.append(f"{image:<{width}} {r['size'][0] * r['size'][1]:>12,} "
                     f"{r['nodata']['fraction']:>7.1%} {sum(1 for v in r['pixel_fraction'].values() if v > 0):>7}"
                     f"{objects} {r['seconds']:>8.2f}  {outputs}")
    total_px = sum(r["size"][0] * r["size"][1] for _, r, _ in units)
    classes = {n for _, r, _ in units for n, v in r["pixel_fraction"].items() if v > 0}
    total_objects = f" {sum(r['objects']['count'] for _, r, _ in units if 'objects' in r):>8}" if counted else ""
    lines.append(f"{f'total: {len(units)} images':<{width}} {total_px:>12,} {'':>7} {len(classes):>7}{total_objects} "
                 f"{sum(r['seconds'] for _, r, _ in units):>8.2f}")
    if counted:  # objects per class, summed over the inputs
        per_class: dict[str, int] = {}
        for _, r, _ in units:
            for name, n in r.get("objects", {}).get("per_class", {}).items():
                per_class[name] = per_class.get(name, 0) + n
        lines.append("objects: " + ", ".join(f"{name} {n}" for name, n in per_class.items()))
    timed = [r["time"] for _, r, _ in units if isinstance(r.get("time"), dict)]
    if timed:  # where the time went (resegzoo.runtime.timing): the stages, summed over the inputs
        from resegzoo.runtime.timing import STAGES, describe

        lines.append("time: " + describe({name: sum(t.get(name, 0.0) for t in timed) for name in STAGES}))
    return "\n".join(lines)

