"""Hostile files (issue 8, item 2): pickles that run code, malformed safetensors headers, YAML with
python tags, truncated and zero-byte images, recipes with wrong types.

Each goes through the command a user would run; each must end in a one-line error that says what
is wrong, with no traceback, no code run, no output written and nothing created outside the
folders the command may touch (the cache and --out).
"""
from __future__ import annotations

import io
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image

from hostile_helpers import refused, zip_entries


@pytest.fixture
def workspace(tmp_path, resegzoo_cache):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / "in" / "scene.png")
    return tmp_path


def _refused(workspace: Path, *args: str, fragments: tuple[str, ...], out: Path | None = None) -> str:
    """Run the CLI; it must fail with a one-line error, write no output, touch nothing outside
    the cache and ``out``, and run no code (no ``code-ran`` folder anywhere)."""
    return refused(workspace, *args, fragments=fragments, out=out or workspace / "out",
                   allowed=[workspace / "resegzoo-cache"])


def _segment(workspace: Path, *args: str) -> tuple[str, ...]:
    return ("segment", str(workspace / "in" / "scene.png"), "--classes", "red; blue", "--masks", "none",
            "--out", str(workspace / "out"), *args)


# -- pickles that run code ----------------------------------------------------------------------


class RunsCode:
    """Unpickling this calls os.makedirs(marker): proof that the file ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.makedirs, (self.marker,)


def _torch_pickle(path: Path, marker: Path) -> Path:
    torch.save({"visual.proj": torch.zeros(2, 2), "evil": RunsCode(marker)}, path)
    return path


def _plain_pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"state_dict": RunsCode(marker)}))
    return path


@pytest.mark.parametrize("make", [_torch_pickle, _plain_pickle])
def test_pickle_that_runs_code_is_refused_by_segment(workspace, make):
    evil = make(workspace / "evil.pt", workspace / "code-ran")
    _refused(workspace, *_segment(workspace, "--model", str(evil), "--arch", "ViT-B-32"),
             fragments=("refused to unpickle", "weights_only"))


def test_pickle_that_runs_code_inside_a_zip_is_refused(workspace):
    evil = _torch_pickle(workspace / "evil.pt", workspace / "code-ran")
    archive = zip_entries(workspace / "evil.zip", [("ckpt/evil.pt", evil.read_bytes())])
    _refused(workspace, *_segment(workspace, "--model", str(archive), "--arch", "ViT-B-32"),
             fragments=("refused to unpickle",))


def test_pickle_that_runs_code_is_refused_by_compose(workspace):
    evil = _torch_pickle(workspace / "evil.pt", workspace / "code-ran")
    twin = workspace / "twin.pt"
    twin.write_bytes(evil.read_bytes())
    (workspace / "out").mkdir()
    _refused(workspace, "compose", "--model", str(evil), "--model", str(twin), "--architecture", "ViT-B-32",
             "--out", str(workspace / "out" / "soup"), fragments=("refused to unpickle",))


def test_pickle_that_runs_code_is_refused_as_sam_checkpoint(workspace):
    evil = _torch_pickle(workspace / "sam.pth", workspace / "code-ran")
    _refused(workspace, "segment", str(workspace / "in" / "scene.png"), "--classes", "red; blue", "--model", "oracle",
             "--sam-checkpoint", str(evil), "--out", str(workspace / "out"), fragments=(str(evil),))


# -- malformed safetensors headers --------------------------------------------------------------


def _safetensors(path: Path, header: object, data: bytes = b"", header_len: int | None = None) -> Path:
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    path.write_bytes(struct.pack("<Q", len(raw) if header_len is None else header_len) + raw + data)
    return path


MALFORMED_HEADERS = {
    "zero-byte file": (b"", None, b""),
    "shorter than the length field": (b"", None, b""),  # written specially below
    "header length beyond the file": ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, 1 << 40, b"\0" * 4),
    "header not JSON": (b"{not json", None, b""),
    "header is a list": ([1, 2, 3], None, b""),
    "entry is a number": ({"w": 5}, None, b""),
    "entry without offsets": ({"w": {"dtype": "F32", "shape": [1]}}, None, b"\0" * 4),
    "offsets of the wrong type": ({"w": {"dtype": "F32", "shape": [1], "data_offsets": "0-4"}}, None, b"\0" * 4),
    "negative shape": ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}, None, b""),
    "reversed offsets": ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, None, b"\0" * 4),
    "tensor beyond the file": ({"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}, None, b"\0" * 4),
    "unknown dtype": ({"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, None, b"\0" * 16),
    "metadata is a list": ({"__metadata__": ["a"], "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
                           None, b"\0" * 4),
}


def _write_malformed(path: Path, case: str) -> Path:
    header, header_len, data = MALFORMED_HEADERS[case]
    if case == "zero-byte file":
        path.write_bytes(b"")
        return path
    if case == "shorter than the length field":
        path.write_bytes(b"\x01\x02")
        return path
    return _safetensors(path, header, data, header_len)


@pytest.mark.parametrize("case", sorted(MALFORMED_HEADERS))
def test_malformed_safetensors_is_refused_by_segment(workspace, case):
    bad = _write_malformed(workspace / "bad.safetensors", case)
    _refused(workspace, *_segment(workspace, "--model", str(bad), "--arch", "ViT-B-32"), fragments=(str(bad),))


@pytest.mark.parametrize("case", sorted(MALFORMED_HEADERS))
def test_malformed_safetensors_is_refused_by_compose(workspace, tiny_clip_config, case):
    """compose reads headers with its own streaming reader (resegzoo.weights.st_io): same refusal."""
    folders = []
    for name in ("a", "b"):
        folder = workspace / name
        folder.mkdir()
        (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": tiny_clip_config}))
        _write_malformed(folder / "open_clip_model.safetensors", case)
        folders.append(str(folder))
    (workspace / "out").mkdir()
    _refused(workspace, "compose", "--model", folders[0], "--model", folders[1], "--out",
             str(workspace / "out" / "soup"), fragments=("open_clip_model.safetensors",))


# -- YAML with python tags ----------------------------------------------------------------------

PYTHON_TAG = "!!python/object/apply:os.makedirs [{marker}]"


def test_compose_recipe_with_python_tag_is_refused(workspace):
    recipe = workspace / "recipe.yaml"
    recipe.write_text(f"inputs: {PYTHON_TAG.format(marker=json.dumps(str(workspace / 'code-ran')))}\n")
    (workspace / "out").mkdir()
    _refused(workspace, "compose", str(recipe), "--out", str(workspace / "out" / "soup"),
             fragments=(str(recipe), "python/object/apply:os.makedirs"))


def test_segment_recipe_with_python_tag_is_refused(workspace):
    recipe = workspace / "recipe.yaml"
    recipe.write_text(f"model: oracle\nmasks: {PYTHON_TAG.format(marker=json.dumps(str(workspace / 'code-ran')))}\n")
    _refused(workspace, "segment", str(workspace / "in" / "scene.png"), "--classes", "red; blue", "--recipe",
             str(recipe), "--out", str(workspace / "out"), fragments=(str(recipe), "python/object/apply"))


def test_vocabulary_with_python_tag_is_refused(workspace):
    vocab = workspace / "classes.yaml"
    vocab.write_text(f"- red\n- {PYTHON_TAG.format(marker=json.dumps(str(workspace / 'code-ran')))}\n")
    _refused(workspace, "segment", str(workspace / "in" / "scene.png"), "--vocab", str(vocab), "--model", "oracle",
             "--masks", "none", "--out", str(workspace / "out"), fragments=(str(vocab), "python/object/apply"))


# -- truncated and zero-byte images (these go through resegzoo.outputs.imageio's reader) ----------------


def _truncated_geotiff(path: Path) -> Path:
    data = np.random.default_rng(0).integers(0, 255, (3, 64, 64), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8") as dst:
        dst.write(data)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _truncated_png(path: Path) -> Path:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


@pytest.mark.parametrize("name, make", [
    ("empty.png", lambda p: p.write_bytes(b"") or p),
    ("empty.tif", lambda p: p.write_bytes(b"") or p),
    ("half.png", _truncated_png),
    ("half.tif", _truncated_geotiff),
])
def test_truncated_and_zero_byte_images_are_refused(workspace, name, make):
    image = make(workspace / "in" / name)
    _refused(workspace, "segment", str(image), "--model", "oracle", "--masks", "none", "--classes", "red; blue",
             "--out", str(workspace / "out"), fragments=(name,))


# -- recipes with wrong types -------------------------------------------------------------------

COMPOSE_RECIPES = {
    "inputs is a number": ("inputs: 5\n", "inputs"),
    "input model is a number": ("inputs: [{model: 3}, {model: 4}]\n", "model"),
    "unknown dtype": ("inputs: [a, b]\ndtype: fp64\n", "dtype"),
    "distance_warning is text": ("inputs: [a, b]\ndistance_warning: high\n", "distance_warning"),
    "classes is a string": ("inputs: [a, b]\nvocabulary: {classes: building}\n", "classes"),
    "weighting is a list": ("inputs: [a, b]\nweighting: [uniform]\n", "weighting"),
    "strategy parameter of the wrong type": ("inputs: [a, b]\nweighting: {strategy: prompt-quality, params: {tau: hot}}\n",
                                             "tau"),
    "recipe is a list": ("- a\n- b\n", "mapping"),
}


@pytest.mark.parametrize("case", sorted(COMPOSE_RECIPES))
def test_compose_recipe_with_wrong_types_is_refused(workspace, case):
    text, key = COMPOSE_RECIPES[case]
    recipe = workspace / "recipe.yaml"
    recipe.write_text(text)
    (workspace / "out").mkdir()
    _refused(workspace, "compose", str(recipe), "--out", str(workspace / "out" / "soup"), fragments=(key,))


SEGMENT_RECIPES = {
    "window is text": ("inference: {window: big}\n", "window"),
    "section is a list": ("inference: [1, 2]\n", "inference"),
    "rules is a number": ("schedule: {rules: 7}\n", "rules"),
    "batch size is a float": ("inference: {batch_size: 2.5}\n", "batch_size"),
    "recipe is a string": ("just text\n", "mapping"),
}


@pytest.mark.parametrize("case", sorted(SEGMENT_RECIPES))
def test_segment_recipe_with_wrong_types_is_refused(workspace, case):
    text, key = SEGMENT_RECIPES[case]
    recipe = workspace / "recipe.yaml"
    recipe.write_text(text)
    _refused(workspace, "segment", str(workspace / "in" / "scene.png"), "--model", "oracle", "--masks", "none",
             "--classes", "red; blue", "--recipe", str(recipe), "--out", str(workspace / "out"), fragments=(key,))
