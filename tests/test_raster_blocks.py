"""The block planner (resegzoo.raster.blocks): exact tiling, halos, windows, grid alignment."""
from __future__ import annotations

import math

import numpy as np
import pytest

from resegzoo.raster.blocks import Block, plan_blocks


@pytest.mark.parametrize("height, width, block, halo, scale, window, stride", [
    (1000, 700, 256, 64, 1.0, 224, 112),
    (1000, 700, 256, 64, 0.25, 224, 112),   # resized to 250 x 175: blocks must grow to hold a window
    (517, 1203, 300, 0, 1.0, 64, 32),
    (517, 1203, 128, 40, 2.0, 64, 48),
    (90, 70, 2048, 128, 1.0, 224, 112),      # smaller than one block (and than one window)
    (4097, 333, 1024, 224, 0.5, 448, 224),
])
def test_cores_tile_exactly_and_reads_hold_their_core_and_a_window(height, width, block, halo, scale, window, stride):
    blocks = plan_blocks(height, width, block=block, halo=halo, scale=scale, window=window, stride=stride)
    cover = np.zeros((height, width), np.int32)
    for i, b in enumerate(blocks):
        assert isinstance(b, Block) and b.index == i
        (ry0, rx0, ry1, rx1), (cy0, cx0, cy1, cx1) = b.read, b.core
        cover[cy0:cy1, cx0:cx1] += 1
        assert 0 <= ry0 <= cy0 < cy1 <= ry1 <= height and 0 <= rx0 <= cx0 < cx1 <= rx1 <= width
        # the halo is there wherever the raster allows it
        assert cy0 - ry0 >= min(halo, cy0) and ry1 - cy1 >= min(halo, height - cy1)
        assert cx0 - rx0 >= min(halo, cx0) and rx1 - cx1 >= min(halo, width - cx1)
        # in the resized frame every core holds a whole window (unless the raster itself is smaller)
        for core, full in ((cy1 - cy0, height), (cx1 - cx0, width)):
            assert core * scale >= window - 1 or core == full
        # read boxes start on the whole raster's window grid (exactly, when scale * origin is integral)
        for origin in (ry0, rx0):
            pos = origin * scale
            if abs(pos - round(pos)) < 1e-9:
                assert round(pos) % stride == 0 or origin == 0
    np.testing.assert_array_equal(cover, 1)  # the cores tile the raster: every pixel exactly once


def test_block_size_is_respected_when_windows_allow():
    blocks = plan_blocks(1000, 1000, block=250, halo=10, scale=1.0, window=64)
    assert len(blocks) == 16
    assert {b.core[2] - b.core[0] for b in blocks} == {250}
    # resized to a tenth, a 250 px core is 25 px: smaller than a 64 px window, so fewer, bigger blocks
    coarse = plan_blocks(1000, 1000, block=250, halo=10, scale=0.1, window=64)
    assert len(coarse) < 16 and all((b.core[2] - b.core[0]) * 0.1 >= 64 for b in coarse)
    assert len(coarse) == math.floor(1000 * 0.1 / 64) ** 2


@pytest.mark.parametrize("kwargs", [dict(block=0, halo=1, window=8), dict(block=8, halo=-1, window=8),
                                    dict(block=8, halo=1, window=8, scale=0.0)])
def test_bad_plans_are_errors(kwargs):
    with pytest.raises(ValueError):
        plan_blocks(100, 100, **kwargs)
