"""A mask generator that needs nothing: a regular grid of square cells at several scales."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class GridMaskGenerator:
    """Split the image into ``cell x cell`` squares, one level per cell size, finest first.

    Follows :class:`resegzoo.plugin.MaskGenerator`: H x W x 3 uint8 in, L x H x W int32 out,
    segment ids start at 1 (0 would mean "not covered"; a grid covers every pixel).
    """

    def __init__(self, cells: Sequence[int] = (16, 32, 64, 128)) -> None:
        cells = [int(c) for c in cells]
        if not cells or any(c < 1 for c in cells):
            raise ValueError(f"cells must be positive sizes in pixels, got {list(cells)}")
        self.cells = sorted(cells)  # finest first
        self.level_count = len(self.cells)  # resegzoo checks it against the attention schedule

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H x W x 3 image, got shape {image.shape}")
        height, width = image.shape[:2]
        rows = np.arange(height)[:, None]
        cols = np.arange(width)[None, :]
        levels = []
        for cell in self.cells:
            per_row = -(-width // cell)  # cells across, rounded up
            levels.append((rows // cell) * per_row + (cols // cell) + 1)
        return np.stack(levels).astype(np.int32)
