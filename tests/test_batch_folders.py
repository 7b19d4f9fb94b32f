"""--recursive mirrors input folders under --out (issue 18, item 10): a/x.tif and b/x.tif write a/x.*
and b/x.*, not x.* and x-2.*; the summary shows relative paths and every output written."""
from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from resegzoo.cli import build_cli
from segment_helpers import COLOR_CLASSES, block_labels, paint

ARGS = ["--model", "oracle", "--masks", "none", "--classes", "; ".join(COLOR_CLASSES), "--window", "16",
        "--stride", "16"]


def _tree(root):
    for k, sub in enumerate(["a", "b", "b/deeper"]):
        (root / sub).mkdir(parents=True)
        Image.fromarray(paint(block_labels(20, 24, cell=4, seed=k))).save(root / sub / "x.png")
    Image.fromarray(paint(block_labels(20, 24, cell=4, seed=7))).save(root / "top.png")
    return root


def test_recursive_mirrors_folders_and_the_summary_lists_every_output(tmp_path):
    root = _tree(tmp_path / "in")
    out = tmp_path / "out"
    result = CliRunner().invoke(build_cli(), ["segment", str(root), "--recursive", *ARGS, "--vector", "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted(f"{stem}.{suffix}" for stem in ("a/x", "b/x", "b/deeper/x", "top")
                             for suffix in ("labels.png", "overlay.png", "regions.gpkg", "json"))
    for k, stem in enumerate(["a/x", "b/x", "b/deeper/x"]):  # each unit is its own input's
        np.testing.assert_array_equal(np.array(Image.open(out / f"{stem}.labels.png")),
                                      block_labels(20, 24, cell=4, seed=k))
        assert json.loads((out / f"{stem}.json").read_text())["input"] == str(root / f"{stem}.png")
    table = result.output[result.output.index("image "):].splitlines()
    total = next(i for i, line in enumerate(table) if line.startswith("total: 4 images"))
    rows = {line.split()[0]: " ".join(line.split()[5:]) for line in table[1:total]}
    assert rows == {"a/x.png": "a/x.labels.png, x.overlay.png, x.regions.gpkg, x.json",
                    "b/x.png": "b/x.labels.png, x.overlay.png, x.regions.gpkg, x.json",
                    "b/deeper/x.png": "b/deeper/x.labels.png, x.overlay.png, x.regions.gpkg, x.json",
                    "top.png": "top.labels.png, top.overlay.png, top.regions.gpkg, top.json"}
    assert f"{root / 'b' / 'x.png'} -> {out / 'b' / 'x.labels.png'}, x.overlay.png, x.regions.gpkg, x.json" \
        in result.output
    # a rerun with --skip-existing finds every unit in its mirrored folder
    again = CliRunner().invoke(build_cli(), ["segment", str(root), "--recursive", *ARGS, "--vector", "--out", str(out),
                                             "--skip-existing"], catch_exceptions=False)
    assert again.exit_code == 0 and again.output.count("skipped, its result") == 4
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == written


def test_files_named_directly_still_share_one_folder_and_get_suffixes(tmp_path):
    root = _tree(tmp_path / "in")
    out = tmp_path / "out"
    result = CliRunner().invoke(build_cli(), ["segment", str(root / "a" / "x.png"), str(root / "b" / "x.png"), *ARGS,
                                              "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.json")) == ["x-2.json", "x.json"]
