"""The public API: recipes, Segmenter.from_recipe, results, background, extras, input checks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from resegzoo.api import ModelLoadError, SegmentRecipe, Segmenter, Vocabulary, check_image, load_recipe
from resegzoo.schema import SchemaError
from resegzoo.methods.clip.extras import majority_vote
from resegzoo.methods.clip.settings import settings_of
from resegzoo_oracle import build, color_of, embed_color
from segment_helpers import COLOR_CLASSES, block_labels, paint

REPO = Path(__file__).resolve().parents[1]


def test_recipe_defaults_follow_method():
    r = load_recipe()
    clip = settings_of(r)
    assert r.inference.logit_scale == 50.0 and r.inference.stride is None and r.inference.window is None
    assert clip.schedule.rules is None and clip.schedule.uncovered == "group"
    assert clip.templates == "reference" and r.masks.generator == "slic"
    assert not (clip.extras.last_block or clip.extras.majority_vote or clip.extras.cls_token_lambda)
    assert r.inference.background_threshold is None
    # the commented default recipe in the registry is exactly the defaults
    assert load_recipe(REPO / "registry" / "recipes" / "segment-default.yaml") == SegmentRecipe()


def test_recipe_overrides(tmp_path):
    path = tmp_path / "r.yml"
    path.write_text("inference:\n  window: 64\n  stride: 32\nmasks:\n  generator: felzenszwalb\n")
    r = load_recipe(path, stride=16, model="oracle", extras={"majority_vote": True}, short_side=None)
    assert (r.inference.window, r.inference.stride, r.masks.generator) == (64, 16, "felzenszwalb")
    assert r.model == "oracle" and settings_of(r).extras.majority_vote and r.inference.short_side is None
    assert settings_of(load_recipe(None, generator="none", rules=["global"] * 8)).schedule.rules == ["global"] * 8


@pytest.mark.parametrize("text, message", [
    ("inference:\n  windw: 32\n", "unknown key 'windw' (did you mean 'window'?)"),
    ("schedule:\n  rules: [global, segmnt:1]\n", "bad attention rule 'segmnt:1'"),
    ("inference:\n  window: 16\n  stride: 32\n", "larger than the window"),
    ("inference:\n  background_threshold: 1.5\n", "background_threshold must be in (0, 1)"),
    ("schedule:\n  uncovered: everyone\n", "'everyone' is not one of"),
    ("- a list\n", "a recipe is a mapping"),
])
def test_bad_recipes_name_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(SchemaError) as err:
        load_recipe(path)
    assert message in str(err.value)


def test_unknown_override_is_an_error():
    with pytest.raises(SchemaError, match="unknown recipe setting 'windows'"):
        load_recipe(None, windows=3)


def test_from_recipe_with_oracle_plugin_and_text_once():
    seg = Segmenter.from_recipe(load_recipe(None, window=16), model="oracle", masks="none")
    vocab = Vocabulary([[n] for n in COLOR_CLASSES])
    labels = block_labels(30, 41, cell=3)
    for _ in range(2):
        res = seg.segment(paint(labels), vocab)
        np.testing.assert_array_equal(res.labels, labels)
    assert seg.encoder.text_calls == 1  # text embedded once per vocabulary, not per window/image
    assert res.class_names == COLOR_CLASSES and res.background_index is None
    assert res.probs.dtype == np.float32 and res.labels.dtype == np.int32


def test_synonyms_score_by_their_best_name():
    seg = Segmenter(build(), None, load_recipe())
    labels = block_labels(20, 20, cell=4, num_classes=3)
    image = paint(labels, ["red", "blue", "yellow"])
    res = seg.segment(image, Vocabulary([["green", "red"], ["blue"], ["#ffff00", "cyan"]]))
    np.testing.assert_array_equal(res.labels, labels)


def test_background_class_is_last():
    labels = block_labels(24, 24, cell=4, num_classes=3)
    image = paint(labels, ["red", "blue", "gray"])  # gray is not in the vocabulary
    seg = Segmenter(build(), None, load_recipe(None, background_threshold=0.9))
    res = seg.segment(image, Vocabulary.parse("red; blue"))
    assert res.class_names == ["red", "blue", "background"] and res.background_index == 2
    np.testing.assert_array_equal(res.labels, labels)  # gray -> 2 = background
    assert res.probs.shape == (2, 24, 24)


def test_cls_token_bias_adds_lambda_times_cls_logits():
    image = paint(block_labels(32, 32, cell=8))  # exactly one 32 px window
    vocab = Vocabulary([[n] for n in COLOR_CLASSES])
    plain, _ = Segmenter(build(), None, load_recipe()).logits(image, vocab)
    biased, _ = Segmenter(build(), None, load_recipe(None, cls_token_lambda=-0.3)).logits(image, vocab)
    cls = embed_color(torch.from_numpy(image.reshape(-1, 3).astype(np.float32)).mean(0))
    names = embed_color(torch.tensor([color_of(n) for n in COLOR_CLASSES], dtype=torch.float32))
    expected = plain + (-0.3) * (names @ cls)[:, None, None]
    torch.testing.assert_close(biased, expected, atol=1e-5, rtol=0)


def test_majority_vote_function():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(12, 12))
    segments = rng.integers(0, 4, size=(12, 12))
    voted = majority_vote(labels, segments)
    for s in range(1, 4):
        inside = segments == s
        counts = np.bincount(labels[inside], minlength=3)
        assert (voted[inside] == np.argmax(counts)).all()
    np.testing.assert_array_equal(voted[segments == 0], labels[segments == 0])
    np.testing.assert_array_equal(majority_vote(np.array([[0, 1]]), np.array([[5, 5]])), [[0, 0]])  # tie


def test_majority_vote_in_the_pipeline():
    labels = np.zeros((20, 30), np.int32)
    labels[:, 15:] = 1
    labels[3:5, 3:5] = 1  # noise inside the left (red) half
    image = paint(labels, ["red", "blue"])

    def halves(img):  # one level: left half segment 1, right half segment 2
        ids = np.ones((1, *img.shape[:2]), np.int32)
        ids[0, :, img.shape[1] // 2:] = 2
        return ids

    recipe = load_recipe(None, majority_vote=True)
    res = Segmenter(build(), halves, recipe).segment(image, Vocabulary.parse("red; blue"))
    expected = np.zeros_like(labels)
    expected[:, 15:] = 1
    np.testing.assert_array_equal(res.labels, expected)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((5, 5), np.uint8), "shape"),
    (np.zeros((5, 5, 3), np.float32), "uint8"),
    (np.zeros((1, 1, 3), np.uint8), "at least 2x2"),
])
def test_check_image(bad, message):
    with pytest.raises(ValueError, match=message):
        check_image(bad)


def test_model_errors():
    with pytest.raises(ModelLoadError, match="no model given"):
        Segmenter.from_recipe(load_recipe(), masks="none")
    with pytest.raises(ModelLoadError, match="did you mean 'oracle'"):
        Segmenter.from_recipe(load_recipe(), model="orcale", masks="none")


def test_masked_encoder_needs_levels_its_schedule_reads(tiny_clip):
    import open_clip

    from resegzoo.methods.clip.encoder import MaskedClipEncoder

    enc = MaskedClipEncoder(tiny_clip, open_clip.tokenize)  # default schedule: levels 0..3
    seg = Segmenter(enc, lambda img: np.zeros((0, *img.shape[:2]), np.int32), load_recipe())
    with pytest.raises(ValueError, match="gave 0 level"):
        seg.segment(np.zeros((64, 64, 3), np.uint8), Vocabulary.parse("road; tree"))
    plain = MaskedClipEncoder(tiny_clip, open_clip.tokenize, rules=["global"] * 8)
    res = Segmenter(plain, None, load_recipe()).segment(np.zeros((64, 80, 3), np.uint8), Vocabulary.parse("a; b"))
    assert res.labels.shape == (64, 80)


def test_fixed_scale_overrides_short_side():
    seg = Segmenter(build(), None, load_recipe(None, short_side=64))
    image = paint(block_labels(20, 30, cell=5))
    _, info = seg.logits(image, Vocabulary([[n] for n in COLOR_CLASSES]))
    assert info["resized_to"] == [64, 96]
    logits, info = seg.logits(image, Vocabulary([[n] for n in COLOR_CLASSES]), scale=1.5)
    assert info["resized_to"] == [30, 45] and logits.shape == (4, 20, 30)


def test_generators_with_generate_windows_get_all_windows_at_once():
    calls = []

    class RegionGenerator:
        def __call__(self, img):
            raise AssertionError("per-window call: generate_windows should have been used")

        def generate_windows(self, img, windows):
            calls.append((img.shape, list(windows)))
            return [np.ones((1, y1 - y0, x1 - x0), np.int32) for (y0, x0, y1, x1) in windows]

    seg = Segmenter(build(), RegionGenerator(), load_recipe(None, window=16, stride=8))
    res = seg.segment(paint(block_labels(20, 40, cell=4)), Vocabulary([[n] for n in COLOR_CLASSES]))
    assert len(calls) == 1 and calls[0][0] == (24, 40, 3)  # the padded image, once
    assert len(calls[0][1]) == res.info["windows"] == 2 * 4


def test_sam_generator_runs_once_per_region_and_its_segments_reach_the_encoder(tiny_clip):
    import open_clip

    from resegzoo.masks.sam import SamLevel, SamMaskGenerator
    from resegzoo.masks.testing import make_colour_sam
    from resegzoo.methods.clip.encoder import MaskedClipEncoder

    sam = make_colour_sam()  # segment-anything's pipeline with masks that follow colour regions
    encoder_calls = []
    sam.image_encoder.register_forward_hook(lambda *args: encoder_calls.append(1))
    level = SamLevel(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                     min_mask_region_area=0, crop_n_layers=0)
    gen = SamMaskGenerator(sam, [level] * 4)
    enc = MaskedClipEncoder(tiny_clip, open_clip.tokenize)
    recipe = load_recipe(None, window=64, stride=32)
    image = paint(block_labels(64, 128, cell=16, seed=1))
    vocab = Vocabulary.parse("road; tree; water")
    with_sam, info = Segmenter(enc, gen, recipe).logits(image, vocab)
    assert info["windows"] == 3 and len(encoder_calls) == 1  # one SAM region for all windows
    uncovered = Segmenter(enc, lambda img: np.zeros((4, *img.shape[:2]), np.int32), recipe).logits(image, vocab)[0]
    assert (with_sam - uncovered).abs().max() > 1e-4  # the segments changed the attention
