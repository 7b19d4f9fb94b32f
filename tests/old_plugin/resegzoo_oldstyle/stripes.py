"""Vertical stripes as segments (follows resegzoo.interfaces.MaskGenerator)."""
from __future__ import annotations

import numpy as np


class StripeMasks:
    def __init__(self, widths=(8, 16, 32, 64)):
        self.widths = sorted(int(w) for w in widths)
        self.level_count = len(self.widths)

    def __call__(self, image):
        height, width = image.shape[:2]
        cols = np.arange(width)[None, :].repeat(height, axis=0)
        return np.stack([cols // w + 1 for w in self.widths]).astype(np.int32)
