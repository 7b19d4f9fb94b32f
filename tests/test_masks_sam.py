"""The SAM mask generator against segment-anything's own SamAutomaticMaskGenerator."""
from __future__ import annotations

import numpy as np
import pytest
from segment_anything import SamAutomaticMaskGenerator

from resegzoo.outputs.atomic import temporaries
from resegzoo.masks.cache import CachedMaskGenerator
from resegzoo.masks.painting import paint_masks
from resegzoo.masks.sam import SamLevel, SamMaskGenerator
from resegzoo.masks.testing import make_colour_sam, make_tiny_sam
from resegzoo.masks.windows import generate_for_windows


def blobs_image(seed: int = 0, shape=(160, 200)) -> np.ndarray:
    """Coloured rectangles on a dark background, with a little noise."""
    rng = np.random.default_rng(seed)
    image = np.full((*shape, 3), 30, np.uint8)
    for _ in range(14):
        y, x = rng.integers(0, shape[0] - 20), rng.integers(0, shape[1] - 20)
        h, w = rng.integers(8, 40, 2)
        image[y:y + h, x:x + w] = rng.integers(0, 255, 3)
    return np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)


def count_encoder_calls(sam) -> list[int]:
    calls = [0]
    sam.image_encoder.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def stock_records(sam, levels, image) -> list[list[dict]]:
    """The reference: a fresh SamAutomaticMaskGenerator per level (the reference code's schedule)."""
    return [SamAutomaticMaskGenerator(sam, **level.as_generator_kwargs()).generate(image) for level in levels]


def paint_records(per_level, shape, order="largest-first") -> np.ndarray:
    return np.stack([paint_masks([r["segmentation"] for r in records], shape, order) for records in per_level])


def stock_maps(sam, levels, image, order="largest-first") -> np.ndarray:
    return paint_records(stock_records(sam, levels, image), image.shape[:2], order)


# Low thresholds so that masks exist; different per level so a mix-up of levels shows.
COLOUR_LEVELS = [
    SamLevel(points_per_side=8, pred_iou_thresh=0.0, stability_score_thresh=0.3, min_mask_region_area=20),
    SamLevel(points_per_side=6, pred_iou_thresh=0.0, stability_score_thresh=0.3, min_mask_region_area=0),
    SamLevel(points_per_side=4, pred_iou_thresh=0.1, stability_score_thresh=0.2, min_mask_region_area=100,
             box_nms_thresh=0.5),
    SamLevel(points_per_side=3, pred_iou_thresh=0.0, stability_score_thresh=0.0, min_mask_region_area=0,
             crop_n_layers=0),
]


@pytest.mark.parametrize("order", ["largest-first", "sam-order"])
def test_shared_embedding_equals_stock_generator_per_level_colour_sam(order):
    sam = make_colour_sam()
    image = blobs_image(2)
    calls = count_encoder_calls(sam)
    ours = SamMaskGenerator(sam, COLOUR_LEVELS, painting=order)(image)
    our_calls = calls[0]
    calls[0] = 0
    records = stock_records(sam, COLOUR_LEVELS, image)

    assert ours.shape == (4, 160, 200) and ours.dtype == np.int32
    np.testing.assert_array_equal(ours, paint_records(records, image.shape[:2], order))
    # guards, so the comparison covers overlapping masks and masks of the 4 sub-crops
    assert all(len(np.unique(m)) >= 3 for m in ours[:3]), "the test needs several masks per level"
    full_image_box = [0, 0, 200, 160]
    assert all(any(r["crop_box"] != full_image_box for r in level) for level in records[:3])
    # crop_n_layers=1 adds 4 crops: 5 encoder passes in all, not 5 per level as the stock schedule
    assert our_calls == 5
    assert calls[0] == 3 * 5 + 1


