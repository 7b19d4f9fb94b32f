"""The ``sam`` plugin's factory: checkpoints from a path or the zoo (offline cache), safe loading."""
from __future__ import annotations

import os
import pickle

import pytest
import torch

from resegzoo.weights.zoo import FetchError
from resegzoo.masks.cache import CachedMaskGenerator, settings_digest
from resegzoo.masks.sam import METHOD_LEVELS, SamLevel, SamMaskGenerator
from resegzoo.masks.sam_factory import cache_settings, parse_sam_settings
from resegzoo.masks.testing import make_tiny_sam
from resegzoo.plugins.registry import build_registry


@pytest.fixture(scope="module")
def sam_factory():
    return build_registry().mask_generators.get("sam").factory


@pytest.fixture(scope="module")
def vit_b_checkpoint(tmp_path_factory):
    """A real-size SAM vit_b with random weights, saved as segment-anything's .pth (a state dict)."""
    from segment_anything import sam_model_registry

    torch.manual_seed(7)
    state = sam_model_registry["vit_b"]().state_dict()
    path = tmp_path_factory.mktemp("sam") / "sam_vit_b_01ec64.pth"
    torch.save(state, path)
    return path, state


def assert_same_weights(generator: SamMaskGenerator, state: dict) -> None:
    loaded = generator.predictor.model.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


def test_zoo_name_resolves_to_the_cached_download_offline(sam_factory, vit_b_checkpoint, resegzoo_cache,
                                                          hf_offline):
    path, state = vit_b_checkpoint
    (resegzoo_cache / "downloads").mkdir(parents=True)
    os.link(path, resegzoo_cache / "downloads" / path.name)  # where `resegzoo fetch sam-vit-b` puts it
    generator = sam_factory(checkpoint="sam-vit-b", device="cpu")
    assert isinstance(generator, SamMaskGenerator)
    assert_same_weights(generator, state)
    assert generator.levels == METHOD_LEVELS  # METHOD.md's 4 levels by default
    assert generator.predictor.model.image_encoder.img_size == 1024

    # A level given in part keeps METHOD.md's values for the rest; cache_dir wraps it in the cache.
    cached = sam_factory(checkpoint=str(path), device="cpu", cache_dir=str(resegzoo_cache / "maps"),
                         levels=[{"points_per_side": 8}, {}])
    assert isinstance(cached, CachedMaskGenerator)
    assert cached.inner.levels == (SamLevel(points_per_side=8), METHOD_LEVELS[1])
    assert_same_weights(cached.inner, state)


def test_cache_key_changes_with_every_setting_and_the_weights():
    base = parse_sam_settings({"levels": [{"points_per_side": 8}, {}]})
    key = settings_digest(cache_settings(base, "vit_b", "sha256:aa"))
    assert key == settings_digest(cache_settings(parse_sam_settings({"levels": [{"points_per_side": 8}, {}],
                                                                     "device": "cuda"}), "vit_b", "sha256:aa"))
    changed = [
        cache_settings(parse_sam_settings({"levels": [{"points_per_side": 8}, {"pred_iou_thresh": 0.7}]}),
                       "vit_b", "sha256:aa"),
        cache_settings(parse_sam_settings({"levels": [{"points_per_side": 8}]}), "vit_b", "sha256:aa"),
        cache_settings(parse_sam_settings({"levels": [{"points_per_side": 8}, {}], "painting": "sam-order"}),
                       "vit_b", "sha256:aa"),
        cache_settings(base, "vit_b", "sha256:bb"),
        cache_settings(parse_sam_settings({"levels": [{"points_per_side": 8}, {}], "scale_points": False}),
                       "vit_b", "sha256:aa"),
        cache_settings(parse_sam_settings({"levels": [{"points_per_side": 8}, {}], "region_size": "window"}),
                       "vit_b", "sha256:aa"),
    ]
    assert len({key, *(settings_digest(c) for c in changed)}) == 1 + len(changed)


def test_region_size_is_pixels_or_window():
    assert parse_sam_settings({"region_size": "window"}).region_size == "window"
    assert parse_sam_settings({"region_size": 448}).region_size == 448
    assert parse_sam_settings({}).scale_points is True
    with pytest.raises(Exception, match="region_size"):
        parse_sam_settings({"region_size": "windows"})


def test_missing_zoo_checkpoint_offline_says_what_to_download(sam_factory, resegzoo_cache, hf_offline):
    with pytest.raises(FetchError, match="sam_vit_l_0b3195.pth"):
        sam_factory(checkpoint="sam-vit-l")


def test_checkpoint_of_another_model_type_is_refused(sam_factory, vit_b_checkpoint):
    with pytest.raises(ValueError, match="holds a SAM vit_b checkpoint, but model: vit_l"):
        sam_factory(checkpoint=str(vit_b_checkpoint[0]), model="vit_l")


def test_bad_checkpoint_files_are_clear_errors(sam_factory, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sam_factory(checkpoint=str(tmp_path / "nope.pth"))

    tiny = tmp_path / "tiny.pth"
    torch.save(make_tiny_sam().state_dict(), tiny)
    with pytest.raises(ValueError, match="does not look like a segment-anything checkpoint"):
        sam_factory(checkpoint=str(tiny))
    with pytest.raises(ValueError, match=r"does not fit SAM vit_b: .*wrong shapes: image_encoder"):
        sam_factory(checkpoint=str(tiny), model="vit_b")

    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(tiny.read_bytes()[:2000])
    with pytest.raises(ValueError, match="could not be read as a SAM checkpoint"):
        sam_factory(checkpoint=str(truncated))

    not_a_state_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], not_a_state_dict)
    with pytest.raises(ValueError, match="not a SAM state dict"):
        sam_factory(checkpoint=str(not_a_state_dict))


class _RunsCodeWhenUnpickled:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_that_runs_code_is_refused_without_running_it(sam_factory, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as fh:
        pickle.dump({"image_encoder.x": _RunsCodeWhenUnpickled(str(marker))}, fh, protocol=2)
    with pytest.raises(ValueError, match="could not be read"):
        sam_factory(checkpoint=str(evil))
    assert not marker.exists()
