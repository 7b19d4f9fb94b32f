"""Painting, window grouping, and the weight-free generators (slic, felzenszwalb, none) as plugins."""
from __future__ import annotations

import numpy as np
import pytest

from resegzoo.masks.painting import paint_masks
from resegzoo.masks.windows import generate_for_windows, group_windows
from resegzoo.plugins.registry import build_registry
from resegzoo.schema import SchemaError


@pytest.fixture(scope="module")
def generators():
    return build_registry().mask_generators


def random_masks(seed=0, n=12, shape=(40, 50)):
    """Random rectangles (distinct areas) and random blobs."""
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(n):
        m = np.zeros(shape, bool)
        y, x = rng.integers(0, shape[0] - 5), rng.integers(0, shape[1] - 5)
        m[y:y + rng.integers(3, 30), x:x + rng.integers(3, 30)] = True
        masks.append(m)
    return masks


def test_largest_first_painting_lets_the_smallest_covering_mask_win():
    masks = random_masks()
    areas = [int(m.sum()) for m in masks]
    id_map = paint_masks(masks, (40, 50))
    by_id = sorted(range(len(masks)), key=lambda i: -areas[i])  # id k+1 is the k-th largest
    covered = np.any(masks, axis=0)
    assert id_map.dtype == np.int32
    assert np.array_equal(id_map > 0, covered)
    for y, x in zip(*np.nonzero(covered)):
        covering = [i for i in range(len(masks)) if masks[i][y, x]]
        winner = by_id[id_map[y, x] - 1]
        assert masks[winner][y, x]
        assert areas[winner] == min(areas[i] for i in covering)


def test_sam_order_painting_lets_the_last_mask_win():
    masks = random_masks(1)
    id_map = paint_masks(masks, (40, 50), order="sam-order")
    for y in range(40):
        for x in range(50):
            covering = [i for i in range(len(masks)) if masks[i][y, x]]
            assert id_map[y, x] == (covering[-1] + 1 if covering else 0)


def test_painting_rejects_bad_input():
    assert not paint_masks([], (4, 5)).any()
    with pytest.raises(ValueError, match="paint order"):
        paint_masks([], (4, 5), order="smallest-first")
    with pytest.raises(ValueError, match="shape"):
        paint_masks([np.ones((3, 3), bool)], (4, 5))


@pytest.mark.parametrize("region_size", [224, 448, 500, 1024])
def test_group_windows_covers_every_window_once_within_the_region_size(region_size):
    windows = [(y, x, y + 224, x + 224) for y in range(0, 1200 - 223, 112) for x in range(0, 900 - 223, 112)]
    regions = group_windows(windows, region_size)
    members = sorted(i for r in regions for i in r.members)
    assert members == list(range(len(windows)))
    for region in regions:
        y0, x0, y1, x1 = region.box
        assert y1 - y0 <= region_size and x1 - x0 <= region_size
        for i in region.members:
            wy0, wx0, wy1, wx1 = windows[i]
            assert y0 <= wy0 and x0 <= wx0 and wy1 <= y1 and wx1 <= x1
    if region_size == 1024:
        assert len(regions) <= 4  # (1200 x 900 px: at most 2 x 2 regions of 1024)
    if region_size == 224:
        assert len(regions) == len(windows)


def stripes_image():
    """Four vertical colour stripes with noise: clear segments for the superpixel methods."""
    rng = np.random.default_rng(0)
    image = np.zeros((64, 96, 3), np.uint8)
    for i, colour in enumerate([(200, 40, 40), (40, 200, 40), (40, 40, 200), (220, 220, 40)]):
        image[:, i * 24:(i + 1) * 24] = colour
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", ["slic", "felzenszwalb"])
def test_superpixels_fine_to_coarse_deterministic_ids_from_one(generators, name):
    image = stripes_image()
    maps = generators.get(name).factory()(image)
    assert maps.shape == (4, 64, 96) and maps.dtype == np.int32
    counts = [len(np.unique(m)) for m in maps]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    for m in maps:
        assert m.min() == 1  # every pixel covered; 0 stays "uncovered"
        assert set(np.unique(m)) == set(range(1, m.max() + 1))
    np.testing.assert_array_equal(maps, generators.get(name).factory()(image.copy()))
    # segments follow the colour stripes: >= 95% of the pixels lie in their segment's main stripe
    # (a 2 x 3 grid of boxes, blind to colour, scores 67%)
    stripe = np.broadcast_to(np.arange(96) // 24, (64, 96))
    for m in maps:
        agree = sum(np.bincount(stripe[m == s]).max() for s in np.unique(m))
        assert agree / m.size >= 0.95


def test_superpixel_settings_set_the_levels(generators):
    maps = generators.get("slic").factory(n_segments=[40, 4], compactness=20.0)(stripes_image())
    assert maps.shape[0] == 2
    assert len(np.unique(maps[0])) > len(np.unique(maps[1]))
    felz = generators.get("felzenszwalb").factory(scales=[10.0], min_size=5)(stripes_image())
    assert felz.shape == (1, 64, 96)


def test_superpixels_per_window(generators):
    image = stripes_image()
    generator = generators.get("slic").factory()
    windows = [(0, 0, 32, 48), (16, 40, 64, 96)]
    per_window = generate_for_windows(generator, image, windows)
    for (y0, x0, y1, x1), maps in zip(windows, per_window):
        np.testing.assert_array_equal(maps, generator(np.ascontiguousarray(image[y0:y1, x0:x1])))


def test_none_gives_zero_levels(generators):
    generator = generators.get("none").factory()
    assert generator(stripes_image()).shape == (0, 64, 96)
    assert [m.shape for m in generate_for_windows(generator, stripes_image(), [(0, 0, 10, 20)])] == [(0, 10, 20)]


@pytest.mark.parametrize("name, settings, message", [
    ("slic", {"n_segment": [4]}, "unknown key 'n_segment'"),
    ("slic", {"n_segments": []}, "at least one"),
    ("slic", {"n_segments": [8, -1]}, "positive"),
    ("slic", {"compactness": "high"}, "compactness"),
    ("felzenszwalb", {"scale": [8.0]}, "unknown key 'scale'"),
    ("none", {"levels": 2}, "unknown key 'levels'"),
    ("sam", {"point_per_side": 4}, "unknown key 'point_per_side'"),
    ("sam", {"levels": [{"points_per_sid": 4}]}, r"levels\[0\].*unknown key 'points_per_sid'"),
    ("sam", {"levels": [{}, {"points_per_side": 0}]}, r"levels\[1\].*points_per_side"),
    ("sam", {"levels": []}, "levels is empty"),
    ("sam", {"painting": "smallest-first"}, "painting"),
    ("sam", {"model": "vit_x"}, "model"),
])
def test_unknown_or_bad_settings_are_errors_naming_the_key(generators, name, settings, message):
    with pytest.raises(SchemaError, match=message):
        generators.get(name).factory(**settings)
