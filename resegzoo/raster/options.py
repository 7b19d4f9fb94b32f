"""The user's raster options as text (``--bands``, ``--nodata``, ``--stretch``) -> values."""
from __future__ import annotations

import math

from resegzoo.raster.errors import ImageError
from resegzoo.raster.stretch import Stretch


def parse_bands(text: str | None) -> tuple[int, ...] | None:
    """``"4,3,2"`` -> (4, 3, 2); 1-based band numbers; one band means grey."""
    if text is None or not text.strip():
        return None
    try:
        bands = tuple(int(b) for b in text.split(","))
    except ValueError:
        raise ImageError(f"--bands {text!r}: give band numbers separated by commas, e.g. 4,3,2") from None
    if len(bands) not in (1, 3) or any(b < 1 for b in bands):
        raise ImageError(f"--bands {text!r}: give 3 band numbers (R,G,B) or 1 (grey), counting from 1")
    return bands


def parse_nodata(text: str | None) -> float | None:
    """``--nodata`` text -> a number (``nan`` allowed)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise ImageError(f"--nodata {text!r}: give a number, e.g. 0, -9999 or nan") from None


def parse_stretch(text: str | None) -> str | Stretch:
    """``--stretch``: ``batch`` (the default: one percentile stretch over every input), ``file``
    (one per file), or given values ``LOW:HIGH`` for every band or ``L1:H1,L2:H2,L3:H3`` per band."""
    if text is None or text.strip().lower() in ("", "batch"):
        return "batch"
    if text.strip().lower() == "file":
        return "file"
    usage = (f"--stretch {text!r}: give batch, file, LOW:HIGH for every band or L1:H1,L2:H2,L3:H3 per band "
             "(e.g. 0:3000)")
    try:
        pairs = [tuple(float(v) for v in part.split(":")) for part in text.split(",")]
    except ValueError:
        raise ImageError(usage) from None
    if len(pairs) not in (1, 3) or any(len(p) != 2 for p in pairs):
        raise ImageError(usage)
    if any(not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo for lo, hi in pairs):
        raise ImageError(f"--stretch {text!r}: each HIGH must be above its LOW, both finite numbers")
    pairs = pairs * 3 if len(pairs) == 1 else pairs
    return Stretch(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), percentiles=None, scope="given")


