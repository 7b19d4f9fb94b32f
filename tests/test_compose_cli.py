"""End to end through the CLI: compose tiny models, segment with the result, publish --dry-run."""
from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from compose_helpers import related_models, save_folders
from PIL import Image

from resegzoo.cli import build_cli
from resegzoo.compose import read_metadata


def invoke(*args: str):
    return CliRunner().invoke(build_cli(), list(args))


def test_compose_segment_publish(tmp_path):
    folders = save_folders(related_models(2, seed=6), tmp_path)
    recipe = tmp_path / "soup.yaml"
    recipe.write_text(
        "name: tiny-soup\n"
        f"inputs:\n  - {{model: {folders[0]}, label: A}}\n  - {{model: {folders[1]}, label: B}}\n"
        "weighting: {strategy: prompt-quality, params: {tau: 0.05}}\n"
        "vocabulary: {classes: [tree, water, road], templates: ['a photo of {}.', 'an aerial image of {}.']}\n"
        "output: soup\n"  # relative to the recipe file
    )
    result = invoke("compose", str(recipe))
    assert result.exit_code == 0, result.output
    out = tmp_path / "soup"
    lines = result.stdout.splitlines()  # the progress bars go to stderr
    top = next(i for i, line in enumerate(lines) if line.startswith("model "))
    assert lines[top].split() == ["model", "weight", "consistency", "separation", "quality", "sha256"]
    meta = read_metadata(out)
    rows = [line.split() for line in lines[top + 2:top + 4]]
    assert [r[0] for r in rows] == ["A", "B"]
    assert [r[1] for r in rows] == [f"{w:.4f}" for w in meta["weights"]]

    image = np.zeros((96, 96, 3), np.uint8)
    image[:, :48] = (40, 120, 40)
    image[:, 48:] = (30, 60, 160)
    Image.fromarray(image).save(tmp_path / "tile.png")
    seg = invoke("segment", str(tmp_path / "tile.png"), "--model", str(out), "--classes", "tree; water",
                 "--masks", "slic", "--out", str(tmp_path / "seg"))
    assert seg.exit_code == 0, seg.output
    sidecar = json.loads((tmp_path / "seg" / "tile.json").read_text())
    assert sidecar["model"] == str(out) and sidecar["size"] == [96, 96]
    labels = np.asarray(Image.open(tmp_path / "seg" / "tile.labels.png"))
    assert labels.shape == (96, 96)

    pub = invoke("publish", str(out), "--repo-id", "me/tiny-soup", "--dry-run")
    assert pub.exit_code == 0, pub.output
    assert "open_clip_model.safetensors" in pub.output and "README.md" in pub.output


def test_dry_run_writes_nothing(tmp_path):
    folders = save_folders(related_models(2, seed=7), tmp_path)
    result = invoke("compose", "--model", folders[0], "--model", folders[1], "--out", str(tmp_path / "o"), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output and "0.5000" in result.output
    assert not (tmp_path / "o").exists()
