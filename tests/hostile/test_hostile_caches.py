"""Cache entries that lie (issue 26, items 5 and 8): what a cache holds is checked against what
was asked for, and computed again on a mismatch; a cache folder other users can write is not used.

Item 5, text embeddings: NaN, infinite, zero or swapped rows were used (every pixel one class, or
classes swapped, exit 0); a wrong width raised a traceback on every run until deleted by hand.
Item 8, the mask cache: wrong maps were used; 0 or extra levels raised raw errors.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from hostile_helpers import cli
from resegzoo.segmenter.text import Vocabulary, embed_vocabulary
from resegzoo.testing import TINY_MODEL_CONFIG, make_tiny_clip

VOCAB = Vocabulary.parse("building, roof; road; tree")


@pytest.fixture
def model(tmp_path, resegzoo_cache) -> Path:
    folder = tmp_path / "tiny"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in make_tiny_clip(3).state_dict().items()},
              str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_MODEL_CONFIG}))
    return folder


def _segmenter(model: Path):
    from resegzoo.segmenter.core import Segmenter

    return Segmenter.from_recipe(model=str(model), masks="none")


def _entry(resegzoo_cache: Path) -> Path:
    entry, = (resegzoo_cache / "text-embeddings").glob("*.safetensors")
    return entry


def _rewrite(entry: Path, change) -> None:
    """Change the stored rows, keeping whatever else the entry holds."""
    tensors = load_file(str(entry))
    tensors["names"] = change(tensors["names"]).contiguous()
    save_file(tensors, str(entry))


def _fresh(seg) -> torch.Tensor:
    return embed_vocabulary(seg.encoder, VOCAB, seg.templates).names


def _unit(rows: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(rows, dim=-1)


LIES = {
    "NaN rows": lambda n: torch.full_like(n, float("nan")),
    "an infinite value": lambda n: n.index_put((torch.tensor([1]), torch.tensor([0])), torch.tensor(float("inf"))),
    "zero rows": lambda n: torch.zeros_like(n),
    "swapped rows": lambda n: n[[1, 0, 3, 2]],
    "a wrong width": lambda n: _unit(torch.randn(n.shape[0], n.shape[1] + 3)),
    "rows that are not unit vectors": lambda n: n * 3,
}


@pytest.mark.parametrize("lie", sorted(LIES))
def test_a_text_embeddings_entry_that_lies_is_computed_again(model, resegzoo_cache, lie):
    first = _segmenter(model)
    first.text_embeddings(VOCAB)
    entry = _entry(resegzoo_cache)
    _rewrite(entry, LIES[lie])
    again = _segmenter(model)
    with pytest.warns(UserWarning, match="computing them again"):
        names = again.text_embeddings(VOCAB).names
    assert again.text.computed == 1 and again.text.loaded == 0
    assert torch.allclose(names, _fresh(again), atol=1e-6)
    third = _segmenter(model)  # the entry was replaced by a good one
    assert torch.allclose(third.text_embeddings(VOCAB).names, names) and third.text.loaded == 1


def test_an_entry_of_other_names_renamed_is_not_used(model, resegzoo_cache):
    """Same number of names, another vocabulary: its entry copied onto this one's file name."""
    seg = _segmenter(model)
    seg.text_embeddings(VOCAB)
    mine = _entry(resegzoo_cache)
    mine.unlink()
    seg.text_embeddings(Vocabulary.parse("water, lake; car; grass"))  # 4 names too
    theirs = _entry(resegzoo_cache)
    theirs.rename(mine)
    again = _segmenter(model)
    with pytest.warns(UserWarning, match="computing them again"):
        names = again.text_embeddings(VOCAB).names
    assert torch.allclose(names, _fresh(again), atol=1e-6)


def test_a_wrong_width_entry_gives_no_traceback_in_segment(model, resegzoo_cache, tmp_path):
    from PIL import Image

    image = tmp_path / "scene.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 48, 3), np.uint8)).save(image)
    args = ("segment", str(image), "--model", str(model), "--masks", "none", "--classes", "building, roof; road; tree")
    assert cli(*args, "--out", str(tmp_path / "a")).exit_code == 0
    _rewrite(_entry(resegzoo_cache), LIES["a wrong width"])
    result = cli(*args, "--out", str(tmp_path / "b"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "scene.labels.png").read_bytes() == (tmp_path / "b" / "scene.labels.png").read_bytes()


@pytest.mark.parametrize("where", ["text-embeddings", "cache root"])
def test_a_text_cache_folder_writable_by_others_is_not_used_with_a_note(model, resegzoo_cache, where):
    first = _segmenter(model)
    first.text_embeddings(VOCAB)
    folder = resegzoo_cache / "text-embeddings" if where == "text-embeddings" else resegzoo_cache
    folder.chmod(0o777)
    try:
        again = _segmenter(model)
        assert any(str(folder) in note and "writable by every user" in note for note in again.notes), again.notes
        again.text_embeddings(VOCAB)
        assert again.text.loaded == 0 and again.text.computed == 1, "an entry others could have written was read"
        folder.chmod(0o1777)  # the sticky bit (as /tmp): others cannot replace what is there
        assert not any("not cached" in note for note in _segmenter(model).notes)
    finally:
        folder.chmod(0o700)
