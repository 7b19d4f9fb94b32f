"""Files resegzoo reads back from an output folder or a cache that are not what it wrote there
(issue 17, item 9): a FIFO (a plain open waits forever), a link to /dev/zero (a plain read never
ends), a folder (IsADirectoryError), a link to some other file.

Claim files and sidecars are read back by ``segment``; an eval run folder's per-image results, the
Ray spool, the mask cache and the sha256 memos are read back too. Each must end within seconds:
either the thing is passed over and replaced by a fresh result, or a one-line error names it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hostile_helpers import assert_one_line_error, bounded, cli, plant

KINDS = ("fifo", "link to /dev/zero", "folder")


@pytest.fixture
def scene(tmp_path):
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "scene.png"
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(path)
    return path


def _segment(scene: Path, out: Path, *args: str):
    with bounded():
        return cli("segment", str(scene), "--model", "oracle", "--masks", "none", "--classes", "red; blue",
                   "--out", str(out), *args)


# -- segment: claim files and sidecars -------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_claim_file_that_is_no_file_is_named_not_read(scene, tmp_path, kind):
    out = tmp_path / "out"
    planted = plant(out / ".scene.claim", kind)
    message = assert_one_line_error(_segment(scene, out), str(planted), "remove it")
    assert "not a file resegzoo wrote" in message
    assert not (out / "scene.json").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_a_sidecar_that_is_no_file_is_no_result_to_skip(scene, tmp_path, kind):
    out = tmp_path / "out"
    plant(out / "scene.json", kind)
    result = _segment(scene, out, "--skip-existing")
    assert result.exit_code == 0, result.output
    # not a finished result: the input is segmented, under the next free name, and the thing stays
    assert (out / "scene-2.json").is_file() and (out / "scene-2.labels.png").is_file()
    assert os.path.lexists(out / "scene.json")


# -- eval: the run folder's per-image results ------------------------------------------------------


def test_a_folder_in_place_of_a_per_image_result_is_a_one_line_error(tmp_path):
    from resegzoo.eval.datasets.generic import load_classes_file
    from resegzoo.eval.synthetic import write_dataset
    from resegzoo_oracle import color_of

    root = tmp_path / "data"
    root.mkdir()
    (root / "classes.yaml").write_text("classes: [red, green, blue]\n")
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, color_of, images=2, height=32, width=32)
    args = ("eval", "--dataset", "generic", "--root", str(root), "--model", "oracle", "--masks", "none",
            "--quiet", "--out", str(tmp_path / "out"))
    assert cli(*args).exit_code == 0
    results = sorted((tmp_path / "out").glob("runs/*/confusion/*.npy"))
    assert len(results) == 2
    results[0].unlink()
    plant(results[0], "folder")
    with bounded():
        assert_one_line_error(cli(*args), str(results[0]), "a folder is in the way")


# -- caches and the spool: passed over and recomputed; a folder in the way is named ---------------


@pytest.mark.parametrize("kind", KINDS)
def test_sha256_memo_that_is_no_file(tmp_path, monkeypatch, kind):
    from resegzoo.errors import ResegzooError
    from resegzoo.weights import cache as hub

    monkeypatch.setenv("RESEGZOO_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"weights")
    expected = hub.sha256_file(weights)
    assert hub.cached_sha256(weights) == expected
    memo, = (tmp_path / "cache" / "compose" / "sha256").iterdir()
    memo.unlink()
    plant(memo, kind)
    with bounded():
        if kind == "folder":
            with pytest.raises(ResegzooError, match="a folder is in the way"):
                hub.cached_sha256(weights)
        else:
            assert hub.cached_sha256(weights) == expected
            assert memo.is_file() and not memo.is_symlink()  # written anew


@pytest.mark.parametrize("kind", KINDS)
def test_mask_cache_entry_that_is_no_file(tmp_path, kind):
    from resegzoo.masks.cache import CachedMaskGenerator
    from resegzoo.errors import ResegzooError

    calls = []

    def generator(image):
        calls.append(1)
        return np.ones((1, *image.shape[:2]), np.int32)

    cached = CachedMaskGenerator(generator, tmp_path / "maps", {"generator": "ones"})
    image = np.zeros((8, 8, 3), np.uint8)
    cached(image)
    entry, = (tmp_path / "maps").rglob("*.npz")
    entry.unlink()
    plant(entry, kind)
    with bounded():
        if kind == "folder":
            with pytest.raises(ResegzooError, match="a folder is in the way"):
                cached(image)
        else:
            assert cached(image).shape == (1, 8, 8) and len(calls) == 2  # recomputed
            assert entry.is_file() and not entry.is_symlink()


def test_mask_cache_entry_declaring_a_huge_array_is_not_allocated(tmp_path):
    """An .npy header may declare any shape; numpy would allocate it before reading."""
    import io
    import zipfile

    from resegzoo.masks.cache import CachedMaskGenerator

    cached = CachedMaskGenerator(lambda image: np.ones((1, 8, 8), np.int32), tmp_path / "maps", {"g": 1})
    image = np.zeros((8, 8, 3), np.uint8)
    cached(image)
    entry, = (tmp_path / "maps").rglob("*.npz")
    from numpy.lib import format as npy

    buf = io.BytesIO()  # a header saying 10^12 int32 values (4 TB), followed by 16 bytes
    npy.write_array_header_1_0(buf, {"descr": "<i4", "fortran_order": False, "shape": (10**12,)})
    with zipfile.ZipFile(entry, "w") as zf:
        zf.writestr("m0.npy", buf.getvalue() + bytes(16))
    with bounded():
        assert cached(image).shape == (1, 8, 8)


@pytest.mark.parametrize("kind", KINDS)
def test_spooled_block_that_is_no_file_is_recomputed(tmp_path, kind):
    from types import SimpleNamespace

    from resegzoo.batch.spool import spooled_blocks
    from resegzoo.raster.blocks import Block

    plan = SimpleNamespace(blocks=[Block(0, (0, 0, 8, 8), (0, 0, 8, 8))], class_names=["a", "b"], objects=False)
    planted = plant(tmp_path / "spool" / "0.npz", kind)
    with bounded():
        assert spooled_blocks(tmp_path / "spool", plan) == {}
    assert not os.path.lexists(planted)  # removed, so the fresh block can be written there


@pytest.mark.parametrize("kind", KINDS)
def test_text_embeddings_entry_that_is_no_file(tmp_path, resegzoo_cache, kind):
    import json

    from safetensors.torch import save_file

    from resegzoo.api import Vocabulary
    from resegzoo.errors import ResegzooError
    from resegzoo.segmenter.core import Segmenter
    from resegzoo.testing import TINY_MODEL_CONFIG, make_tiny_clip

    folder = tmp_path / "tiny"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in make_tiny_clip(3).state_dict().items()},
              str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_MODEL_CONFIG}))
    vocab = Vocabulary.parse("building; road")
    expected = Segmenter.from_recipe(model=str(folder), masks="none").method.text_embeddings(vocab).names
    entry, = (resegzoo_cache / "text-embeddings").iterdir()
    entry.unlink()
    plant(entry, kind)
    again = Segmenter.from_recipe(model=str(folder), masks="none")
    with bounded():
        if kind == "folder":
            with pytest.raises(ResegzooError, match="a folder is in the way"):
                again.method.text_embeddings(vocab)
        else:
            with pytest.warns(UserWarning, match="unreadable"):
                assert np.allclose(again.method.text_embeddings(vocab).names, expected)
            assert entry.is_file() and not entry.is_symlink()


def test_a_link_in_place_of_a_converted_input_is_not_used(tmp_path, resegzoo_cache):
    """compose converts a pickled input once into the cache, named by the input's sha256; a link
    there to other weights must not be averaged in its place."""
    import hashlib

    import torch
    from safetensors.torch import load_file, save_file

    from resegzoo.compose import compose, recipe_from_mapping
    from resegzoo.testing import make_tiny_clip, tiny_model_config

    models = [make_tiny_clip(seed) for seed in (1, 2)]
    paths = []
    for i, model in enumerate(models):
        paths.append(tmp_path / f"m{i}.pt")
        torch.save(model.state_dict(), paths[-1])
    folder = resegzoo_cache / "compose" / "safetensors"
    folder.mkdir(parents=True)
    # a cache entry for m0 that is a link to m1's conversion: m1 would be averaged with itself
    other = tmp_path / "other.safetensors"
    save_file({k: v.contiguous() for k, v in models[1].state_dict().items()}, str(other))
    (folder / f"{hashlib.sha256(paths[0].read_bytes()).hexdigest()}.safetensors").symlink_to(other)
    data = {"inputs": [str(p) for p in paths], "model_config": tiny_model_config(),
            "weighting": {"strategy": "manual", "params": {"weights": [1.0, 0.0]}}}
    compose(recipe_from_mapping(data), tmp_path / "out", progress=False)
    out = load_file(str(tmp_path / "out" / "open_clip_model.safetensors"))
    key = "visual.proj" if "visual.proj" in out else next(k for k in out if out[k].is_floating_point())
    torch.testing.assert_close(out[key], models[0].state_dict()[key])  # m0's own weights
    assert not any(p.is_symlink() for p in folder.iterdir())