def test_shared_embedding_equals_stock_generator_tiny_random_sam():
    """A real (random-weight) ViT image encoder, prompt encoder and mask decoder."""
    sam = make_tiny_sam(seed=1)
    image = blobs_image(1, shape=(96, 128))
    levels = [
        SamLevel(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0, min_mask_region_area=0,
                 box_nms_thresh=1.0, crop_nms_thresh=1.0),
        SamLevel(points_per_side=2, pred_iou_thresh=0.0, stability_score_thresh=0.0, min_mask_region_area=300,
                 box_nms_thresh=1.0),
        SamLevel(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0, min_mask_region_area=0),
    ]
    calls = count_encoder_calls(sam)
    ours = SamMaskGenerator(sam, levels)(image)
    assert calls[0] == 5
    np.testing.assert_array_equal(ours, stock_maps(sam, levels, image))
    assert len(np.unique(ours[0])) > 10


def test_no_mask_found_gives_all_zero_maps_where_segment_anything_raises():
    sam = make_colour_sam()
    image = blobs_image(2)
    nothing = SamLevel(points_per_side=4, pred_iou_thresh=1.5, stability_score_thresh=0.0)  # iou <= 1 always
    # segment-anything 1.0 crashes on an empty result when crop layers are on ...
    with pytest.raises(IndexError):
        SamAutomaticMaskGenerator(sam, **nothing.as_generator_kwargs()).generate(image)
    # ... resegzoo gives an all-zero map for that level and keeps the others.
    some = COLOUR_LEVELS[1]
    maps = SamMaskGenerator(sam, [nothing, some])(image)
    assert maps.shape == (2, 160, 200)
    assert not maps[0].any()
    np.testing.assert_array_equal(maps[1], stock_maps(sam, [some], image)[0])


def test_zero_levels_give_zero_maps():
    maps = SamMaskGenerator(make_colour_sam(), [])(blobs_image(0))
    assert maps.shape == (0, 160, 200) and maps.dtype == np.int32


def sliding_windows(height, width, size, stride):
    return [(y, x, y + size, x + size) for y in range(0, height - size + 1, stride)
            for x in range(0, width - size + 1, stride)]


def test_windows_in_one_region_are_cut_from_one_run():
    sam = make_colour_sam()
    image = blobs_image(3, shape=(128, 192))
    windows = sliding_windows(128, 192, 64, 32)  # 3 x 5 windows
    # scale_points off: the levels' settings apply to the whole region (fewer points per window)
    generator = SamMaskGenerator(sam, COLOUR_LEVELS[:2], region_size=256, scale_points=False)
    calls = count_encoder_calls(sam)
    reported: list[int] = []
    per_window = generator.generate_windows(image, windows, progress=reported.append)
    assert calls[0] == 5  # one region: one full pass + 4 crops, for all 15 windows
    assert reported == [len(windows)]
    whole = generator(image)
    assert len(per_window) == len(windows)
    for (y0, x0, y1, x1), maps in zip(windows, per_window):
        np.testing.assert_array_equal(maps, whole[:, y0:y1, x0:x1])


def test_density_levels_keep_the_points_per_window():
    from resegzoo.masks.sam import METHOD_LEVELS, density_levels

    # a 448 px region over 224 px windows: ratio 2 -> points 4 -> 8 and 2 -> 4, one more crop layer
    scaled = density_levels(METHOD_LEVELS, 448 / 224)
    assert [lv.points_per_side for lv in scaled] == [8, 4, 4, 4]
    assert [lv.crop_n_layers for lv in scaled] == [2, 2, 2, 2]
    assert [lv.pred_iou_thresh for lv in scaled] == [lv.pred_iou_thresh for lv in METHOD_LEVELS]
    # SAM's native 1024 px over 224 px windows: ratio 4.57 -> 18 points, log2 = 2.19 -> 2 more layers
    big = density_levels(METHOD_LEVELS[:1], 1024 / 224)
    assert (big[0].points_per_side, big[0].crop_n_layers) == (18, 3)
    # points per window area stay the reference's: 18^2 / (1024/224)^2 = 15.5 vs 4^2 = 16
    assert abs(18 ** 2 / (1024 / 224) ** 2 - 16) < 1
    assert density_levels(METHOD_LEVELS, 1.0) == METHOD_LEVELS  # a window alone: unchanged
    no_crops = SamLevel(points_per_side=3, crop_n_layers=0)
    assert density_levels([no_crops], 2.0)[0].crop_n_layers == 0


