"""Window plans, stitching, resizing; and pixel-exact round trips through them with the oracle."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from resegzoo.api import Segmenter, Vocabulary, load_recipe
from resegzoo.segmenter.windows import Stitcher, WindowPlan, resize_image, short_side_size
from resegzoo_oracle import build
from segment_helpers import COLOR_CLASSES, block_labels, paint, stripes


@pytest.mark.parametrize("h, w, window, stride", [(45, 70, 32, 16), (32, 32, 32, 16), (10, 100, 32, 32),
                                                  (97, 33, 16, 5)])
def test_plan_covers_every_pixel_once_padded(h, w, window, stride):
    plan = WindowPlan.make(h, w, window, stride)
    ph, pw = plan.padded
    assert ph >= max(h, window) and pw >= max(w, window)
    assert ph - window < max(h - 1, 0) + stride and pw - window < max(w - 1, 0) + stride  # no extra row
    count = np.zeros(plan.padded, dtype=int)
    for y0, x0, y1, x1 in plan.windows:
        assert y1 - y0 == window == x1 - x0 and y1 <= ph and x1 <= pw
        count[y0:y1, x0:x1] += 1
    assert (count[:h, :w] > 0).all()
    assert plan.pad(np.ones((h, w, 3), np.uint8)).shape == (ph, pw, 3)
    with pytest.raises(ValueError, match="stride"):
        WindowPlan.make(h, w, window, window + 1)


def test_stitcher_averages_overlaps_and_crops_padding():
    plan = WindowPlan.make(20, 30, 16, 8)
    st = Stitcher(plan, 2)
    expected_sum = np.zeros((2, *plan.padded))
    expected_n = np.zeros(plan.padded)
    rng = np.random.default_rng(0)
    for win in plan.windows:
        lg = rng.normal(size=(2, 16, 16))
        st.add(win, torch.from_numpy(lg).float())
        y0, x0, y1, x1 = win
        expected_sum[:, y0:y1, x0:x1] += lg
        expected_n[y0:y1, x0:x1] += 1
    out = st.result()
    assert out.shape == (2, 20, 30)
    np.testing.assert_allclose(out.numpy(), (expected_sum / expected_n)[:, :20, :30], atol=1e-5)


def test_resize_helpers():
    assert short_side_size(45, 70, 90) == (90, 140)
    assert short_side_size(70, 45, 30) == (47, 30)
    assert short_side_size(5, 6, None) == (5, 6)
    img = np.full((5, 6, 3), 200, np.uint8)
    out = resize_image(img, (10, 12))
    assert out.shape == (10, 12, 3) and out.dtype == np.uint8 and (out == 200).all()


def _segment(image, recipe, patch_size=1, names=COLOR_CLASSES):
    seg = Segmenter(build(patch_size=patch_size), None, recipe)
    return seg.segment(image, Vocabulary([[n] for n in names]))


@pytest.mark.parametrize("h, w, overrides", [
    (45, 70, {}),  # default window 32 / stride 16, padding on both axes
    (70, 45, {"window": 16, "stride": 5}),  # transposed shape, odd stride
    (31, 33, {"window": 32, "stride": 32}),  # smaller than one window on one axis
    (50, 23, {"batch_size": 1}),
])
def test_oracle_round_trip_is_pixel_exact(h, w, overrides):
    labels = block_labels(h, w, cell=3, seed=h)
    res = _segment(paint(labels), load_recipe(None, **overrides))
    assert res.labels.shape == (h, w) and res.labels.dtype == np.int32
    np.testing.assert_array_equal(res.labels, labels)
    assert res.probs.shape == (4, h, w)
    np.testing.assert_allclose(res.probs.sum(0), 1.0, atol=1e-5)


def test_oracle_round_trip_through_resizing():
    labels = stripes(40, 66, num_classes=3)
    for short_side in (80, 120):  # up-scaling by 2 and 3, then logits back to the input size
        res = _segment(paint(labels), load_recipe(None, short_side=short_side))
        np.testing.assert_array_equal(res.labels, labels)
        assert res.info["resized_to"][0] == short_side


def test_patch_logits_are_upsampled_to_pixels():
    # patch size 4: regions aligned to the 4 px grid come back exactly, at pixel resolution
    labels = block_labels(36, 52, cell=8, seed=2)
    res = _segment(paint(labels), load_recipe(None), patch_size=4)
    inner = np.ones_like(labels, dtype=bool)  # bilinear blending only touches the boundaries
    edges = (np.diff(labels, axis=0, prepend=labels[:1]) != 0) | (np.diff(labels, axis=1, prepend=labels[:, :1]) != 0)
    for _ in range(2):
        edges = edges | np.roll(edges, 1, 0) | np.roll(edges, -1, 0) | np.roll(edges, 1, 1) | np.roll(edges, -1, 1)
    inner &= ~edges
    np.testing.assert_array_equal(res.labels[inner], labels[inner])
    assert inner.mean() > 0.2  # the check covers a good part of the image


def test_mask_bands_hold_whole_window_rows():
    from resegzoo.segmenter.core import _row_bands

    plan = WindowPlan.make(3000, 500, 224, 112)
    bands = _row_bands(plan.windows, 1024)
    assert [w for band in bands for w in band] == list(plan.windows)  # each window once, in order
    for band in bands:
        assert band[-1][2] - band[0][0] <= 1024
        rows = {w[0] for w in band}
        assert all(sum(w[0] == r for w in plan.windows) == sum(w[0] == r for w in band) for r in rows)
    assert len(bands) == 4


def test_image_placement_is_one_window_of_the_whole_image():
    from resegzoo.segmenter.windows import WindowPlan

    plan = WindowPlan.make(40, 52, 16, 8, "image")
    assert plan.windows == ((0, 0, 40, 52),) and plan.padded == (40, 52)


def test_stitcher_one_window_over_the_whole_frame_is_kept_as_it_is():
    plan = WindowPlan.make(20, 30, 16, 8, "image")
    assert plan.windows == ((0, 0, 20, 30),) and plan.padded == (20, 30)
    logits = torch.from_numpy(np.random.default_rng(1).normal(size=(3, 20, 30))).float()
    st = Stitcher(plan, 3)
    st.add(plan.windows[0], logits)
    assert torch.equal(st.result(), logits) and st.sum is None  # no accumulator, no division
    # a second window after it: averaged as any other
    st = Stitcher(plan, 3)
    st.add((0, 0, 20, 30), logits)
    st.add((0, 0, 10, 10), torch.ones(3, 10, 10))
    expected = logits.clone()
    expected[:, :10, :10] = (logits[:, :10, :10] + 1) / 2
    torch.testing.assert_close(st.result(), expected)
