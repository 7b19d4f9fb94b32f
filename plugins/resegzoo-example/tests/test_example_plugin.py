"""The example plugin is found through its installed entry point, like any third-party plugin."""
from __future__ import annotations

import importlib.metadata as md

import numpy as np
import pytest
import torch

from resegzoo.plugin import DISABLE_ENV, MaskGenerator, build_registry, get_plugin_manager


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
    assert registry.models.owners["example-tiny"] == "example"  # the entry-point name
    assert registry.mask_generators.owners["example-grid"] == "example"
    assert pm.report.distributions["example"][0] == "resegzoo-example"


def test_disabling_autoload_removes_it(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "1")
    registry = build_registry(get_plugin_manager())
    assert "example-tiny" not in registry.models and "example-grid" not in registry.mask_generators


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


def test_example_tiny_weights_are_made_offline_once_and_are_deterministic(monkeypatch):
    from safetensors.torch import load_file

    from resegzoo.testing import make_tiny_clip
    from resegzoo_example.tiny import weights_path

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    record = build_registry(get_plugin_manager()).models.get("example-tiny")
    assert record.kind == "clip" and record.random_weights and record.details.model_config is not None
    path = record.source.fetcher()  # what resegzoo calls to get the checkpoint file
    assert path == weights_path()
    loaded, reference = load_file(str(path)), make_tiny_clip(seed=0).state_dict()
    assert loaded.keys() == reference.keys()
    assert all(torch.equal(loaded[k], reference[k]) for k in reference)
    made = path.stat().st_mtime_ns
    assert record.source.fetcher() == path and path.stat().st_mtime_ns == made  # generated once, then reused
