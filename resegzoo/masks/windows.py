"""Id maps for sliding windows: group windows into regions a generator runs on once, then cut.

The segmenter asks for segments of every CLIP window. Running a generator per window repeats
work where windows overlap; :func:`group_windows` packs windows into regions of at most
``region_size`` pixels per side so a generator (SAM) runs once per region and each window gets
its part of the region's id maps (segments are cut at window borders, which is harmless: the
attention masks only compare ids inside one window).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from resegzoo.masks.painting import Box, check_image, check_windows, cut_window


@dataclass(frozen=True)
class Region:
    """A box of the image and the indices (into the caller's window list) of the windows inside it."""

    box: Box
    members: tuple[int, ...]


def group_windows(windows: Sequence[Box], region_size: int) -> list[Region]:
    """Pack windows into regions of at most ``region_size`` x ``region_size`` pixels.

    Greedy in reading order: the first window not yet placed opens a region reaching
    ``region_size`` down and right from its corner; every unplaced window lying wholly inside
    joins it; the region then shrinks to the bounding box of its windows. A window larger than
    ``region_size`` gets a region of its own. Every window lands in exactly one region.
    """
    if region_size < 1:
        raise ValueError(f"region_size must be positive, got {region_size}")
    order = sorted(range(len(windows)), key=lambda i: (windows[i][0], windows[i][1], i))
    placed = [False] * len(windows)
    regions: list[Region] = []
    for first in order:
        if placed[first]:
            continue
        ry0, rx0 = windows[first][0], windows[first][1]
        ry1, rx1 = ry0 + region_size, rx0 + region_size
        members = [first]
        placed[first] = True
        for i in order:
            y0, x0, y1, x1 = windows[i]
            if not placed[i] and y0 >= ry0 and x0 >= rx0 and y1 <= ry1 and x1 <= rx1:
                members.append(i)
                placed[i] = True
        box = (
            min(windows[i][0] for i in members),
            min(windows[i][1] for i in members),
            max(windows[i][2] for i in members),
            max(windows[i][3] for i in members),
        )
        regions.append(Region(box, tuple(sorted(members))))
    return regions


#: regions whose crops share one call of a ``many`` generator (SAM's image-encoder batches)
REGIONS_PER_CALL = 4


def region_groups(windows: Sequence[Box], region_size: int, regions_per_call: int = 1) -> list[list[int]]:
    """The indices of ``windows`` as :func:`windows_from_regions` makes their maps: by region of
    :func:`group_windows`, ``regions_per_call`` regions at a time. The windows of one group,
    given alone, form the same regions again (their first window in reading order opens each),
    so making the maps group by group gives the maps of one call for all windows."""
    regions = group_windows(windows, region_size)
    return [sorted(i for region in regions[s:s + regions_per_call] for i in region.members)
            for s in range(0, len(regions), regions_per_call)]


def window_groups(generator: Callable[[np.ndarray], np.ndarray], windows: Sequence[Box]) -> list[list[int]]:
    """Indices of ``windows`` whose maps are made together: no group's maps depend on a window
    outside it, so the segmenter can make them group by group, as encoder batches need them.

    The generator's own ``window_groups(windows)`` when it has one (SAM's regions, SLIC's); a
    generator without ``generate_windows`` segments each window alone (one group each); any
    other gets all windows as one group (its ``generate_windows`` may depend on all of them)."""
    own = getattr(generator, "window_groups", None)
    if callable(own):
        return [list(group) for group in own([tuple(w) for w in windows])]
    if callable(getattr(generator, "generate_windows", None)):
        return [list(range(len(windows)))] if len(windows) else []
    return [[i] for i in range(len(windows))]


def windows_from_regions(
    generate: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    windows: Sequence[Sequence[int]],
    region_size: int,
    progress: Callable[[int], None] | None = None,
    many: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None,
    regions_per_call: int = REGIONS_PER_CALL,
) -> list[np.ndarray]:
    """Run ``generate`` once per region of :func:`group_windows` and cut each window's maps.

    ``many`` (optional) generates the maps of several region images in one call (SAM batches
    their crops through the image encoder); it gets up to ``regions_per_call`` regions at a time.
    """
    image = check_image(image)
    boxes = check_windows(windows, image.shape[0], image.shape[1])
    out: list[np.ndarray | None] = [None] * len(boxes)
    regions = group_windows(boxes, region_size)
    step = regions_per_call if many is not None else 1
    for start in range(0, len(regions), step):
        group = regions[start:start + step]
        pixels = [np.ascontiguousarray(image[r.box[0]:r.box[2], r.box[1]:r.box[3]]) for r in group]
        all_maps = many(pixels) if many is not None else [generate(pixels[0])]
        for region, maps in zip(group, all_maps):
            for i in region.members:
                out[i] = cut_window(maps, boxes[i], origin=(region.box[0], region.box[1]))
            if progress is not None:
                progress(len(region.members))
    # group_windows places every window in exactly one region, so every slot is filled.
    return out  # type: ignore[return-value]


def windows_one_by_one(
    generate: Callable[[np.ndarray], np.ndarray], image: np.ndarray, windows: Sequence[Sequence[int]]
) -> list[np.ndarray]:
    """Run ``generate`` on each window's pixels separately."""
    image = check_image(image)
    boxes = check_windows(windows, image.shape[0], image.shape[1])
    return [generate(np.ascontiguousarray(image[y0:y1, x0:x1])) for y0, x0, y1, x1 in boxes]


def generate_for_windows(generator: Callable[[np.ndarray], np.ndarray], image: np.ndarray,
                         windows: Sequence[Sequence[int]]) -> list[np.ndarray]:
    """Each window's (L, h, w) id maps from any mask generator.

    Uses the generator's own ``generate_windows`` when it has one (SAM: one run per region),
    else runs the generator on each window. This is what the segmenter calls.
    """
    own = getattr(generator, "generate_windows", None)
    if callable(own):
        return list(own(image, [tuple(w) for w in windows]))
    return windows_one_by_one(generator, image, windows)
