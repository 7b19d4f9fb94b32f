"""Shared helpers for the segmenter tests (test_schedule/encoder/text/windows/api/segment_cli)."""
from __future__ import annotations

import numpy as np

from resegzoo_oracle import color_of

#: well-separated colour classes the oracle understands
COLOR_CLASSES = ["red", "blue", "green", "yellow"]


def paint(labels: np.ndarray, names: list[str] = COLOR_CLASSES) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8 image, class k painted color_of(names[k])."""
    image = np.zeros((*labels.shape, 3), dtype=np.uint8)
    for k, name in enumerate(names):
        image[labels == k] = color_of(name)
    return image


def block_labels(height: int, width: int, cell: int, num_classes: int = 4, seed: int = 0) -> np.ndarray:
    """A random map of ``cell`` x ``cell`` blocks of classes, cropped to height x width."""
    rng = np.random.default_rng(seed)
    gh, gw = -(-height // cell), -(-width // cell)
    grid = rng.integers(0, num_classes, size=(gh, gw))
    return grid.repeat(cell, 0).repeat(cell, 1)[:height, :width].astype(np.int32)


def stripes(height: int, width: int, num_classes: int = 3) -> np.ndarray:
    """Vertical stripes of equal width: class k in the k-th stripe (boundaries off the grid)."""
    cols = (np.arange(width) * num_classes) // width
    return np.broadcast_to(cols[None, :], (height, width)).astype(np.int32).copy()
