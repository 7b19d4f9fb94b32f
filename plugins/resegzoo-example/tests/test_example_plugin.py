"""The example plugin is found through its installed entry point, like any third-party plugin."""
from __future__ import annotations

import importlib.metadata as md

import numpy as np
import pytest
import torch

from resegzoo.plugins.interfaces import MaskGenerator
from resegzoo.plugins.manager import DISABLE_ENV, get_plugin_manager
from resegzoo.plugins.registry import build_registry


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory, monkeypatch):
    # this folder is outside tests/, so resegzoo's conftest does not isolate the cache for us
    monkeypatch.setenv("RESEGZOO_CACHE", str(tmp_path_factory.getbasetemp() / "example-plugin-cache"))


def test_installed_entry_point():
    (ep,) = [ep for ep in md.entry_points(group="resegzoo") if ep.name == "example"]
    assert ep.value == "resegzoo_example"
    assert ep.dist is not None and ep.dist.name == "resegzoo-example"


def test_registered_through_the_entry_point():
    pm = get_plugin_manager()
    registry = build_registry(pm)
    assert registry.variants.owners["example-tiny"] == "example"  # the entry-point name
    assert registry.mask_generators.owners["example-grid"] == "example"
    assert pm.report.distributions["example"][0] == "resegzoo-example"


def test_disabling_autoload_removes_it(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "1")
    registry = build_registry(get_plugin_manager())
    assert "example-tiny" not in registry.variants and "example-grid" not in registry.mask_generators


def test_grid_masks_follow_the_mask_generator_contract():
    spec = build_registry(get_plugin_manager()).mask_generators.get("example-grid")
    generator = spec.factory(cells=[32, 8, 16])
    assert isinstance(generator, MaskGenerator)
    image = np.zeros((40, 50, 3), dtype=np.uint8)
    levels = generator(image)
    assert levels.shape == (3, 40, 50) and levels.dtype == np.int32
    assert levels.min() >= 1  # every pixel is covered
    # finest first: 8 px cells, then 16, then 32 (sizes rounded up at the border)
    assert [len(np.unique(level)) for level in levels] == [5 * 7, 3 * 4, 2 * 2]
    assert (levels[0][:8, :8] == levels[0][0, 0]).all() and levels[0][0, 8] != levels[0][0, 0]
    # each coarse segment is a union of finer ones (the grid is nested)
    for fine, coarse in zip(levels[:-1], levels[1:]):
        for seg in np.unique(fine):
            assert len(np.unique(coarse[fine == seg])) == 1
    with pytest.raises(ValueError, match="positive"):
        spec.factory(cells=[0])


def test_example_tiny_loads_offline_and_is_deterministic(monkeypatch):
    from resegzoo_example.tiny import weights_path

    from resegzoo.weights.loading import load_clip
    from resegzoo.testing import make_tiny_clip

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = load_clip("example-tiny")
    reference = make_tiny_clip(seed=0)
    images = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded.model.encode_image(images), reference.encode_image(images))
    assert (loaded.image_size, loaded.variant.name) == (64, "example-tiny")
    made = weights_path().stat().st_mtime_ns
    load_clip("example-tiny")
    assert weights_path().stat().st_mtime_ns == made  # generated once, then reused
