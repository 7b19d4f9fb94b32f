"""Issue 17 item 3: a model folder's open_clip_config.json is checked against its weights before
anything is allocated. A folder of a few MB whose config asks for a huge model is refused with a one-line
error (it used to allocate gigabytes and die); a model_cfg of the wrong type, or with negative or
zero sizes, is a one-line error too (AttributeError / RuntimeError tracebacks before)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import save_file

from hostile_helpers import refused
from resegzoo.testing import tiny_model_config

#: address space the loading subprocess may use: enough for torch and open_clip (about 3.6 GB of
#: virtual memory once imported), far below what the hostile config would allocate (over 100 GB)
ADDRESS_SPACE = 8 << 30


@pytest.fixture
def workspace(tmp_path, resegzoo_cache):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / "in" / "scene.png")
    return tmp_path


def _folder(path: Path, tiny_clip, model_cfg) -> Path:
    """The tiny model's real weights (8 MB) with ``model_cfg`` as its config."""
    path.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in tiny_clip.state_dict().items()}, str(path / "open_clip_model.safetensors"))
    (path / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg}))
    return path


def _segment(workspace: Path, model: Path, *fragments: str) -> str:
    args = ("segment", str(workspace / "in" / "scene.png"), "--classes", "red; blue", "--masks", "none",
            "--model", str(model), "--out", str(workspace / "out"))
    return refused(workspace, *args, fragments=fragments, out=workspace / "out", allowed=[workspace / "resegzoo-cache"])


def _load_under_limit(folder: Path) -> subprocess.CompletedProcess:
    """load_clip(folder) in a subprocess whose address space is capped: code that builds the model
    before checking it fails there with a MemoryError/RuntimeError instead of exhausting the machine.
    Exit code 3: a LoadError (printed)."""
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE}, {ADDRESS_SPACE}))
        from resegzoo.weights.loading import load_clip
        from resegzoo.weights.zoo import LoadError
        try:
            load_clip({str(folder)!r})
        except LoadError as exc:
            print("LoadError:", exc)
            sys.exit(3)
    """)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


def test_a_config_far_larger_than_its_weights_is_refused_without_allocating(tmp_path, tiny_clip):
    """Width 16384 for 8 MB of weights: refused before the model is built (building it first
    needs over 100 GB)."""
    folder = _folder(tmp_path / "huge", tiny_clip, tiny_model_config(width=16384))
    assert (folder / "open_clip_model.safetensors").stat().st_size < 10 << 20  # 8 MB of weights
    result = _load_under_limit(folder)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "does not fit" in result.stdout and "visual.conv1.weight" in result.stdout, result.stdout


def test_a_config_with_more_blocks_than_the_weights_hold_tensors_is_refused_before_building(tmp_path, tiny_clip):
    """A million blocks: too many to build even without memory (the meta device still runs a
    million constructors); the checkpoint cannot hold them (fewer tensors than blocks)."""
    folder = _folder(tmp_path / "deep", tiny_clip, tiny_model_config(layers=1_000_000))
    result = _load_under_limit(folder)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "vision_cfg.layers = 1000000" in result.stdout and "tensors" in result.stdout, result.stdout


@pytest.mark.parametrize(("model_cfg", "fragments"), [
    ("ViT-B-32", ("model_cfg", "must be a mapping", "str")),
    (dict(tiny_model_config(), vision_cfg=[1, 2]), ("vision_cfg", "must be a mapping")),
    (dict(tiny_model_config(), embed_dim="32"), ("embed_dim", "positive whole number")),
    (tiny_model_config(width=-64), ("vision_cfg.width", "-64", "positive")),
    (tiny_model_config(layers=0), ("vision_cfg.layers", "positive")),
    (tiny_model_config(patch_size=True), ("vision_cfg.patch_size", "positive whole number")),
    (dict(tiny_model_config(), text_cfg=dict(tiny_model_config()["text_cfg"], heads=-4)), ("text_cfg.heads", "-4")),
    (tiny_model_config(mlp_ratio=-1.0), ("vision_cfg.mlp_ratio", "positive number")),
    (tiny_model_config(image_size=[64, -64]), ("vision_cfg.image_size", "positive")),
    # issue 26 items 1 and 2: the model's input side sizes every window
    (tiny_model_config(image_size=100_000), ("vision_cfg.image_size = 100000", "at most 4,096 px")),
])
def test_a_config_of_the_wrong_type_or_with_bad_sizes_is_a_one_line_error(workspace, tiny_clip, model_cfg, fragments):
    _segment(workspace, _folder(workspace / "model", tiny_clip, model_cfg), "open_clip_config", *fragments)


def test_a_config_open_clip_cannot_build_is_a_one_line_error(workspace, tiny_clip):
    """Sizes that are each valid but do not go together."""
    text = dict(tiny_model_config()["text_cfg"], heads=5)  # width 32 is no multiple of 5 heads
    _segment(workspace, _folder(workspace / "model", tiny_clip, dict(tiny_model_config(), text_cfg=text)),
             "cannot build a model from its open_clip config")
