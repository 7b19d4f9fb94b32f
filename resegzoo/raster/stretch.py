"""The 8-bit stretch of non-8-bit data: per band, low -> 0 and high -> 255.

Between the 2nd and 98th percentile of the VALID pixels of a decimated read (GDAL serves it from
overviews when the file has them), so a huge raster is never read whole for it: of the file, or of
every input of a batch (one stretch for the tiles of one scene, :func:`shared_stretch`), or between
values the user gives (:func:`resegzoo.raster.options.parse_stretch`). The functions take opened
:class:`resegzoo.raster.opening.Raster` objects (which carry a :class:`Stretch`; hence no import of
them here).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

#: an opened raster (:class:`resegzoo.raster.opening.Raster`, which imports this module: named here, not imported)
OpenedRaster = Any

#: longest side of the decimated read used to estimate the stretch (and draw overview overlays)
OVERVIEW_SIDE = 1024


@dataclass(frozen=True)
class Stretch:
    """How non-8-bit data is mapped to 0..255: per band, low -> 0 and high -> 255.

    ``scope``: where low and high come from: ``file`` (percentiles of this file's valid pixels),
    ``batch`` (percentiles of every input's valid pixels: tiles of one scene share one stretch) or
    ``given`` (values the user gave; ``percentiles`` is then None)."""

    low: tuple[float, ...]
    high: tuple[float, ...]
    percentiles: tuple[float, float] | None = (2.0, 98.0)
    scope: str = "file"

    def apply(self, data: np.ndarray) -> np.ndarray:
        lo = np.asarray(self.low, dtype=np.float64)[:, None, None]
        hi = np.asarray(self.high, dtype=np.float64)[:, None, None]
        scaled = (data.astype(np.float64) - lo) / np.maximum(hi - lo, 1e-12) * 255.0
        return np.clip(np.round(scaled), 0, 255).astype(np.uint8)

    def describe(self) -> str:
        values = f"low {_rounded(self.low)}, high {_rounded(self.high)}"
        if self.percentiles is None:
            return f"stretch per band between given values ({values})"
        p0, p1 = self.percentiles
        pixels = "every input's valid pixels" if self.scope == "batch" else "the valid pixels"
        return f"{p0:g}-{p1:g} percentile stretch per band of {pixels} ({values})"

    def to_dict(self) -> dict[str, Any]:
        return {"method": "given" if self.percentiles is None else "percentile", "scope": self.scope,
                "percentiles": None if self.percentiles is None else list(self.percentiles),
                "low": list(self.low), "high": list(self.high)}


def _rounded(values: Sequence[float]) -> str:
    """Stretch values for people: 6 significant digits, not 3263.0599999999395."""
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


#: the stretch choices besides given values (see :func:`parse_stretch`)
STRETCH_SCOPES = ("batch", "file")


def needs_stretch(raster: OpenedRaster) -> bool:
    """Whether the raster's data is not 8-bit colour already (palette bands are colours)."""
    return raster.dtype != "uint8" and raster.palette is None


def estimate_stretch(raster: OpenedRaster, side: int = OVERVIEW_SIDE) -> Stretch | None:
    """2-98 % per band of the VALID pixels of a decimated read; None for 8-bit or palette data."""
    return shared_stretch([raster], side, scope="file")


#: at most this many decimated pixels are read (per band) for a stretch shared by a batch
STRETCH_SAMPLE = 8_000_000


def shared_stretch(rasters: Sequence[OpenedRaster], side: int = OVERVIEW_SIDE, scope: str = "batch",
                   sample: int = STRETCH_SAMPLE) -> Stretch | None:
    """2-98 % per band of the VALID pixels of all ``rasters`` that need a stretch, each read
    decimated by ONE factor (the largest to ``side`` px, as for one file), so every input weighs
    by its area; beyond ``sample`` pixels every k-th is kept. None when none needs a stretch."""
    chosen = [r for r in rasters if needs_stretch(r)]
    if not chosen:
        return None
    factor = min(1.0, side / max(max(r.height, r.width) for r in chosen))
    shapes = [(max(1, round(r.height * factor)), max(1, round(r.width * factor))) for r in chosen]
    step = max(1, math.ceil(sum(h * w for h, w in shapes) / sample))
    parts = []
    for raster, shape in zip(chosen, shapes):
        data, valid = raster.read_raw(out_shape=shape)
        parts.append(data.reshape(3, -1)[:, valid.ravel()][:, ::step].astype(np.float64))
    values = np.concatenate(parts, axis=1)
    if values.shape[1] == 0:  # nothing valid: nothing will be segmented; any finite stretch will do
        return Stretch((0.0,) * 3, (1.0,) * 3, scope=scope)
    low, high = np.percentile(values, [2.0, 98.0], axis=1)
    return Stretch(tuple(float(v) for v in low), tuple(float(v) for v in high), scope=scope)


def with_stretch(rasters: Sequence[OpenedRaster], choice: str | Stretch) -> list[OpenedRaster]:
    """``rasters`` (opened with ``stretch="batch"`` or any) with the stretch ``choice`` of
    :func:`parse_stretch`: ``file`` each its own, ``batch`` one over all, or given values (for
    every raster but palette ones: the user asked for them)."""
    from dataclasses import replace

    if choice == "file":
        return [r if r.stretch is not None and r.stretch.scope == "file" else replace(r, stretch=estimate_stretch(r))
                for r in rasters]
    if choice == "batch":
        shared = shared_stretch(rasters)
        return [replace(r, stretch=shared if needs_stretch(r) else None) for r in rasters]
    if not isinstance(choice, Stretch):
        raise ValueError(f"unknown stretch {choice!r}; use {', '.join(STRETCH_SCOPES)} or a Stretch")
    return [replace(r, stretch=None if r.palette is not None else choice) for r in rasters]

