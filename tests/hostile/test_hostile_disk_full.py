"""A full disk (issue 17, item 10): segment, eval and compose write into a tmpfs too small for their
outputs. Each must end in a one-line error naming the folder, with nothing half-written left.

The tmpfs is real (the kernel answers ENOSPC to the real writes: PIL's, GDAL's, safetensors'),
mounted for the test and unmounted after; mounting needs root.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import save_file

from hostile_helpers import assert_one_line_error, cli, files_under
from resegzoo.outputs.atomic import temporaries


@pytest.fixture
def full_disk(tmp_path):
    """An 8 KiB tmpfs: room for two small files (a page each), none for a third, an overlay or a model."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")  # the only way to a real full disk in a test
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def _noise(path: Path, size: int) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def _nothing_half_written(folder: Path) -> None:
    assert not temporaries(folder), temporaries(folder)
    assert not [p for p in files_under(folder) if p.name.endswith(".claim")]


def test_segment_into_a_full_disk(tmp_path, full_disk):
    image = _noise(tmp_path / "noise.png", 256)
    out = full_disk / "out"
    message = assert_one_line_error(
        cli("segment", str(image), "--model", "oracle", "--masks", "none", "--classes", "red; green; blue",
            "--out", str(out)), str(out), "no space left on the device")
    assert "noise." in message  # which file did not fit
    assert files_under(out) == []  # the unit is all or nothing
    _nothing_half_written(full_disk)


def test_eval_into_a_full_disk(tmp_path, full_disk):
    from resegzoo.eval.datasets.generic import load_classes_file
    from resegzoo.eval.synthetic import write_dataset
    from resegzoo_oracle import color_of

    root = tmp_path / "data"
    root.mkdir()
    (root / "classes.yaml").write_text("classes: [red, green, blue]\n")
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, color_of, images=3, height=160, width=160)
    out = full_disk / "out"
    assert_one_line_error(cli("eval", "--dataset", "generic", "--root", str(root), "--model", "oracle", "--masks",
                              "none", "--overlays", "3", "--quiet", "--out", str(out)),
                          str(out), "no space left on the device")
    _nothing_half_written(full_disk)
    for result in out.rglob("*.npy"):  # what was written is whole: per-image results load
        assert np.load(result).shape == (3, 3)


def test_compose_into_a_full_disk(tmp_path, full_disk):
    from resegzoo.testing import TINY_MODEL_CONFIG, make_tiny_clip

    models = []
    for seed in (1, 2):
        folder = tmp_path / f"m{seed}"
        folder.mkdir()
        save_file({k: v.contiguous() for k, v in make_tiny_clip(seed).state_dict().items()},
                  str(folder / "open_clip_model.safetensors"))
        (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_MODEL_CONFIG}))
        models += ["--model", str(folder)]
    out = full_disk / "soup"
    assert_one_line_error(cli("compose", *models, "--out", str(out)), str(full_disk), "no space left on the device")
    assert not out.exists()
    _nothing_half_written(full_disk)
    assert list(full_disk.iterdir()) == []
