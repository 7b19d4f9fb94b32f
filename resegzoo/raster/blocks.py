"""The block planner: how a large raster is cut into blocks (pure arithmetic, no I/O).

Each block has a ``core`` (the pixels it is responsible for; the cores tile the raster exactly)
and a ``read`` box (the core plus a halo of context, clipped to the raster). Blocks are planned
in the resized frame the segmenter works in (``scale`` = resized / source size, one factor per
raster): every core, resized, holds at least one full window, so no block is ever edge-padded up
to a window. Read boxes start on the window grid (``stride`` in the resized frame) where the
scale allows it, so a block's windows are the whole image's windows and its core sees the same
context it would in a whole-image run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

Box = tuple[int, int, int, int]  # (y0, x0, y1, x1) in source pixels, end exclusive


@dataclass(frozen=True)
class Block:
    index: int
    read: Box
    core: Box


def _grid_units(scale: float, grid: int) -> tuple[int, int]:
    """(origin step, length step) in source px: read boxes starting at multiples of the first
    land exactly on the resized frame's ``grid``, and lengths in multiples of the second resize
    to whole pixels, so a block is resized exactly as the whole raster is. Scales that are no
    simple fraction get the nearest whole-pixel steps (then blocks agree up to resampling)."""
    frac = Fraction(scale).limit_denominator(4096)
    origin, length = max(1, round(grid / scale)), 1
    if abs(float(frac) - scale) < 1e-12:
        p, q = frac.numerator, frac.denominator
        exact_origin = grid * q // math.gcd(grid * q, p)
        if exact_origin <= 8 * grid / scale:  # a coarser grid would waste too much context
            origin, length = exact_origin, (q if q <= 64 else 1)
    return origin, length


def _axis(length: int, block: int, halo: int, scale: float, window: int, grid: int) -> list[tuple[int, int, int, int]]:
    """(read0, core0, core1, read1) along one axis."""
    min_core = math.ceil(window / scale)  # a core resized to less than a window is never planned
    count = max(1, math.ceil(length / max(block, min_core)))
    if count > 1 and length // count < min_core:
        count = max(1, length // min_core)
    cuts = [round(i * length / count) for i in range(count + 1)]
    origin_step, length_step = _grid_units(scale, grid)
    spans = []
    for c0, c1 in zip(cuts[:-1], cuts[1:]):
        # the read starts on the whole raster's window grid, and resizes to whole pixels
        r0 = max(0, (c0 - halo) // origin_step * origin_step)
        r1 = min(length, r0 + math.ceil((c1 + halo - r0) / length_step) * length_step)
        spans.append((r0, c0, c1, r1))
    return spans


def plan_blocks(height: int, width: int, *, block: int, halo: int, scale: float = 1.0, window: int,
                stride: int | None = None) -> list[Block]:
    """Blocks of about ``block`` x ``block`` source px (cores) with ``halo`` px of context.

    ``window``/``stride`` are the segmenter's sliding window and step in the resized frame;
    ``stride`` (default: ``window``) is the grid read boxes are aligned to."""
    if height < 1 or width < 1:
        raise ValueError(f"a raster of {height}x{width} px has no blocks")
    if block < 1 or halo < 0 or scale <= 0 or window < 1:
        raise ValueError(f"bad block plan: block={block}, halo={halo}, scale={scale}, window={window}")
    grid = stride or window
    rows = _axis(height, block, halo, scale, window, grid)
    cols = _axis(width, block, halo, scale, window, grid)
    blocks = []
    for ry0, cy0, cy1, ry1 in rows:
        for rx0, cx0, cx1, rx1 in cols:
            blocks.append(Block(len(blocks), (ry0, rx0, ry1, rx1), (cy0, cx0, cy1, cx1)))
    return blocks
