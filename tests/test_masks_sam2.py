"""The sam2 mask generator against sam2's own SAM2AutomaticMaskGenerator, per level, on a randomly
initialised Hiera built from sam2's own config; zoo records; the missing-extra message."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

from resegzoo.cli import build_cli
from resegzoo.weights.zoo import FetchError
from resegzoo.masks.sam2 import Sam2Level, make_sam2_generator
from resegzoo.masks.sam2_factory import Sam2MissingError, build_sam2_generator
from resegzoo.weights.loading import load_sam2
from resegzoo.masks.testing import make_tiny_sam2
from resegzoo.weights.zoo import get_sam_checkpoint
from test_masks_sam import blobs_image, paint_records

# thresholds at 0 so random weights leave masks; levels differ so a mix-up of levels shows
LEVELS = [
    Sam2Level(points_per_side=3, pred_iou_thresh=0.0, stability_score_thresh=0.0, min_mask_region_area=0,
              crop_n_layers=0, box_nms_thresh=1.0),
    Sam2Level(points_per_side=2, pred_iou_thresh=0.0, stability_score_thresh=0.0, min_mask_region_area=0,
              crop_n_layers=0, box_nms_thresh=0.9, mask_threshold=0.1),
]


@pytest.fixture(scope="module")
def tiny_sam2():
    return make_tiny_sam2(seed=0)


def test_id_maps_equal_the_stock_generator_per_level_and_batched(tiny_sam2):
    image = blobs_image(1, shape=(96, 128))
    other = blobs_image(2, shape=(80, 100))
    calls = {"calls": 0, "rows": 0}

    def hook(module, args):
        calls["calls"] += 1
        calls["rows"] += int(args[0].shape[0])

    tiny_sam2.image_encoder.register_forward_pre_hook(hook)
    ours = make_sam2_generator(tiny_sam2, LEVELS)(image)
    assert calls == {"calls": 1, "rows": 1}  # one embedding for both levels
    records = [SAM2AutomaticMaskGenerator(tiny_sam2, **lv.as_generator_kwargs()).generate(image) for lv in LEVELS]
    assert ours.shape == (2, 96, 128) and ours.dtype == np.int32
    np.testing.assert_array_equal(ours, paint_records(records, image.shape[:2]))
    assert all(len(np.unique(m)) >= 3 for m in ours), "the test needs several masks per level"
    # two images' crops through the image encoder in one call give each image's own maps
    calls.update(calls=0, rows=0)
    both = make_sam2_generator(tiny_sam2, LEVELS, image_batch=2).generate_many([image, other])
    assert calls == {"calls": 1, "rows": 2}
    np.testing.assert_array_equal(both[0], ours)
    np.testing.assert_array_equal(both[1], make_sam2_generator(tiny_sam2, LEVELS)(other))


def test_sam21_zoo_records():
    for model_type, file in [("hiera_t", "sam2.1_hiera_tiny.pt"), ("hiera_s", "sam2.1_hiera_small.pt"),
                             ("hiera_b+", "sam2.1_hiera_base_plus.pt"), ("hiera_l", "sam2.1_hiera_large.pt")]:
        record = get_sam_checkpoint(model_type)
        assert record.kind == "sam2" and record.source.url.endswith("/092824/" + file)
        assert record.license == "Apache-2.0" and record.size
    with pytest.raises(ValueError, match="go with --masks sam2"):
        from resegzoo.weights.loading import sam_checkpoint

        sam_checkpoint("sam2.1-hiera-tiny", None)


def test_checkpoint_round_trip_and_offline_error(tmp_path, tiny_sam2, hf_offline):
    # a full-size random Hiera-T saved as a SAM 2.1 checkpoint loads back, its type read from it
    full = make_tiny_sam2(seed=3, full_size=True)
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": full.state_dict()}, path)
    loaded, model_type = load_sam2(path)
    assert model_type == "hiera_t"
    for key, value in full.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    with pytest.raises(ValueError, match="holds a SAM 2.1 hiera_t checkpoint, but model: hiera_s"):
        load_sam2(path, "hiera_s")
    # the zoo checkpoint is not in the cache and the network is off: a clear error, as for SAM
    with pytest.raises(FetchError, match="sam2.1-hiera-tiny: sam2.1_hiera_tiny.pt is not in resegzoo's cache and "
                                         "offline mode is on"):
        build_sam2_generator(checkpoint="sam2.1-hiera-tiny")


def test_missing_sam2_says_how_to_install(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sam2" else real(name, *a))
    with pytest.raises(Sam2MissingError, match=r'pip install "resegzoo\[sam2\]"'):
        build_sam2_generator()
    image = tmp_path / "a.png"
    Image.fromarray(blobs_image(0, shape=(40, 40))).save(image)
    out = tmp_path / "out"
    result = CliRunner().invoke(build_cli(), ["segment", str(image), "--classes", "red; blue", "--model", "oracle",
                                              "--masks", "sam2", "--out", str(out)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert 'pip install "resegzoo[sam2]"' in result.output and "SAM2_BUILD_CUDA=0" in result.output
    assert not out.exists()
