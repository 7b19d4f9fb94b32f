"""Issue 8, item 15: what a composed model publishes (model card, recipe.yaml, safetensors metadata,
config) names its inputs by registry name, file name and sha256, never by a local path."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from compose_helpers import related_models, save_folder
from resegzoo.compose import compose, read_metadata, recipe_from_mapping
from resegzoo.compose.output import OUTPUT_FILES
from resegzoo.weights.st_io import SafetensorsFile
from resegzoo.compose.recipe import default_labels, without_local_paths


def _published_text(out: Path) -> dict[str, str]:
    texts = {name: (out / name).read_text(encoding="utf-8") for name in OUTPUT_FILES if not name.endswith(".safetensors")}
    with SafetensorsFile(out / "open_clip_model.safetensors") as fh:
        texts["safetensors metadata"] = json.dumps(fh.metadata)
    return texts


def test_published_files_hold_names_and_hashes_not_local_paths(tmp_path, tiny_clip_config):
    models = related_models(2, seed=7)
    home = tmp_path / "home" / "someone" / "checkpoints"
    folder = save_folder(models[0], home / "georsclip")
    pickle_file = home / "remote.pt"
    torch.save(models[1].state_dict(), pickle_file)
    (tmp_path / "images").mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "images" / "a.png")
    recipe = recipe_from_mapping({
        "inputs": [str(folder), str(pickle_file)],
        "model_config": tiny_clip_config,
        "weighting": {"strategy": "image-agreement", "params": {"images": [str(tmp_path / "images")], "tau": 1.0}},
        "vocabulary": {"classes": ["red", "blue"]},
    })
    out = compose(recipe, tmp_path / "soup", progress=False).output

    local = [str(tmp_path), str(home), "someone"]
    if Path.home() != Path("/"):
        local.append(str(Path.home()))
    for name, text in _published_text(out).items():
        leaks = [p for p in local if p in text]
        assert not leaks, f"{name} holds local paths {leaks}"

    meta = read_metadata(out)
    assert [i["spec"] for i in meta["inputs"]] == ["georsclip", "remote.pt"]
    assert [i["file"] for i in meta["inputs"]] == ["open_clip_model.safetensors", "remote.pt"]
    assert [i["label"] for i in meta["inputs"]] == ["georsclip", "remote.pt"]
    assert meta["inputs"][1]["sha256"] == hashlib.sha256(pickle_file.read_bytes()).hexdigest()
    assert meta["recipe"]["inputs"] == [{"model": "georsclip", "label": "georsclip"},
                                        {"model": "remote.pt", "label": "remote.pt"}]
    assert meta["weighting"]["params"]["images"] == ["images"] and meta["recipe"]["output"] is None
    card = (out / "README.md").read_text()
    assert "remote.pt" in card and meta["inputs"][1]["sha256"][:16] in card


def test_registry_names_and_hub_ids_stay_as_they_are():
    assert without_local_paths({"a": ["/abs/x.pt", "~/y.pt", "../z.pt", "local-dir:/m/soup", "hf-hub:org/repo",
                                      "remoteclip-vit-l-14", "a photo of {}.", 3]}) == \
        {"a": ["x.pt", "y.pt", "z.pt", "soup", "hf-hub:org/repo", "remoteclip-vit-l-14", "a photo of {}.", 3]}


def test_default_labels_are_short_and_distinct():
    assert default_labels(["/a/b/model.pt", "/a/c/model.pt", "remoteclip-vit-l-14"]) == \
        ["b/model.pt", "c/model.pt", "remoteclip-vit-l-14"]
    assert default_labels(["/x/soup/", "hf-hub:org/m"]) == ["soup", "hf-hub:org/m"]
    assert default_labels([f"{os.sep}same.pt"]) == ["same.pt"]
