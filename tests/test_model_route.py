"""Issue 15 item 1: the model route reads top-down. resolve -> fetch -> read -> build each live in
one module of resegzoo/weights/, none imports another (the callers in loading.py call them in
turn), and resolve/fetch are generic enough for other model families (a transformers folder, a
Hub repo: SAM 3's route)."""
from __future__ import annotations

from pathlib import Path

import pytest

from test_import_graph import ROOT, import_graph

from resegzoo.weights.fetch import fetch
from resegzoo.weights.resolve import resolve_location
from resegzoo.weights.zoo import FetchError, LoadError

STEPS = ["resegzoo.weights.resolve", "resegzoo.weights.fetch", "resegzoo.weights.read", "resegzoo.weights.build"]


def test_no_step_of_the_route_imports_another_or_its_callers():
    graph = import_graph(ROOT)
    for step in STEPS:
        climbs = graph[step] & (set(STEPS) | {"resegzoo.weights.loading"})
        assert not climbs, f"{step} imports {sorted(climbs)}: the caller calls each step, steps never call each other"
    assert set(STEPS) <= graph["resegzoo.weights.loading"]


def test_the_clip_method_and_the_sam_factories_take_the_route():
    graph = import_graph(ROOT)
    for caller in ("resegzoo.methods.clip.build", "resegzoo.masks.sam_factory", "resegzoo.masks.sam2_factory"):
        assert "resegzoo.weights.loading" in graph[caller], caller
        assert not graph[caller] & {"resegzoo.weights.hub", "resegzoo.weights.read"}, caller


def test_resolve_tells_locations_apart(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "w.pt").write_bytes(b"")
    hub = resolve_location("hf-hub:org/repo", "sam3")
    assert (hub.form, hub.kind, hub.repo, hub.layout) == ("hf-hub", "sam3", "org/repo", "snapshot")
    assert resolve_location("hf-hub:org/repo").layout == "open_clip"  # a CLIP: open_clip's Hub layout
    assert resolve_location(f"local-dir:{tmp_path / 'model'}").form == "folder"
    assert resolve_location(str(tmp_path / "model")).path == tmp_path / "model"
    assert resolve_location(str(tmp_path / "w.pt")).form == "file"
    assert resolve_location("remoteclip-vit-b-32") is None  # a name: the registry's business


def test_a_snapshot_of_a_local_folder_is_the_folder(tmp_path):
    (tmp_path / "sam3").mkdir()
    (tmp_path / "sam3" / "config.json").write_text("{}")
    files = fetch(resolve_location(f"local-dir:{tmp_path / 'sam3'}", "sam3"))
    assert files.folder == tmp_path / "sam3" and files.weights is None
    with pytest.raises(LoadError, match="no such folder"):
        resolve_location(f"local-dir:{tmp_path / 'missing'}", "sam3")


def test_a_snapshot_of_a_hub_repo_comes_from_the_hf_cache_offline(put_in_hf_cache):
    config = put_in_hf_cache("facebook/sam3", "config.json", b'{"model_type": "sam3"}')
    put_in_hf_cache("facebook/sam3", "model.safetensors", b"w")
    files = fetch(resolve_location("hf-hub:facebook/sam3", "sam3"))
    assert Path(files.folder) == config.parent
    assert sorted(p.name for p in Path(files.folder).iterdir()) == ["config.json", "model.safetensors"]
    with pytest.raises(FetchError, match="not in the Hugging Face cache and offline mode is on"):
        fetch(resolve_location("hf-hub:facebook/not-cached", "sam3"))
