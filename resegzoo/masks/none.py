"""The ``none`` mask generator: no segment levels at all (with an all-global schedule: plain CLIP)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from resegzoo.masks.painting import Box, check_image, check_windows
from resegzoo.schema import SchemaError


class NoMasks:
    """Returns (0, H, W) int32: zero levels."""

    level_count = 0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = check_image(image)
        return np.zeros((0, *image.shape[:2]), dtype=np.int32)

    def generate_windows(self, image: np.ndarray, windows: Sequence[Box]) -> list[np.ndarray]:
        image = check_image(image)
        boxes = check_windows(windows, image.shape[0], image.shape[1])
        return [np.zeros((0, y1 - y0, x1 - x0), dtype=np.int32) for y0, x0, y1, x1 in boxes]


def build_none(**settings: Any) -> NoMasks:
    """The ``none`` factory; it has no settings."""
    if settings:
        raise SchemaError(f"none settings: unknown key {next(iter(settings))!r}; the none generator has no settings")
    return NoMasks()
