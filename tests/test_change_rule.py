"""Issue 25 item 1: SegEarth-OV3's change rule (segearthov3_change_detector.py) on per-name scores and
image features, checked against the rule written out with the libraries the peer uses (scikit-image's
label and Otsu, torch's interpolate and cosine_similarity), strip by strip and block by block as well
as whole; the features come from the method's one image pass (the seam's ``features`` output)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from resegzoo.change.rule import (
    MIN_ENERGY, ChangeSettings, EnergyHistogram, class_energy, class_map, detect, energy_threshold,
    feature_distance, foreground, object_changes)
from resegzoo.vocabulary import Vocabulary

PLUGIN_DIR = Path(__file__).parent / "method_plugin"


# -- the rule written out as the peer's code runs it (independent of resegzoo's implementation) --
def peer_feature_distance(fa: torch.Tensor, fb: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    ua = F.interpolate(fa[None], size=size, mode="bilinear", align_corners=False)
    ub = F.interpolate(fb[None], size=size, mode="bilinear", align_corners=False)
    similarity = F.cosine_similarity(ua, ub, dim=1) * 0.5 + 0.5
    return (1.0 - similarity)[0]


def peer_object_rule(fg_a: np.ndarray, fg_b: np.ndarray, coverage: float, min_area: int) -> np.ndarray:
    from scipy.ndimage import maximum_filter
    from skimage import measure

    def one_way(source, target_dilated):
        lbl = measure.label(source, connectivity=2)
        area = np.bincount(lbl.ravel())
        cover = np.bincount(lbl.ravel(), weights=target_dilated.ravel().astype(np.float64))
        ratio = cover / np.maximum(area, 1)
        ids = np.where((ratio < coverage) & (area >= min_area))[0]
        return np.isin(lbl, ids[ids != 0])

    dil_a = maximum_filter(fg_a.astype(np.uint8), size=5, mode="constant", cval=0) > 0
    dil_b = maximum_filter(fg_b.astype(np.uint8), size=5, mode="constant", cval=0) > 0
    return one_way(fg_a, dil_b) | one_way(fg_b, dil_a)


def blobs(shape: tuple[int, int], seed: int, density: float = 0.12) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    noise = gaussian_filter(np.random.default_rng(seed).random(shape), 1.2)
    return noise > np.quantile(noise, 1 - density)


# -- F ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels,grid,size", [(8, (4, 4), (56, 56)), (70, (6, 5), (37, 41)), (3, (9, 9), (9, 9))])
def test_feature_distance_is_the_peers_upsample_then_cosine(channels, grid, size):
    gen = torch.Generator().manual_seed(channels)
    fa, fb = torch.randn((channels, *grid), generator=gen), torch.randn((channels, *grid), generator=gen)
    got = feature_distance(fa, fb, size)
    assert got.shape == size
    assert torch.allclose(got, peer_feature_distance(fa, fb, size), atol=2e-6)
    # upsampling first is not the cosine upsampled: the order is the peer's
    coarse = peer_feature_distance(fa, fb, grid)
    if grid != size:
        assert not torch.allclose(got, F.interpolate(coarse[None, None], size=size, mode="bilinear")[0, 0], atol=1e-3)
    assert torch.allclose(feature_distance(fa, fa, size), torch.zeros(size), atol=1e-6)


# -- E and Otsu -------------------------------------------------------------------------------
def test_energy_is_confidence_times_delta_times_distance_over_each_classes_names():
    vocab = Vocabulary([["background"], ["building", "house"], ["tree"]])
    gen = torch.Generator().manual_seed(1)
    a, b = torch.rand((4, 6, 7), generator=gen), torch.rand((4, 6, 7), generator=gen)
    dist = torch.rand((6, 7), generator=gen)
    energy = class_energy(a, b, dist, vocab, [1, 2])
    want_building = torch.maximum(torch.maximum(a[1], b[1]), torch.maximum(a[2], b[2])) \
        * torch.maximum((a[1] - b[1]).abs(), (a[2] - b[2]).abs()) * dist
    assert np.allclose(energy[0], want_building.numpy())
    assert np.allclose(energy[1], (torch.maximum(a[3], b[3]) * (a[3] - b[3]).abs() * dist).numpy())


def test_threshold_is_otsu_with_the_peers_floor_and_flat_rule():
    from skimage.filters import threshold_otsu

    values = np.concatenate([np.random.default_rng(0).normal(0.05, 0.01, 5000),
                             np.random.default_rng(1).normal(0.4, 0.05, 500)]).astype(np.float32)
    assert energy_threshold(values) == pytest.approx(float(threshold_otsu(values)))
    assert energy_threshold(np.full(100, 0.3, np.float32)) == MIN_ENERGY  # flat: 0, then the floor
    assert energy_threshold(np.array([0.2, 0.20005], np.float32)) == MIN_ENERGY  # varies by <= 1e-4
    assert energy_threshold(np.linspace(0, 0.012, 1000, dtype=np.float32)) == MIN_ENERGY  # Otsu below 0.01


@pytest.mark.parametrize("pieces", [1, 3, 17])
def test_histogram_over_blocks_is_otsu_of_the_whole(pieces):
    from skimage.filters import threshold_otsu

    rng = np.random.default_rng(pieces)
    whole = np.concatenate([rng.gamma(1.0, 0.02, 20000), rng.normal(0.3, 0.1, 3000).clip(0)]).astype(np.float32)
    rng.shuffle(whole)
    blocks = np.array_split(whole, pieces)
    hist = EnergyHistogram()
    for block in blocks:
        hist.extent(block)
    for block in blocks:
        hist.add(block)
    assert hist.threshold() == max(float(threshold_otsu(whole)), MIN_ENERGY)
    # a threshold per block is not the whole's (so the test can tell them apart)
    if pieces > 1:
        assert {energy_threshold(b) for b in blocks} != {hist.threshold()}


# -- the object rule --------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("coverage,min_area", [(0.3, 0), (0.1, 0), (0.6, 20)])
def test_object_rule_equals_the_peers_whole_image_rule_in_any_strips(seed, coverage, min_area):
    fg_a, fg_b = blobs((61, 47), seed), blobs((61, 47), seed + 10)
    want = peer_object_rule(fg_a, fg_b, coverage, min_area)
    assert 0 < want.sum() < want.size
    settings = ChangeSettings(coverage=coverage, min_area=min_area)
    for rows in (None, 1, 2, 5, 13, 60):
        got = np.zeros_like(want)
        for r0, r1, changed, _ in object_changes(lambda r0, r1: (fg_a[r0:r1], fg_b[r0:r1]), 61, 47, settings, rows):
            got[r0:r1] = changed
        assert np.array_equal(got, want), rows


def test_a_component_across_strips_is_judged_whole():
    """A component half covered by the other date is not changed (coverage 0.5 >= 0.3), though the
    strip holding its uncovered half alone would say it is."""
    fg_a = np.zeros((20, 20), bool)
    fg_a[2:18, 8:12] = True  # a bar through both halves
    fg_b = np.zeros((20, 20), bool)
    fg_b[2:10, 8:12] = True  # the other date covers its top half only
    whole = peer_object_rule(fg_a, fg_b, 0.3, 0)
    assert not whole.any()
    got = np.concatenate([c for _, _, c, _ in object_changes(lambda r0, r1: (fg_a[r0:r1], fg_b[r0:r1]), 20, 20,
                                                          ChangeSettings(dilation=2), 12)])
    assert not got.any()
    bottom_only = peer_object_rule(fg_a[12:], fg_b[12:], 0.3, 0)
    assert bottom_only.any()  # what a rule that stopped at the strip edge would say


def test_class_map_background_threshold_nodata_and_named_background():
    vocab = Vocabulary([["background"], ["building", "house"]])
    scores = torch.tensor([[[0.9, 0.1], [0.2, 0.1]],      # background
                           [[0.05, 0.3], [0.5, 0.1]],     # building
                           [[0.0, 0.45], [0.1, 0.39]]])   # house
    valid = np.array([[True, True], [True, False]])
    labels = class_map(scores, vocab, 0.4, valid)
    assert labels.tolist() == [[0, 1], [1, 255]]
    assert class_map(scores, vocab, 0.4).tolist() == [[0, 1], [1, 2]]  # 0.39 < 0.4: below the threshold
    fg = foreground(labels, ChangeSettings().background_ids(vocab))
    assert fg.tolist() == [[False, True], [True, False]]


def test_identical_dates_give_no_change():
    vocab = Vocabulary([["background"], ["building"], ["tree"]])
    scores = torch.rand((3, 30, 40), generator=torch.Generator().manual_seed(4))
    maps = detect(scores, scores.clone(), torch.zeros(30, 40), vocab, ChangeSettings())
    assert not maps.change.any() and not maps.objects.any() and not maps.pixels.any()


def test_settings_are_checked():
    from resegzoo.change.rule import ChangeSettingsError

    for bad in ({"coverage": 1.5}, {"background_threshold": -0.1}, {"min_area": -1}):
        with pytest.raises(ChangeSettingsError):
            ChangeSettings(**bad)


# -- the seam: features from the one image pass ------------------------------------------------
def test_segearth_ov3_features_are_sam3s_stride_14_level_from_the_same_pass(tiny_sam3_dir):
    from resegzoo.methods.base import WindowOutputs, window_outputs
    from resegzoo.methods.segearth_ov3.method import SegEarthOV3Method, SegEarthOV3Settings
    from resegzoo.methods.segearth_ov3.model import load_scorer

    scorer = load_scorer(tiny_sam3_dir)
    method = SegEarthOV3Method(scorer, SegEarthOV3Settings())
    vocab = Vocabulary([["building"], ["tree", "forest"]])
    windows = np.random.default_rng(0).integers(0, 256, (2, 40, 52, 3), dtype=np.uint8)
    passes = []
    encoder = scorer.model.vision_encoder
    hook = encoder.register_forward_hook(lambda *a: passes.append(1))
    try:
        out = window_outputs(method, windows, vocab, True, None, frozenset({"features"}))
    finally:
        hook.remove()
    assert isinstance(out, WindowOutputs) and len(passes) == 1  # one image pass for both
    assert torch.equal(out.scores, method.window_scores(windows, vocab, True))
    with torch.inference_mode():
        pixels = scorer.pixel_values(torch.from_numpy(windows).permute(0, 3, 1, 2))
        levels = scorer.model.vision_encoder(pixels).fpn_hidden_states
    side = scorer.resolution // 14
    stride14 = [lvl for lvl in levels if lvl.shape[-1] == side]
    assert len(stride14) == 1 and torch.allclose(out.features, stride14[0], atol=1e-6)
    assert method.window_outputs(windows, vocab, True).features is None  # not asked: not made


def test_a_method_without_the_output_is_one_line():
    from resegzoo.methods.base import MethodError, MethodSpec, window_outputs

    class ScoresOnly:
        window, window_multiple, device = 8, 1, "cpu"

        def window_scores(self, windows, vocab, per_name, maps=None):
            return torch.zeros((len(windows), 1, 8, 8))

    with pytest.raises(MethodError, match="gives no features"):
        window_outputs(ScoresOnly(), np.zeros((1, 8, 8, 3), np.uint8), Vocabulary(["x"]), True, None,
                       frozenset({"features"}))
    assert window_outputs(ScoresOnly(), np.zeros((1, 8, 8, 3), np.uint8), Vocabulary(["x"]), True).features is None
    with pytest.raises(ValueError, match="unknown outputs"):
        MethodSpec("m", lambda c: None, outputs=frozenset({"instances-typo"}))


# -- a known pair through a method with known scores and features ------------------------------
def colour_segmenter(change: bool = True):
    sys.path.insert(0, str(PLUGIN_DIR))
    try:
        from resegzoo_colour_method import ColourChangeMethod, ColourMethod, ColourSettings
    finally:
        sys.path.remove(str(PLUGIN_DIR))
    from resegzoo.segmenter.core import Segmenter
    from resegzoo.segmenter.recipe import MethodSettings, SegmentRecipe

    recipe = SegmentRecipe(method=MethodSettings(name="colour-change"))
    method = (ColourChangeMethod if change else ColourMethod)(ColourSettings(), "cpu")
    return Segmenter(None, None, recipe, method=method, scores="probabilities")


def known_pair(h: int = 64, w: int = 80):
    """Green ground; a blue square at date A that is gone at date B; a red square new at date B."""
    green, red, blue = (30, 200, 40), (220, 30, 30), (20, 40, 230)
    a = np.empty((h, w, 3), np.uint8)
    a[:] = green
    b = a.copy()
    a[5:17, 6:20] = blue
    b[40:58, 50:71] = red
    truth = np.zeros((h, w), np.uint8)
    truth[5:17, 6:20] = 1
    truth[40:58, 50:71] = 1
    return a, b, truth


def test_a_known_appearing_and_disappearing_object_is_exactly_the_change():
    from resegzoo.change.pair import ChangeDetector

    a, b, truth = known_pair()
    detector = ChangeDetector(colour_segmenter(), Vocabulary(["red", "blue"]), ChangeSettings())
    maps = detector.detect(a, b)
    assert np.array_equal(maps.change, truth)
    assert not detector.detect(a, a.copy()).change.any()
    # nodata of either date is nodata of the result
    valid_b = np.ones(truth.shape, bool)
    valid_b[:10, :] = False
    maps = detector.detect(a, b, valid_b=valid_b)
    assert (maps.change[:10] == 255).all() and np.array_equal(maps.change[10:], truth[10:])


def test_a_method_without_features_cannot_detect_change():
    from resegzoo.change.pair import ChangeDetector
    from resegzoo.methods.base import MethodError

    with pytest.raises(MethodError, match="cannot detect change"):
        ChangeDetector(colour_segmenter(change=False), Vocabulary(["red", "blue"]))
