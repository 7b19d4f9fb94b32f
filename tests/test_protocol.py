"""The peers' evaluation protocol, rule by rule, against hand-computed expectations (METHOD.md
section 6), and the recipes that select it."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from resegzoo.api import Segmenter, Vocabulary, load_recipe
from resegzoo.methods.clip.settings import settings_of
from resegzoo.schema import SchemaError
from resegzoo.segmenter.recipe import protocol_name
from resegzoo.segmenter.windows import WindowPlan, fit_size, resize_image, window_starts
from resegzoo.weights.zoo import registry_dir
from resegzoo_oracle import build
from segment_helpers import COLOR_CLASSES, block_labels, paint

RECIPES = registry_dir() / "recipes"


# -- resize: mmcv's keep-ratio rule --------------------------------------------------------------

@pytest.mark.parametrize("size, scale, expected", [
    ((333, 517), (448, 448), (289, 448)),  # the example: the LONG side becomes 448
    # 448/335 = 1.33731: 335 -> int(448.0 + .5) = 448, 223 -> int(298.22 + .5) = 298
    ((335, 223), (448, 448), (448, 298)),
    # (1024, 512): min(1024/517, 512/333) = 1.53754 -> 333 -> 512, 517 -> int(794.91 + .5) = 795
    ((333, 517), (1024, 512), (512, 795)),
    # f = min(448/896, 448/5) = 0.5: 5 -> int(2.5 + .5) = 3 (Python's round() would give 2)
    ((5, 896), (448, 448), (3, 448)),
    # upscaling a small odd image: min(448/7, 448/5) = 64 -> 5 x 7 -> 320 x 448
    ((5, 7), (448, 448), (320, 448)),
    # 301 x 301 -> f = 448/301 = 1.48837 -> int(448.0000 + .5) = 448 on both sides
    ((301, 301), (448, 448), (448, 448)),
    # 1001 x 999 (1000, 600): min(1000/1001, 600/999) = 0.600601 -> 601.2 -> 601, 600.0 -> 600
    ((1001, 999), (1000, 600), (601, 600)),
])
def test_fit_size_is_mmcv_keep_ratio_rescale(size, scale, expected):
    assert fit_size(*size, scale) == expected
    assert fit_size(*size, scale[::-1]) == expected  # (short, long) means the same in mmcv
    assert fit_size(*size, None) == size


def test_fit_is_not_short_side():
    # the old rule (short side 448) gives 448 x 696 for the issue's image: 1.5x the peers' area
    from resegzoo.segmenter.windows import short_side_size

    assert short_side_size(333, 517, 448) == (448, 696)
    assert fit_size(333, 517, (448, 448)) != short_side_size(333, 517, 448)


# -- resize filter: OpenCV bilinear ---------------------------------------------------------------

def test_opencv_bilinear_is_cv2_resize():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (67, 93, 3), dtype=np.uint8)
    for size in [(31, 45), (120, 200), (67, 50)]:
        ours = resize_image(image, size, "opencv-bilinear")
        ref = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(ours, ref)
        assert ours.shape == (*size, 3) and ours.dtype == np.uint8


def test_opencv_bilinear_hand_computed_and_unlike_antialias():
    # halving a row: output pixel x samples source (x + .5) * 2 - .5 = 0.5, 2.5: the mean of
    # two neighbours, no wider filter: [0, 100, 200, 40] -> [50, 120]
    row = np.array([0, 100, 200, 40], np.uint8)
    image = np.repeat(np.repeat(row[None, :, None], 3, axis=2), 2, axis=0)  # 2 x 4 x 3
    out = resize_image(image, (2, 2), "opencv-bilinear")
    np.testing.assert_array_equal(out[..., 0], [[50, 120], [50, 120]])
    smooth = resize_image(image, (2, 2), "antialias")  # a triangle filter twice as wide
    assert np.abs(smooth.astype(int) - out.astype(int)).max() >= 10
    with pytest.raises(ValueError, match="resize filter"):
        resize_image(image, (3, 3), "lanczos")


# -- window placement: mmseg's slide inference ------------------------------------------------

@pytest.mark.parametrize("length, expected", [
    (289, [0, 65]),  # ceil(65/112) + 1 = 2 windows; the second moved back to 289 - 224 = 65
    (448, [0, 112, 224]),  # fits exactly: nothing moves
    (500, [0, 112, 224, 276]),  # 4 windows, the last moved back from 336 to 276
    (225, [0, 1]),  # one pixel over: a second window at 1
    (224, [0]),
    (100, [0]),  # shorter than a window: one window (as long as the axis, see the plan below)
])
def test_shifted_window_origins(length, expected):
    assert window_starts(length, 224, 112, "shift") == expected


def test_shift_plan_needs_no_padding_and_pad_plan_does():
    shift = WindowPlan.make(289, 448, 224, 112, "shift")
    assert shift.padded == (289, 448)
    assert [w[:2] for w in shift.windows] == [(0, 0), (0, 112), (0, 224), (65, 0), (65, 112), (65, 224)]
    assert all(y1 <= 289 and x1 <= 448 for _, _, y1, x1 in shift.windows)
    pad = WindowPlan.make(289, 448, 224, 112, "pad")
    assert pad.padded == (336, 448) and [w[0] for w in pad.windows][::3] == [0, 112]
    # an axis shorter than the window: one crop of its own length, no padding (mmseg's slide)
    small = WindowPlan.make(100, 300, 224, 112, "shift")
    assert small.padded == (100, 300) and small.windows == ((0, 0, 100, 224), (0, 76, 100, 300))
    assert WindowPlan.make(100, 300, 224, 112, "pad").padded == (224, 336)


def test_zero_and_edge_padding():
    plan = WindowPlan.make(3, 3, 4, 4)
    image = np.full((3, 3, 3), 9, np.uint8)
    assert (plan.pad(image, "zero")[3] == 0).all() and (plan.pad(image, "edge")[3] == 9).all()


@pytest.mark.parametrize("h, w", [(45, 70), (70, 45), (33, 100)])
def test_oracle_round_trip_with_shifted_windows_is_pixel_exact(h, w):
    labels = block_labels(h, w, cell=3, seed=h)
    seg = Segmenter(build(patch_size=1), None, load_recipe(None, window_placement="shift"))
    res = seg.segment(paint(labels), Vocabulary([[n] for n in COLOR_CLASSES]))
    np.testing.assert_array_equal(res.labels, labels)


# -- name-level probabilities ---------------------------------------------------------------------

class _FixedEncoder:
    """Every patch has the feature e0; name i's prompt embeds to cos_i e0 + sin e1 (a toy
    2-class, 3-name vocabulary with chosen cosines)."""

    patch_size = 1
    image_size = 4
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)
    prompt_templates = ("{}",)

    def __init__(self, cosines: dict[str, float]) -> None:
        self.cosines = cosines

    def encode_text(self, prompts):
        rows = []
        for p in prompts:
            c = self.cosines[p]
            rows.append([c, math.sqrt(1 - c * c), 0.0])
        return torch.tensor(rows)

    def encode_dense(self, images, token_ids=None, return_cls=False):
        b, _, h, w = images.shape
        feats = torch.zeros(b, h, w, 3)
        feats[..., 0] = 1.0
        return (feats, feats[:, 0, 0]) if return_cls else feats


def test_name_level_softmax_on_a_two_class_three_name_toy():
    # class 0 = {a, b}, class 1 = {c}; cosines a .30, b .28, c .29; scale 50
    enc = _FixedEncoder({"a": 0.30, "b": 0.28, "c": 0.29})
    vocab = Vocabulary([["a", "b"], ["c"]])
    image = np.zeros((4, 4, 3), np.uint8)
    # by hand: names: exp(15), exp(14), exp(14.5) -> p(a) = 1 / (1 + e^-1 + e^-.5) = 0.50648,
    # p(c) = e^-.5 / (1 + e^-1 + e^-.5) = 0.30720; classes: max -> (0.50648, 0.30720)
    denom = 1 + math.exp(-1) + math.exp(-0.5)
    name = Segmenter(enc, None, load_recipe(None, probabilities="name", masks={"generator": "none"}))
    res = name.segment(image, vocab)
    np.testing.assert_allclose(res.probs[:, 0, 0], [1 / denom, math.exp(-0.5) / denom], atol=1e-5)
    # class level: softmax(50 x (.30, .29)) = (1 / (1 + e^-.5), ...) = (0.62246, 0.37754)
    cls = Segmenter(enc, None, load_recipe(None, masks={"generator": "none"})).segment(image, vocab)
    np.testing.assert_allclose(cls.probs[:, 0, 0], [1 / (1 + math.exp(-0.5)), 1 - 1 / (1 + math.exp(-0.5))],
                               atol=1e-5)
    assert (res.labels == 0).all() and (cls.labels == 0).all()  # same argmax ...
    # ... but a threshold of 0.55 sends the name-level pixel to background, not the class-level one
    bg_name = Segmenter(enc, None, load_recipe(None, probabilities="name", background_threshold=0.55))
    bg_cls = Segmenter(enc, None, load_recipe(None, background_threshold=0.55))
    assert (bg_name.segment(image, vocab).labels == 2).all()
    assert (bg_cls.segment(image, vocab).labels == 0).all()


def test_probabilities_averaged_over_windows_are_the_mean_of_each_windows_softmax():
    labels = block_labels(24, 24, cell=5, seed=3)
    image = paint(labels)
    vocab = Vocabulary([[n] for n in COLOR_CLASSES])
    recipe = {"window": 16, "stride": 8, "logit_scale": 3.0}
    by_logits = Segmenter(build(patch_size=4), None, load_recipe(None, **recipe))
    by_probs = Segmenter(build(patch_size=4), None, load_recipe(None, average="probabilities", **recipe))
    # the reference by hand: each window's logits, softmax per window, mean where windows overlap
    plan = WindowPlan.make(24, 24, 16, 8)
    text = by_logits.method.text_embeddings(vocab)
    total, count = torch.zeros(len(vocab), 24, 24), torch.zeros(1, 24, 24)
    for win in plan.windows:
        y0, x0, y1, x1 = win
        lg = by_logits.method.window_logits(image[None, y0:y1, x0:x1], None, text, 0.0, per_name=False)[0]
        total[:, y0:y1, x0:x1] += torch.softmax(3.0 * lg, dim=0)
        count[:, y0:y1, x0:x1] += 1
    res = by_probs.segment(image, vocab)
    np.testing.assert_allclose(res.probs, (total / count).numpy(), atol=1e-5)
    assert np.abs(by_logits.segment(image, vocab).probs - res.probs).max() > 1e-3  # not the same thing


# -- recipes and protocol labels -----------------------------------------------------------------

def test_eval_default_is_the_peers_protocol_and_eval_resegzoo_the_old_one():
    peers = load_recipe(RECIPES / "eval-default.yaml")
    inf = peers.inference
    assert (inf.resize, inf.fit_scale, inf.resize_filter, inf.window, inf.stride, inf.window_placement,
            inf.probabilities, inf.logit_scale) == ("fit", [448, 448], "opencv-bilinear", 224, 112, "shift", "name", 50.0)
    assert settings_of(peers).templates == "imagenet"
    assert protocol_name(peers) == "peers"
    old = load_recipe(RECIPES / "eval-resegzoo.yaml")
    assert (old.inference.short_side, old.inference.window_placement) == (448, "pad")
    assert protocol_name(old) == "resegzoo"
    assert protocol_name(load_recipe(RECIPES / "eval-default.yaml", stride=224)) == "custom"


def test_recipe_base_is_merged_underneath(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text("base: eval-default\ninference: {stride: 56}\n")
    r = load_recipe(child)
    assert (r.inference.resize, r.inference.stride, r.inference.window) == ("fit", 56, 224)
    local = tmp_path / "grandchild.yaml"
    local.write_text("base: child.yaml\nmasks: {generator: none}\n")
    assert load_recipe(local).inference.stride == 56
    loop = tmp_path / "loop.yaml"
    loop.write_text("base: loop.yaml\n")
    with pytest.raises(SchemaError, match="cycle"):
        load_recipe(loop)
    missing = tmp_path / "missing.yaml"
    missing.write_text("base: no-such-recipe\n")
    with pytest.raises(SchemaError, match="no-such-recipe"):
        load_recipe(missing)


def test_resize_settings_are_checked():
    with pytest.raises(Exception, match="fit_scale"):
        load_recipe(None, resize="fit", short_side=448)
    with pytest.raises(Exception, match="fit_scale"):
        load_recipe(None, fit_scale=[448])


def test_dataset_prompts_and_thresholds_are_segearth_ovs():
    from resegzoo.eval.datasets import builtin_info

    # SegEarth-OV's configs/cfg_*.py (prob_thd, bg_idx) and cls_*.txt (one row per name)
    expected = {"isaid": (0.4, 0), "loveda": (0.3, 0), "potsdam": (0.1, 5), "vaihingen": (0.1, 5),
                "uavid": (0.3, 0), "udd5": (0.4, 4), "vdd": (0.3, 0)}
    for name, (threshold, background) in expected.items():
        info = builtin_info(name)
        assert info.recipe_settings["inference"]["background_threshold"] == threshold, name
        assert info.background == background, name
    assert builtin_info("isaid").classes[2] == ["store tank"]
    assert builtin_info("isaid").class_names[2] == "storage tank"
    assert builtin_info("udd5").classes[4] == ["background"]
    assert builtin_info("vdd").classes[:2] == [["background"], ["facade"]]
    assert builtin_info("loveda").classes[6] == ["agricultural"]


# -- the official ReSeg-CLIP code's readout and recipe --------------------------------------------

def test_feature_readout_upsamples_normalises_then_takes_cosines():
    from resegzoo.methods.clip.method import readout_features
    from resegzoo.methods.clip.text import TextEmbeddings

    gen = torch.Generator().manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(2, 3, 3, 5, generator=gen), dim=-1)
    names = torch.nn.functional.normalize(torch.randn(3, 5, generator=gen), dim=-1)
    text = TextEmbeddings(names, torch.tensor([0, 0, 1]), 2)
    got = readout_features(feats, text, per_name=True, size=(12, 12))
    # by hand: bilinear upsampling of the features, per-pixel L2, cosine with each name
    up = torch.nn.functional.interpolate(feats.permute(0, 3, 1, 2), size=(12, 12), mode="bilinear",
                                         align_corners=False)
    up = up / up.norm(dim=1, keepdim=True)
    expected = torch.einsum("bchw,nc->bnhw", up, names)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    by_class = readout_features(feats, text, per_name=False, size=(12, 12))
    torch.testing.assert_close(by_class, torch.stack([expected[:, :2].amax(1), expected[:, 2]], 1), atol=1e-5, rtol=0)
    # upsampling the cosines instead (the logits readout) is not the same between patch centres
    logits = torch.nn.functional.interpolate(torch.einsum("bhwc,nc->bnhw", feats, names), size=(12, 12),
                                             mode="bilinear", align_corners=False)
    assert (logits - expected).abs().max() > 1e-2


def test_reference_recipe_and_vocabulary():
    recipe = load_recipe(RECIPES / "reseg-clip-reference.yaml")
    inf = recipe.inference
    clip = settings_of(recipe)
    assert (inf.window, inf.stride, inf.pad_mode, clip.readout, inf.logit_scale, inf.average, inf.probabilities) == (
        224, 224, "zero", "features", 1.0, "probabilities", "name")
    assert inf.short_side is None and clip.templates == "sentence" and clip.schedule.rules is None
    assert recipe.masks.settings == {"checkpoint": "sam-vit-h", "painting": "sam-order", "region_size": "window"}
    vocab = Vocabulary.from_file(registry_dir() / "vocabularies" / "reseg-clip-reference.yaml")
    assert vocab.class_names == ["Artificial Surface", "Building", "Natural Surface", "Vegetation", "Vehicle", "Water"]
    assert [len(c) for c in vocab.classes] == [5, 2, 4, 4, 1, 3]  # its 19 queries
    assert vocab.classes[1] == ("Aerial photo of a building in the city", "Aerial photo of a roof in the city")


def test_labelled_text_vocabulary(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("Water: a river, a lake\nTrees: a tree  # comment\n")
    vocab = Vocabulary.from_file(path)
    assert vocab.class_names == ["Water", "Trees"] and vocab.classes == (("a river", "a lake"), ("a tree",))
    plain = tmp_path / "p.txt"
    plain.write_text("road, street\ntree\n")
    assert Vocabulary.from_file(plain).class_names == ["road", "tree"]


def test_reference_pipeline_end_to_end_on_the_oracle():
    # stride = window, zero padding, feature readout, probabilities averaged: still pixel-exact
    labels = block_labels(40, 50, cell=4, seed=5)
    recipe = load_recipe(RECIPES / "reseg-clip-reference.yaml", model=None, window=16, stride=16, logit_scale=50.0,
                         masks={"generator": "none", "settings": {}}, text={"templates": "reference"})
    res = Segmenter(build(patch_size=1), None, recipe).segment(paint(labels), Vocabulary([[n] for n in COLOR_CLASSES]))
    np.testing.assert_array_equal(res.labels, labels)
    np.testing.assert_allclose(res.probs.sum(0), 1.0, atol=1e-5)


def test_big_rasters_are_resized_by_the_whole_rasters_fit_factor():
    from resegzoo.segmenter.core import work_scale

    fit = load_recipe(None, resize="fit", fit_scale=[448, 448]).inference
    assert work_scale(333, 517, fit) == pytest.approx(448 / 517)
    assert work_scale(5000, 3000, fit) == pytest.approx(448 / 5000)
    assert work_scale(333, 517, load_recipe(None, short_side=448).inference) == pytest.approx(448 / 333)
    assert work_scale(333, 517, load_recipe(None).inference) is None


def test_raster_plan_uses_the_recipes_resize_rule(tmp_path):
    import rasterio

    from resegzoo.batch.job import plan_raster

    path = tmp_path / "r.tif"
    with rasterio.open(path, "w", driver="GTiff", height=333, width=517, count=3, dtype="uint8") as dst:
        dst.write(np.zeros((3, 333, 517), np.uint8))
    fit = load_recipe(RECIPES / "eval-default.yaml")
    assert plan_raster(path, fit).scale == pytest.approx(448 / 517)
    assert plan_raster(path, load_recipe(RECIPES / "eval-resegzoo.yaml")).scale == pytest.approx(448 / 333)