def test_region_mode_scales_points_with_the_region():
    sam = make_colour_sam()
    image = blobs_image(3, shape=(128, 128))
    windows = sliding_windows(128, 128, 64, 32)  # one region of 128 x 128: ratio 128 / 64 = 2
    levels = [SamLevel(points_per_side=3, pred_iou_thresh=0.0, stability_score_thresh=0.3, min_mask_region_area=0)]
    generator = SamMaskGenerator(sam, levels, region_size=256)
    calls = count_encoder_calls(sam)
    per_window = generator.generate_windows(image, windows, progress=lambda n: None)
    # log2 2 = 1 more crop layer: 1 + 4 + 16 crops embedded, 6 x 6 points on the region
    assert calls[0] == 1 + 4 + 16
    from resegzoo.masks.sam import density_levels

    assert density_levels(levels, 2.0)[0].points_per_side == 6
    whole = generator(image, density_levels(levels, 2.0))
    for (y0, x0, y1, x1), maps in zip(windows, per_window):
        np.testing.assert_array_equal(maps, whole[:, y0:y1, x0:x1])


def test_windows_larger_than_the_region_run_alone_and_match_the_reference():
    """region_size = window size: SAM runs per window, exactly the reference code's windows."""
    sam = make_colour_sam()
    image = blobs_image(4, shape=(96, 128))
    windows = sliding_windows(96, 128, 64, 32)
    generator = SamMaskGenerator(sam, COLOUR_LEVELS[1:3], region_size=64)
    per_window = generate_for_windows(generator, image, windows)
    for (y0, x0, y1, x1), maps in zip(windows, per_window):
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        np.testing.assert_array_equal(maps, stock_maps(sam, COLOUR_LEVELS[1:3], crop))


def test_cache_returns_the_same_maps_without_running_sam(tmp_path):
    sam = make_colour_sam()
    image = blobs_image(5)
    calls = count_encoder_calls(sam)
    settings = {"generator": "sam", "weights": "colour", "levels": [1]}
    cached = CachedMaskGenerator(SamMaskGenerator(sam, COLOUR_LEVELS[:2]), tmp_path, settings)
    first = cached(image)
    assert calls[0] == 5 and cached.misses == 1
    again = CachedMaskGenerator(SamMaskGenerator(sam, COLOUR_LEVELS[:2]), tmp_path, settings)(image)
    assert calls[0] == 5  # read from disk by a new generator: no encoder pass
    np.testing.assert_array_equal(first, again)
    assert again.dtype == np.int32

    windows = [(0, 0, 64, 64), (32, 32, 96, 96)]
    win_first = cached.generate_windows(image, windows)
    calls_after_windows = calls[0]
    win_again = cached.generate_windows(image, windows)
    assert calls[0] == calls_after_windows
    for a, b in zip(win_first, win_again):
        np.testing.assert_array_equal(a, b)

    other = CachedMaskGenerator(SamMaskGenerator(sam, COLOUR_LEVELS[:1]), tmp_path, {**settings, "levels": [0]})
    assert other.key(image) != cached.key(image)
    assert cached.key(image[::-1].copy()) != cached.key(image)
    other(image)
    assert calls[0] == calls_after_windows + 5
    assert not temporaries(tmp_path), "no temporary files are left behind"


def test_bad_images_are_rejected_with_a_clear_message():
    generator = SamMaskGenerator(make_colour_sam(), COLOUR_LEVELS[:1])
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        generator(np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        generator(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="outside"):
        generator.generate_windows(np.zeros((32, 32, 3), np.uint8), [(0, 0, 64, 64)])
