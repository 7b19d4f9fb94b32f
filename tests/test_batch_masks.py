"""Segments made at the grain of encoder batches: each generator's window groups give the maps of
one call for all windows; the next batch's segments are made while the encoder runs this one; the
outputs do not change (SLIC, Felzenszwalb, SLIC by region, SAM's regions, SAM behind its cache)."""
from __future__ import annotations

import threading

import numpy as np
import open_clip
import pytest

from resegzoo.api import Segmenter, Vocabulary, load_recipe
from resegzoo.masks.cache import CachedMaskGenerator
from resegzoo.masks.sam import SamLevel, SamMaskGenerator
from resegzoo.masks.superpixels import build_felzenszwalb, build_slic
from resegzoo.masks.testing import make_colour_sam
from resegzoo.masks.windows import generate_for_windows, group_windows, window_groups
from resegzoo.methods.clip.encoder import MaskedClipEncoder
from resegzoo.segmenter.windows import WindowPlan
from resegzoo.testing import make_tiny_clip

LEVEL = SamLevel(points_per_side=3, pred_iou_thresh=0.0, stability_score_thresh=0.0, min_mask_region_area=0,
                 crop_n_layers=0)


def scene(height=150, width=200, seed=0):
    """Colour blocks with noise: SLIC, Felzenszwalb and the colour SAM find segments."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, (height // 25 + 1, width // 25 + 1, 3))
    image = np.kron(cells, np.ones((25, 25, 1)))[:height, :width]
    return np.clip(image + rng.normal(0, 5, image.shape), 0, 255).astype(np.uint8)


GENERATORS = {
    "slic": lambda tmp: build_slic(),
    "felzenszwalb": lambda tmp: build_felzenszwalb(),
    "slic-regions": lambda tmp: build_slic(region_size=96),
    "sam-regions": lambda tmp: SamMaskGenerator(make_colour_sam(), [LEVEL] * 4, region_size=96),
    "sam-cached": lambda tmp: CachedMaskGenerator(SamMaskGenerator(make_colour_sam(), [LEVEL] * 4, region_size=96),
                                                  tmp / "cache", {"test": "sam-cached"}),
}


@pytest.mark.parametrize("name", GENERATORS)
def test_maps_made_group_by_group_are_those_of_one_call(name, tmp_path):
    plan = WindowPlan.make(128, 224, 64, 32, "pad")  # 18 windows; SAM: 6 regions in 2 groups
    image, windows = plan.pad(scene(128, 224), "edge"), list(plan.windows)
    generator = GENERATORS[name](tmp_path)
    groups = window_groups(generator, windows)
    assert sorted(i for g in groups for i in g) == list(range(len(windows)))
    if name in ("slic", "felzenszwalb"):
        assert all(len(g) == 1 for g in groups)  # each window alone
    else:
        assert 1 < len(groups) < len(windows)  # regions of several windows
    whole = generate_for_windows(generator, image, windows)
    for group in groups:
        for i, maps in zip(group, generate_for_windows(generator, image, [windows[i] for i in group])):
            np.testing.assert_array_equal(maps, whole[i])


def tiny_segmenter(generator, prefetch, batch_size=4):
    encoder = MaskedClipEncoder(make_tiny_clip(), open_clip.get_tokenizer("ViT-B-16"))
    return Segmenter(encoder, generator, load_recipe(None, window=64, stride=32, prefetch=prefetch,
                                                     batch_size=batch_size))


def test_the_next_batchs_segments_are_made_while_the_encoder_runs_this_one():
    """One band of 12 windows (128 x 160 px) in 3 batches of 4: the segments of the third batch
    are made only after the encoder took the first (before: the whole band's segments came first)."""
    events = []
    inner = build_slic()

    def generator(pixels):
        events.append(("mask", threading.current_thread().name))
        return inner(pixels)

    seg = tiny_segmenter(generator, prefetch=1)
    real = seg.method.window_scores

    def window_scores(*args, **kwargs):
        events.append(("encode", threading.current_thread().name))
        return real(*args, **kwargs)

    seg.method.window_scores = window_scores
    seg.logits(scene(128, 160), Vocabulary.parse("building; road; tree"))
    kinds = [kind for kind, _ in events]
    assert kinds.count("mask") == 12 and kinds.count("encode") == 3
    first_encode = kinds.index("encode")
    # before the encoder starts: the first batch's segments, perhaps some of the second's
    assert 4 <= first_encode <= 8
    assert kinds[first_encode + 1:].count("mask") >= 4  # the third batch's, at least, came after
    assert all(thread.startswith("resegzoo-prefetch") for kind, thread in events if kind == "mask")
    assert all(not thread.startswith("resegzoo-prefetch") for kind, thread in events if kind == "encode")


@pytest.mark.parametrize("name", GENERATORS)
def test_outputs_are_the_same_with_and_without_prefetch(name, tmp_path):
    """Segments made in turn (prefetch 0), or batch by batch ahead of the encoder with the first
    batch made by prepare (as segment and eval do): the same labels and probabilities."""
    image = scene(96, 160, seed=2)  # 8 windows, 2 batches; SAM's regions span both
    vocab = Vocabulary.parse("building; road; tree")
    results = []
    for prefetch in (0, 1):
        seg = tiny_segmenter(GENERATORS[name](tmp_path / str(prefetch)), prefetch)
        results.append(seg.segment(seg.prepare(image) if prefetch else image, vocab))
    np.testing.assert_array_equal(results[1].labels, results[0].labels)
    np.testing.assert_array_equal(results[1].probs, results[0].probs)


def test_a_generator_whose_groups_leave_a_window_out_is_an_error():
    class Broken:
        level_count = 4

        def __call__(self, image):
            return np.ones((4, *image.shape[:2]), np.int32)

        def window_groups(self, windows):
            return [[0]]

    seg = tiny_segmenter(Broken(), prefetch=0)
    with pytest.raises(ValueError, match="window_groups"):
        seg.logits(scene(), Vocabulary.parse("building; road"))


def test_sam_regions_are_made_once_whatever_the_batch(tmp_path):
    """A region's windows spread over several encoder batches: SAM still runs once per region."""
    sam = make_colour_sam()
    calls = []
    sam.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    generator = SamMaskGenerator(sam, [LEVEL] * 4, region_size=96)
    windows = list(WindowPlan.make(150, 200, 64, 32, "pad").windows)
    tiny_segmenter(generator, prefetch=1, batch_size=3).logits(scene(), Vocabulary.parse("road; tree"))
    regions = group_windows(windows, 96)
    assert len(regions) > 1 and any(len(r.members) > 3 for r in regions)  # regions span batches
    assert len(calls) == len(regions)  # one image-encoder pass per region (one crop each)
