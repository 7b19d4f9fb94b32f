"""SLIC's levels with the colour conversion and smoothing done once: every level equals
scikit-image's own ``slic`` call (the reference), and regions are an option, never the default."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from skimage import data
from skimage.segmentation import slic

from resegzoo.masks import slic as slic_module
from resegzoo.masks.windows import generate_for_windows
from resegzoo.plugins.registry import build_registry
from resegzoo.schema import SchemaError

LEVELS = [64, 32, 16, 8]


def reference(image, n_segments=LEVELS, compactness=10.0, sigma=1.0):
    return [slic(image, n_segments=n, compactness=compactness, sigma=sigma, start_label=1, channel_axis=-1)
            for n in n_segments]


def windows_of_photos():
    """Windows of several sizes and aspect ratios from photographs, plus a flat and a noise window."""
    rng = np.random.default_rng(3)
    astronaut, coffee = data.astronaut(), data.coffee()
    flat = np.zeros((40, 60, 3), np.uint8)
    flat[:, 30:] = (200, 40, 90)
    return [astronaut[100:324, 150:374], coffee[50:147, 200:331], astronaut[300:332, 20:52],
            coffee[10:15, 10:17], astronaut[0:200, 100:436], np.full((24, 24, 3), 77, np.uint8), flat,
            rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)]


@pytest.fixture(scope="module")
def slic_generator():
    return build_registry().mask_generators.get("slic").factory


def test_the_shared_path_is_the_one_in_use():
    """The kernels answer here, so the equalities below test the shared path, not the fallback."""
    assert slic_module._shared_path_agrees()


@pytest.mark.parametrize("index", range(8))
def test_each_level_equals_skimages_own_call(index):
    image = np.ascontiguousarray(windows_of_photos()[index])
    expected = reference(image)
    got = slic_module._shared(image, LEVELS, 10.0, 1.0)
    assert len(got) == len(expected)
    for level, (a, b) in enumerate(zip(got, expected)):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b), f"level {level} of a {image.shape} window differs from slic's"


@pytest.mark.parametrize("compactness, sigma", [(5.0, 0.0), (20.0, 2.5)])
def test_other_settings_equal_skimage_too(compactness, sigma):
    image = np.ascontiguousarray(data.coffee()[200:360, 100:300])
    for a, b in zip(slic_module._shared(image, [50, 7], compactness, sigma),
                    reference(image, [50, 7], compactness, sigma)):
        np.testing.assert_array_equal(a, b)


def test_generator_windows_equal_slic_per_window(slic_generator):
    """What the segmenter asks for (each window's maps) is skimage's slic on that window."""
    image = np.ascontiguousarray(data.astronaut()[:300, :260])
    windows = [(0, 0, 224, 224), (76, 36, 300, 260), (200, 100, 300, 228)]
    maps = generate_for_windows(slic_generator(), image, windows)
    for (y0, x0, y1, x1), got in zip(windows, maps):
        expected = np.stack(reference(np.ascontiguousarray(image[y0:y1, x0:x1]))).astype(np.int32)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, expected)


def test_without_the_kernels_each_level_is_one_public_call(monkeypatch, caplog):
    """Another scikit-image whose kernels are missing: same labels, through slic itself."""
    import skimage.segmentation._slic as kernels

    slic_module._shared_path_agrees.cache_clear()
    monkeypatch.delattr(kernels, "_slic_cython")
    try:
        with caplog.at_level(logging.INFO, logger="resegzoo.masks.slic"):
            image = np.ascontiguousarray(data.coffee()[:64, :80])
            got = slic_module.slic_levels(image, [16, 4], 10.0, 1.0)
        assert "one scikit-image call per level" in caplog.text
        for a, b in zip(got, reference(image, [16, 4])):
            np.testing.assert_array_equal(a, b)
    finally:
        slic_module._shared_path_agrees.cache_clear()


def test_regions_are_an_option_segmenting_each_region_once(slic_generator, monkeypatch):
    image = np.ascontiguousarray(data.astronaut()[:224, :224])
    windows = [(y, x, y + 112, x + 112) for y in (0, 56, 112) for x in (0, 56, 112)]
    calls = []
    real = slic_module.slic_levels

    def counting(pixels, n_segments, compactness, sigma):
        calls.append((pixels.shape[:2], list(n_segments)))
        return real(pixels, n_segments, compactness, sigma)

    monkeypatch.setattr(slic_module, "slic_levels", counting)
    per_window = generate_for_windows(slic_generator(), image, windows)
    assert len(calls) == len(windows)  # the default: every window on its own, all levels at once
    calls.clear()
    regional = generate_for_windows(slic_generator(region_size=224), image, windows)
    # one call for the one 224 px region, with n_segments scaled by its area over a window's (4x)
    assert calls == [((224, 224), [n * 4 for n in LEVELS])]
    assert [m.shape for m in regional] == [m.shape for m in per_window] == [(4, 112, 112)] * 9
    assert all(m.min() >= 1 for m in regional)
    assert any(not np.array_equal(a, b) for a, b in zip(regional, per_window))  # other segments


def test_region_size_must_be_positive(slic_generator):
    with pytest.raises(SchemaError, match="region_size"):
        slic_generator(region_size=0)


def test_the_default_recipe_gives_the_same_labels_as_skimages_slic_per_window(slic_generator):
    """End to end: the pipeline's outputs with the shipped generator are those of a generator
    that calls skimage's slic once per window and level (as resegzoo did before)."""
    import open_clip

    from resegzoo.api import Segmenter, Vocabulary, load_recipe
    from resegzoo.methods.clip.encoder import MaskedClipEncoder
    from resegzoo.testing import make_tiny_clip

    def per_window_reference(pixels):
        return np.stack(reference(pixels)).astype(np.int32)

    image = np.ascontiguousarray(data.astronaut()[::4, ::3][:120, :150])
    vocab = Vocabulary.parse("building; road; tree")
    encoder = MaskedClipEncoder(make_tiny_clip(), open_clip.get_tokenizer("ViT-B-16"))
    results = [Segmenter(encoder, generator, load_recipe(None, window=64, stride=32)).segment(image, vocab)
               for generator in (slic_generator(), per_window_reference)]
    np.testing.assert_array_equal(results[0].labels, results[1].labels)
    np.testing.assert_array_equal(results[0].probs, results[1].probs)
