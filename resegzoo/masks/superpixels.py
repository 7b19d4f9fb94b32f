"""Weight-free mask generators from scikit-image: SLIC and Felzenszwalb at several scales.

They need no checkpoint, so they are the offline default and what tests use. Every pixel gets a
segment (ids start at 1; 0, "uncovered", never occurs). Both are deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from resegzoo.masks.painting import MAX_MASK_LEVELS, MAX_REGION_SIZE, Box, check_image
from resegzoo.masks.windows import region_groups, windows_from_regions, windows_one_by_one
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
    #: null: each window is segmented on its own (the reference's segments). A size in px: windows
    #: are grouped into regions of up to this many px per side, each segmented once with
    #: ``n_segments`` scaled by its area over a window's, and cut per window (as SAM's regions):
    #: fewer SLIC runs over overlapping windows, but other segments (benchmarks/README.md).
    region_size: int | None = field(default=None, metadata=limit(MAX_REGION_SIZE))

    def __post_init__(self) -> None:
        check_limits(self)
        _positive("n_segments", self.n_segments)
        if self.region_size is not None and self.region_size < 1:
            raise ValueError(f"region_size must be positive or null, got {self.region_size}")


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
    ``levels``: one function per level, image -> (H, W) map. ``all_levels`` (optional): image ->
    every level's map at once, where the levels share work. With ``region_size`` windows are
    grouped into regions segmented once each (``region_levels(region, ratio)``: every level's map
    of a region ``ratio`` times a window's area) and cut per window.
    """

    def __init__(self, levels: Sequence[Callable[[np.ndarray], np.ndarray]], description: str, *,
                 all_levels: Callable[[np.ndarray], Sequence[np.ndarray]] | None = None,
                 region_size: int | None = None,
                 region_levels: Callable[[np.ndarray, float], Sequence[np.ndarray]] | None = None) -> None:
        self._levels = list(levels)
        self._all_levels = all_levels
        self._region_levels = region_levels
        self.description = description
        self.level_count = len(self._levels)
        self.region_size = region_size

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = check_image(image)
        if not self._levels:
            return np.zeros((0, *image.shape[:2]), dtype=np.int32)
        if self._all_levels is not None:
            return _stacked(self._all_levels(image))
        return _stacked([level(image) for level in self._levels])

    def generate_windows(self, image: np.ndarray, windows: Sequence[Box]) -> list[np.ndarray]:
        if self.region_size is None or self._region_levels is None or not self._levels:
            return windows_one_by_one(self, image, windows)
        area = max(((y1 - y0) * (x1 - x0) for y0, x0, y1, x1 in windows), default=1)
        region_levels = self._region_levels

        def region(pixels: np.ndarray) -> np.ndarray:
            return _stacked(region_levels(check_image(pixels), pixels.shape[0] * pixels.shape[1] / area))

        return windows_from_regions(region, image, windows, self.region_size)

    def window_groups(self, windows: Sequence[Box]) -> list[list[int]]:
        """Windows whose maps are made together (:func:`resegzoo.masks.windows.window_groups`):
        each alone, or by region with ``region_size``."""
        if self.region_size is None or self._region_levels is None or not self._levels:
            return [[i] for i in range(len(windows))]
        return region_groups(windows, self.region_size)

    def __repr__(self) -> str:
        return f"SuperpixelGenerator({self.description})"


def _stacked(maps: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack([np.asarray(m).astype(np.int32, copy=False) for m in maps])


def build_slic(**settings: Any) -> SuperpixelGenerator:
    """The ``slic`` factory: each level equals ``skimage.segmentation.slic``'s own call, the colour
    conversion and smoothing shared by all levels (:mod:`resegzoo.masks.slic`)."""
    from resegzoo.masks.slic import slic_levels

    s = from_mapping(SlicSettings, settings, "slic settings")

    def level(n: int) -> Callable[[np.ndarray], np.ndarray]:
        return lambda image: slic_levels(image, [n], s.compactness, s.sigma)[0]

    def all_levels(image: np.ndarray) -> list[np.ndarray]:
        return slic_levels(image, s.n_segments, s.compactness, s.sigma)

    def region_levels(image: np.ndarray, ratio: float) -> list[np.ndarray]:
        scaled = [min(MAX_SEGMENTS, max(1, round(n * ratio))) for n in s.n_segments]
        return slic_levels(image, scaled, s.compactness, s.sigma)

    region = "" if s.region_size is None else f" region_size={s.region_size}"
    return SuperpixelGenerator([level(n) for n in s.n_segments], f"slic n_segments={s.n_segments}{region}",
                               all_levels=all_levels, region_size=s.region_size, region_levels=region_levels)


def build_felzenszwalb(**settings: Any) -> SuperpixelGenerator:
    """The ``felzenszwalb`` factory."""
    from skimage.segmentation import felzenszwalb

    s = from_mapping(FelzenszwalbSettings, settings, "felzenszwalb settings")

    def level(scale: float) -> Callable[[np.ndarray], np.ndarray]:
        # felzenszwalb numbers segments from 0; shift so 0 stays "uncovered".
        return lambda image: felzenszwalb(image, scale=scale, sigma=s.sigma, min_size=s.min_size,
                                          channel_axis=-1) + 1

    return SuperpixelGenerator([level(v) for v in s.scales], f"felzenszwalb scales={s.scales}")
