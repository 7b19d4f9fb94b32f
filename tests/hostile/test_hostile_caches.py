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
from resegzoo.methods.clip.text import embed_vocabulary
from resegzoo.vocabulary import Vocabulary
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
    return embed_vocabulary(seg.encoder, VOCAB, seg.method.templates).names


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
    first.method.text_embeddings(VOCAB)
    entry = _entry(resegzoo_cache)
    _rewrite(entry, LIES[lie])
    again = _segmenter(model)
    with pytest.warns(UserWarning, match="computing them again"):
        names = again.method.text_embeddings(VOCAB).names
    assert again.method.text.computed == 1 and again.method.text.loaded == 0
    assert torch.allclose(names, _fresh(again), atol=1e-6)
    third = _segmenter(model)  # the entry was replaced by a good one
    assert torch.allclose(third.method.text_embeddings(VOCAB).names, names) and third.method.text.loaded == 1


def test_an_entry_of_other_names_renamed_is_not_used(model, resegzoo_cache):
    """Same number of names, another vocabulary: its entry copied onto this one's file name."""
    seg = _segmenter(model)
    seg.method.text_embeddings(VOCAB)
    mine = _entry(resegzoo_cache)
    mine.unlink()
    seg.method.text_embeddings(Vocabulary.parse("water, lake; car; grass"))  # 4 names too
    theirs = _entry(resegzoo_cache)
    theirs.rename(mine)
    again = _segmenter(model)
    with pytest.warns(UserWarning, match="computing them again"):
        names = again.method.text_embeddings(VOCAB).names
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
    first.method.text_embeddings(VOCAB)
    folder = resegzoo_cache / "text-embeddings" if where == "text-embeddings" else resegzoo_cache
    folder.chmod(0o777)
    try:
        again = _segmenter(model)
        assert any(str(folder) in note and "writable by every user" in note for note in again.cache_notes), \
            again.cache_notes
        again.method.text_embeddings(VOCAB)
        assert again.method.text.loaded == 0 and again.method.text.computed == 1, "an entry others could have written was read"
        folder.chmod(0o1777)  # the sticky bit (as /tmp): others cannot replace what is there
        assert _segmenter(model).cache_notes == []
    finally:
        folder.chmod(0o700)


# -- item 8: the mask cache -----------------------------------------------------------------------


def _slic():
    from resegzoo.masks.superpixels import build_slic

    return build_slic(n_segments=[16, 4])


def _cached(directory: Path):
    from resegzoo.masks.cache import CachedMaskGenerator

    return CachedMaskGenerator(_slic(), directory, {"generator": "slic", "n_segments": [16, 4]})


def _image(seed: int, size: int = 48) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (size, size, 3), np.uint8)


def _entry_of(directory: Path) -> Path:
    entry, = directory.rglob("*.npz")
    return entry


def _rewrite_maps(entry: Path, change) -> None:
    """Replace the stored maps with ``change(maps)``; an entry with a checksum gets a valid one, so
    the maps themselves must be checked (a buggy writer, or the same user)."""
    with np.load(entry) as data:
        arrays = dict(data)
    maps = change([arrays.pop(f"m{i}") for i in range(len([k for k in arrays if k.startswith("m")]))])
    out = {f"m{i}": m for i, m in enumerate(maps)}
    if "checksum" in arrays:
        from resegzoo.masks.cache import maps_checksum

        out["checksum"] = maps_checksum(entry.stem, maps)
    with open(entry, "wb") as fh:
        np.savez_compressed(fh, **out)


MAP_LIES = {
    "no levels": lambda maps: [m[:0] for m in maps],
    "extra levels": lambda maps: [np.concatenate([m, m, m]) for m in maps],
    "a smaller map": lambda maps: [m[:, :-1] for m in maps],
    "float maps": lambda maps: [m.astype(np.float32) + 0.5 for m in maps],
    "negative ids": lambda maps: [-m - 1 for m in maps],
    "a map short": lambda maps: maps[:-1],
}


