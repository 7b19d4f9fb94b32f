"""Weight-free mask generators from scikit-image: SLIC and Felzenszwalb at several scales.

They need no checkpoint, so they are the offline default and what tests use. Every pixel gets a
segment (ids start at 1; 0, "uncovered", never occurs). Both are deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from resegzoo.masks.painting import MAX_MASK_LEVELS, Box, check_image
from resegzoo.masks.windows import windows_one_by_one
from resegzoo.schema import check_limits, from_mapping, limit

#: the most SLIC segments per level (SLIC allocates per segment; a 4096 px window has 16 M pixels)
MAX_SEGMENTS = 1 << 16


def _positive(name: str, values: Sequence[float]) -> None:
    if not values:
        raise ValueError(f"{name} needs at least one value (one per level)")
    if any(v <= 0 for v in values):
        raise ValueError(f"{name} must all be positive, got {list(values)}")


@dataclass(frozen=True)
class SlicSettings:
    #: target number of segments per level, finest first (one level per value).
    n_segments: list[int] = field(default_factory=lambda: [64, 32, 16, 8],
                                  metadata=limit(MAX_SEGMENTS, items=MAX_MASK_LEVELS))
    #: colour vs space balance; higher gives squarer segments.
    compactness: float = 10.0
    #: Gaussian smoothing before segmenting (pixels).
    sigma: float = 1.0

    def __post_init__(self) -> None:
        check_limits(self)
        _positive("n_segments", self.n_segments)


@dataclass(frozen=True)
class FelzenszwalbSettings:
    #: Felzenszwalb's scale per level, finest first; a higher scale gives larger segments.
    scales: list[float] = field(default_factory=lambda: [32.0, 64.0, 128.0, 256.0],
                                metadata=limit(items=MAX_MASK_LEVELS))
    #: Gaussian smoothing before segmenting (pixels).
    sigma: float = 0.8
    #: smallest segment, in pixels (at every level).
    min_size: int = 20

    def __post_init__(self) -> None:
        check_limits(self)
        _positive("scales", self.scales)
        if self.min_size < 1:
            raise ValueError(f"min_size must be at least 1, got {self.min_size}")


class SuperpixelGenerator:
    """L levels of superpixels, one per setting value; windows are segmented one by one.

    Per window, because SLIC's ``n_segments`` counts segments per image: running each CLIP window
    on its own keeps the segment size relative to the window the same for any image size.
    """

    def __init__(self, levels: Sequence[Callable[[np.ndarray], np.ndarray]], description: str) -> None:
        self._levels = list(levels)
        self.description = description
        self.level_count = len(self._levels)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = check_image(image)
        if not self._levels:
            return np.zeros((0, *image.shape[:2]), dtype=np.int32)
        return np.stack([level(image).astype(np.int32) for level in self._levels])

    def generate_windows(self, image: np.ndarray, windows: Sequence[Box]) -> list[np.ndarray]:
        return windows_one_by_one(self, image, windows)

    def __repr__(self) -> str:
        return f"SuperpixelGenerator({self.description})"


def build_slic(**settings: Any) -> SuperpixelGenerator:
    """The ``slic`` factory."""
    from skimage.segmentation import slic

    s = from_mapping(SlicSettings, settings, "slic settings")

    def level(n: int) -> Callable[[np.ndarray], np.ndarray]:
        return lambda image: slic(image, n_segments=n, compactness=s.compactness, sigma=s.sigma,
                                  start_label=1, channel_axis=-1)

    return SuperpixelGenerator([level(n) for n in s.n_segments], f"slic n_segments={s.n_segments}")


def build_felzenszwalb(**settings: Any) -> SuperpixelGenerator:
    """The ``felzenszwalb`` factory."""
    from skimage.segmentation import felzenszwalb

    s = from_mapping(FelzenszwalbSettings, settings, "felzenszwalb settings")

    def level(scale: float) -> Callable[[np.ndarray], np.ndarray]:
        # felzenszwalb numbers segments from 0; shift so 0 stays "uncovered".
        return lambda image: felzenszwalb(image, scale=scale, sigma=s.sigma, min_size=s.min_size,
                                          channel_axis=-1) + 1

    return SuperpixelGenerator([level(v) for v in s.scales], f"felzenszwalb scales={s.scales}")
