"""Issue 26 item 2: every size that sizes an allocation is bounded, and a size past its limit is
refused in one line naming the key and the limit, before any work.

A 100,000 px window (or short side, or SAM 3 image size) padded a 64 x 64 image to 28 GiB: a
traceback, or the OOM killer. The tests run under :func:`hostile_helpers.bounded`, so code that still tries to
allocate fails at once with a MemoryError (a traceback: the test fails) instead of taking the
machine down.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hostile_helpers import bounded, refused
from resegzoo.segmenter.recipe import InferenceSettings, SegmentRecipe, load_recipe
from resegzoo.schema import SchemaError

HUGE = 100_000
#: the limits (resegzoo.segmenter.recipe's MAX_*), written out: the messages must give them
MAX_WINDOW, MAX_RESIZE, MAX_TILE_SIZE, MAX_TILE_OVERLAP, MAX_BATCH, MAX_PREFETCH = 4096, 8192, 8192, 4096, 1024, 16


def test_the_limits_written_here_are_the_code_s():
    from resegzoo.segmenter import recipe

    assert (recipe.MAX_WINDOW, recipe.MAX_RESIZE, recipe.MAX_TILE_SIZE, recipe.MAX_TILE_OVERLAP, recipe.MAX_BATCH,
            recipe.MAX_PREFETCH) == (MAX_WINDOW, MAX_RESIZE, MAX_TILE_SIZE, MAX_TILE_OVERLAP, MAX_BATCH, MAX_PREFETCH)


@pytest.fixture
def workspace(tmp_path, resegzoo_cache):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(tmp_path / "in" / "scene.png")
    return tmp_path


def _segment(workspace: Path, *args: str, image: Path | None = None, fragments: tuple[str, ...]) -> str:
    with bounded():
        return refused(workspace, "segment", str(image or workspace / "in" / "scene.png"), "--model", "oracle",
                       "--classes", "red; blue", "--out", str(workspace / "out"), *args, fragments=fragments,
                       out=workspace / "out", allowed=[workspace / "resegzoo-cache"])


@pytest.mark.parametrize(("flag", "key", "most"), [
    ("--window", "inference.window", MAX_WINDOW),
    ("--stride", "inference.stride", MAX_WINDOW),
    ("--short-side", "inference.short_side", MAX_RESIZE),
    ("--tile-size", "inference.tile_size", MAX_TILE_SIZE),
])
def test_a_huge_size_flag_is_refused_naming_the_key_and_the_limit(workspace, flag, key, most):
    _segment(workspace, "--masks", "none", flag, str(HUGE), fragments=(key, f"{most:,}", f"{HUGE:,}"))


@pytest.mark.parametrize(("yaml", "key", "most"), [
    ("inference: {window: 100000}", "inference.window", MAX_WINDOW),
    ("inference: {short_side: 100000}", "inference.short_side", MAX_RESIZE),
    ("inference: {resize: fit, fit_scale: [100000, 448]}", "inference.fit_scale", MAX_RESIZE),
    ("inference: {tile_overlap: 100000}", "inference.tile_overlap", MAX_TILE_OVERLAP),
    ("inference: {batch_size: 100000}", "inference.batch_size", MAX_BATCH),
    ("inference: {prefetch: 100000}", "inference.prefetch", MAX_PREFETCH),
])
def test_a_huge_size_in_a_recipe_is_refused_naming_the_key_and_the_limit(workspace, yaml, key, most):
    recipe = workspace / "recipe.yaml"
    recipe.write_text(yaml + "\n")
    _segment(workspace, "--masks", "none", "--recipe", str(recipe),
             fragments=(str(recipe), key, f"{most:,}", f"{HUGE:,}"))


@pytest.mark.parametrize(("masks", "fragments"), [
    ("{generator: slic, settings: {n_segments: [100000000]}}", ("n_segments", "65,536")),
    ("{generator: slic, settings: {region_size: 100000000}}", ("region_size", "8,192")),
    ("{generator: slic, settings: {n_segments: [" + ", ".join(["8"] * 100) + "]}}", ("n_segments", "100 items", "16")),
    ("{generator: felzenszwalb, settings: {scales: [" + ", ".join(["8"] * 100) + "]}}", ("scales", "100 items")),
])
def test_huge_mask_settings_are_refused_naming_the_key(workspace, masks, fragments):
    recipe = workspace / "recipe.yaml"
    recipe.write_text(f"masks: {masks}\n")
    _segment(workspace, "--recipe", str(recipe), fragments=fragments)


@pytest.mark.parametrize(("settings", "fragments"), [
    ({"levels": [{"points_per_side": HUGE}]}, ("levels[0]", "points_per_side", "256")),
    ({"levels": [{"crop_n_layers": 40}]}, ("crop_n_layers", "4")),
    ({"levels": [{}] * 100}, ("levels", "100 items", "16")),
    ({"points_per_batch": 10**9}, ("points_per_batch", "4,096")),
    ({"image_batch": 10**6}, ("image_batch", "64")),
    ({"region_size": HUGE}, ("region_size", "8,192")),
])
def test_huge_sam_settings_are_refused_before_sam_loads(settings, fragments):
    from resegzoo.masks.sam_factory import parse_sam_settings

    with pytest.raises(SchemaError) as info:
        parse_sam_settings(settings)
    assert all(f in str(info.value) for f in fragments), str(info.value)


def test_a_huge_segearth_ov3_name_batch_is_refused():
    from resegzoo.methods.segearth_ov3.method import SegEarthOV3Settings

    with pytest.raises(ValueError, match="name_batch is 100,000, above the limit of 256"):
        SegEarthOV3Settings(name_batch=HUGE)


def test_limits_hold_for_records_built_in_python_and_overrides():
    with pytest.raises(ValueError, match="inference.window is 100,000, above the limit of 4,096"):
        SegmentRecipe(inference=InferenceSettings(window=HUGE))
    with pytest.raises(SchemaError, match="inference.short_side is 100,000"):
        load_recipe(None, short_side=HUGE)
    load_recipe(None, window=MAX_WINDOW, short_side=MAX_RESIZE, tile_size=MAX_TILE_SIZE)  # the limits themselves pass


def test_a_models_own_huge_window_is_refused_before_any_image(tiny_clip):
    """A model whose native input is 100,000 px (a SAM 3 config's image_size, a plugin's window):
    refused when the segmenter is made, not when the first image is padded."""
    from resegzoo.segmenter.core import Segmenter

    class HugeMethod:
        window = HUGE
        device = "cpu"
        scores = "probabilities"

    with bounded(), pytest.raises(ValueError, match="native window is 100,000 px, above the limit of 4,096"):
        Segmenter(None, None, None, method=HugeMethod())


def test_a_resize_that_blows_up_every_block_is_refused_before_any_work(workspace):
    """A 2 x 3000 strip with short side 8192 (within the key's limit): every block becomes
    8192 x 12 million px. Refused in planning, naming the settings."""
    strip = workspace / "in" / "strip.png"
    Image.fromarray(np.full((2, 3000, 3), 90, np.uint8)).save(strip)
    _segment(workspace, "--masks", "none", "--short-side", str(MAX_RESIZE), image=strip,
             fragments=(str(strip), "inference.short_side = 8192", "inference.tile_size", "above the limit"))


def test_a_huge_image_given_whole_to_the_api_is_refused_with_advice():
    from resegzoo.segmenter.core import Segmenter

    class Method:
        window = 32
        device = "cpu"
        scores = "probabilities"

    seg = Segmenter(None, None, load_recipe(None, short_side=MAX_RESIZE), method=Method())
    with bounded(), pytest.raises(ValueError, match="inference.short_side = 8192 gives 8,192 x 4,096,000"):
        seg.prepare(np.zeros((2, 1000, 3), np.uint8), masks=False)