@pytest.mark.parametrize("lie", sorted(MAP_LIES))
def test_a_mask_cache_entry_that_does_not_fit_the_request_is_recomputed(tmp_path, lie):
    image = _image(0)
    boxes = [(0, 0, 32, 32), (16, 16, 48, 48)]
    expected = _slic().generate_windows(image, boxes)
    _cached(tmp_path / "maps").generate_windows(image, boxes)
    _rewrite_maps(_entry_of(tmp_path / "maps"), MAP_LIES[lie])
    cache = _cached(tmp_path / "maps")
    got = cache.generate_windows(image, boxes)
    assert cache.misses == 1 and cache.hits == 0
    assert all(np.array_equal(g, e) for g, e in zip(got, expected)) and len(got) == len(expected)
    again = _cached(tmp_path / "maps")  # the entry was replaced by a good one
    again.generate_windows(image, boxes)
    assert again.hits == 1


def test_maps_of_another_image_renamed_to_this_key_are_not_used(tmp_path):
    a, b = _image(1), _image(2)
    cache = _cached(tmp_path / "maps")
    cache(b)
    entry_b = _entry_of(tmp_path / "maps")
    target = cache.cache.path(cache.key(a))
    target.parent.mkdir(parents=True, exist_ok=True)
    entry_b.rename(target)
    assert np.array_equal(_cached(tmp_path / "maps")(a), _slic()(a)), "another image's maps were used"


def test_a_lying_mask_cache_gives_no_raw_error_in_segmenting(model, tmp_path):
    """0 levels under the image's key: the schedule's segment levels were missing (a raw error)."""
    from resegzoo.masks.cache import CachedMaskGenerator
    from resegzoo.segmenter.core import Segmenter

    def segmenter():
        seg = Segmenter.from_recipe(model=str(model), masks="slic")
        seg.mask_generator = CachedMaskGenerator(seg.mask_generator, tmp_path / "maps", {"generator": "slic"})
        return seg

    image = _image(3, 64)
    expected = segmenter().segment(image, VOCAB).labels
    for entry in (tmp_path / "maps").rglob("*.npz"):
        _rewrite_maps(entry, MAP_LIES["no levels"])
    assert np.array_equal(segmenter().segment(image, VOCAB).labels, expected)


def test_a_mask_cache_folder_writable_by_others_is_not_used_with_a_note(tmp_path):
    image = _image(4)
    _cached(tmp_path / "maps")(image)
    (tmp_path / "maps").chmod(0o777)
    try:
        cache = _cached(tmp_path / "maps")
        assert any("mask cache is not used" in n and "writable by every user" in n for n in cache.notes), cache.notes
        cache(image)
        assert cache.hits == 0 and cache.misses == 1
        from resegzoo.segmenter.core import Segmenter

        class Method:
            window, device, scores = 32, "cpu", "probabilities"

        assert cache.notes[0] in Segmenter(None, cache, None, method=Method()).cache_notes
    finally:
        (tmp_path / "maps").chmod(0o700)


def test_unsafe_folder_rules(tmp_path):
    import grp
    import os

    from resegzoo.outputs.reading import unsafe_folder

    folder = tmp_path / "cache" / "inner"
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    assert unsafe_folder(folder, up_to=tmp_path / "cache") is None
    assert unsafe_folder(tmp_path / "cache" / "not-yet") is None  # created later, by resegzoo
    folder.chmod(0o775)  # a group: safe only when it is this user's own private group
    import pwd

    mine = os.stat(folder).st_gid == os.getgid() and \
        set(grp.getgrgid(os.getgid()).gr_mem) <= {pwd.getpwuid(os.getuid()).pw_name}
    assert (unsafe_folder(folder) is None) == mine
    if os.geteuid() == 0:  # root can hand the folder to a group with other members
        os.chown(folder, -1, 12345)
        assert "writable by the users of group 12345" in unsafe_folder(folder)
    folder.chmod(0o755)
    (tmp_path / "cache").chmod(0o777)
    assert "writable by every user" in unsafe_folder(folder, up_to=tmp_path / "cache")
    assert unsafe_folder(folder) is None  # up_to not given: the folder alone
    (tmp_path / "cache").chmod(0o755)
    if os.geteuid() == 0:  # only root can give a folder to another user
        os.chown(folder, 12345, -1)
        assert "belongs to another user (uid 12345)" in unsafe_folder(folder)
