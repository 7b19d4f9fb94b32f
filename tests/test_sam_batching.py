"""SAM batching: crops of several regions share image-encoder calls, the points of all levels
share prompt-decoder batches, and the id maps are the same as the unbatched path's and the stock
generator's."""
from __future__ import annotations

import math

import numpy as np
import pytest

from resegzoo.masks.sam import SamLevel, SamMaskGenerator
from resegzoo.masks.testing import make_colour_sam, make_tiny_sam
from test_masks_sam import COLOUR_LEVELS, blobs_image, sliding_windows, stock_maps


def count_calls(module) -> dict[str, int]:
    """Forward calls of ``module`` and the images (batch rows) it was given."""
    counts = {"calls": 0, "rows": 0}

    def hook(mod, args):
        counts["calls"] += 1
        counts["rows"] += int(args[0].shape[0]) if args else 0

    module.register_forward_pre_hook(hook)
    return counts


def expected_decoder_calls(levels, image_shape, points_per_batch, grouped: bool) -> int:
    """Decoder calls: per crop, the points of all levels together (grouped) or level by level."""
    from segment_anything.utils.amg import build_all_layer_point_grids, generate_crop_boxes

    deepest = max(lv.crop_n_layers for lv in levels)
    _, layers = generate_crop_boxes(image_shape, deepest, 512 / 1500)
    total = 0
    for layer in layers:
        counts = [len(build_all_layer_point_grids(lv.points_per_side, lv.crop_n_layers,
                                                  lv.crop_n_points_downscale_factor)[layer])
                  for lv in levels if layer <= lv.crop_n_layers]
        total += math.ceil(sum(counts) / points_per_batch) if grouped else sum(
            math.ceil(c / points_per_batch) for c in counts)
    return total


@pytest.mark.parametrize("image_batch, points_per_batch", [(3, 7), (5, 200)])
def test_batched_encoder_and_decoder_give_the_stock_maps(image_batch, points_per_batch):
    sam = make_colour_sam()
    image = blobs_image(2)
    encoder, decoder = count_calls(sam.image_encoder), count_calls(sam.mask_decoder)
    ours = SamMaskGenerator(sam, COLOUR_LEVELS, image_batch=image_batch, points_per_batch=points_per_batch)(image)
    assert encoder == {"calls": math.ceil(5 / image_batch), "rows": 5}  # 1 full image + 4 crops
    assert decoder["calls"] == expected_decoder_calls(COLOUR_LEVELS, image.shape[:2], points_per_batch, True)
    assert decoder["calls"] < expected_decoder_calls(COLOUR_LEVELS, image.shape[:2], points_per_batch, False)
    np.testing.assert_array_equal(ours, stock_maps(sam, COLOUR_LEVELS, image))


def test_regions_share_encoder_batches_and_give_the_unbatched_maps():
    sam = make_colour_sam()
    image = blobs_image(3, shape=(128, 256))
    windows = sliding_windows(128, 256, 64, 32)
    levels = COLOUR_LEVELS[1:2]
    one_by_one = SamMaskGenerator(sam, levels, region_size=128, image_batch=1)
    batched = SamMaskGenerator(sam, levels, region_size=128, image_batch=8)
    encoder = count_calls(sam.image_encoder)
    reference = one_by_one.generate_windows(image, windows, progress=lambda n: None)
    unbatched_calls = encoder["calls"]
    encoder["calls"] = encoder["rows"] = 0
    reported: list[int] = []
    got = batched.generate_windows(image, windows, progress=reported.append)
    assert unbatched_calls == 15  # 3 regions x 5 crops, one per call
    assert encoder == {"calls": 2, "rows": 15}  # the crops of 3 regions in batches of 8
    assert sum(reported) == len(windows) and len(reported) == 3
    for a, b in zip(got, reference):
        np.testing.assert_array_equal(a, b)


def test_a_real_vit_encoder_gives_the_same_maps_batched_and_unbatched():
    """Random-weight ViT image encoder + two-way transformer decoder: batch rows are independent
    (test_masks_sam compares this model's batched default path with the stock generator)."""
    sam = make_tiny_sam(seed=1)
    image = blobs_image(1, shape=(96, 128))
    levels = [
        SamLevel(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0, min_mask_region_area=0,
                 box_nms_thresh=1.0, crop_nms_thresh=1.0),
        SamLevel(points_per_side=3, pred_iou_thresh=0.0, stability_score_thresh=0.0, min_mask_region_area=0),
    ]
    unbatched = SamMaskGenerator(sam, levels, image_batch=1, points_per_batch=4)(image)
    batched = SamMaskGenerator(sam, levels, image_batch=5, points_per_batch=64)(image)
    np.testing.assert_array_equal(batched, unbatched)
    assert len(np.unique(batched[0])) > 10
