"""Issue 22 item 1: a plugin written against the module paths of the layout before issue 15
(tests/old_plugin, frozen: two CLIP variants, a mask generator, a weighting) is installed through an
entry point and runs through `resegzoo segment` and `resegzoo compose`, with deprecation warnings that
name the new paths; its results are exactly those of the same weights and masks reached without it."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from resegzoo.cli import build_cli

PLUGIN_DIR = Path(__file__).parent / "old_plugin"
CLASSES = "building; road, street; tree; water"


@pytest.fixture(scope="session")
def plugin_paths(tmp_path_factory) -> list[str]:
    """The plugin as pip leaves it: its package, and a .dist-info with a `resegzoo` entry point."""
    site = tmp_path_factory.mktemp("old-plugin-site")
    info = site / "resegzoo_oldstyle-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: resegzoo-oldstyle\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[resegzoo]\noldstyle = resegzoo_oldstyle\n")
    return [str(PLUGIN_DIR), str(site)]


@pytest.fixture
def old_plugin(plugin_paths, monkeypatch):
    """The plugin installed in this process for one test, imported afresh by the first command run (no
    registry cached from before: the command builds it, so it meets the plugin as a fresh process would)."""
    from resegzoo.plugins import registry as registry_module
    from resegzoo.plugins.registry import get_registry

    saved = list(sys.path)
    sys.path[:0] = plugin_paths
    importlib.invalidate_caches()
    for name in [m for m in sys.modules if m.split(".")[0] == "resegzoo_oldstyle"]:
        monkeypatch.delitem(sys.modules, name)  # its import-time uses of the old paths warn again
    monkeypatch.setattr(registry_module, "_default", None)
    try:
        yield
    finally:
        sys.path[:] = saved
        importlib.invalidate_caches()
        get_registry(refresh=True)


def cli(*args) -> tuple[object, list[str]]:
    """Run a command; also return the messages of the deprecation warnings it gave."""
    with pytest.warns(DeprecationWarning) as caught:
        result = CliRunner().invoke(build_cli(), [str(a) for a in args], catch_exceptions=False)
    return result, [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]


def _tile(path: Path) -> Path:
    rng = np.random.default_rng(3)
    image = np.zeros((48, 72, 3), np.uint8)
    image[:, :36] = (60, 130, 50)
    image[:, 36:] = (40, 70, 170)
    image[16:32, 20:50] = (150, 150, 150)
    Image.fromarray(np.clip(image + rng.integers(0, 20, image.shape), 0, 255).astype(np.uint8)).save(path)
    return path


def test_segment_with_the_old_plugins_variant_and_masks(old_plugin, tmp_path):
    from resegzoo.api import Segmenter, Vocabulary, load_recipe
    from resegzoo.plugins.registry import get_registry

    tile = _tile(tmp_path / "tile.png")
    result, warned = cli("segment", tile, "--model", "oldstyle-tiny-a", "--masks", "oldstyle-stripes",
                         "--classes", CLASSES, "--out", tmp_path / "seg")
    assert result.exit_code == 0, result.output
    # each old path it used warned, naming the new place: at import, in its hooks, when fetching weights
    for old, name in [("hookspecs", "hookimpl"), ("zoo", "ClipVariant"), ("interfaces", "MaskGeneratorSpec"),
                      ("hub", "cache_dir")]:
        assert any(m.startswith(f"resegzoo.{old}.{name} is deprecated: resegzoo.{old} moved to resegzoo.")
                   and m.endswith(f"import {name} from resegzoo.plugin") for m in warned), (name, warned)
    registry = get_registry()  # the one the command built, through the plugin's entry point
    assert registry.variants.owners["oldstyle-tiny-a"] == "oldstyle"
    assert registry.mask_generators.owners["oldstyle-stripes"] == "oldstyle"
    sidecar = json.loads((tmp_path / "seg" / "tile.json").read_text())
    assert sidecar["model"] == "oldstyle-tiny-a" and sidecar["masks"] == "oldstyle-stripes"
    assert sidecar["random_weights"] is True  # the record's random_weights=True reaches the user
    labels = np.asarray(Image.open(tmp_path / "seg" / "tile.labels.png"))

    # The same weights as an open_clip folder, reached by the model route without the plugin's record,
    # and the plugin's stripes: the same labels, bit for bit.
    from resegzoo.testing import make_tiny_clip, tiny_model_config
    from safetensors.torch import save_file

    folder = tmp_path / "same-weights"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in make_tiny_clip(seed=0).state_dict().items()},
              str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": tiny_model_config()}))
    reference = Segmenter.from_recipe(load_recipe(), model=str(folder), masks="oldstyle-stripes")
    expected = reference.segment(np.asarray(Image.open(tile).convert("RGB")), Vocabulary.parse(CLASSES)).labels
    np.testing.assert_array_equal(labels, expected)
    stripes = registry.mask_generators.get("oldstyle-stripes").factory(widths=(4,))(np.zeros((2, 9, 3), np.uint8))
    np.testing.assert_array_equal(stripes, [[[1, 1, 1, 1, 2, 2, 2, 2, 3]] * 2])


def test_compose_with_the_old_plugins_variants_and_weighting(old_plugin, tmp_path):
    from compose_helpers import load_safetensors, reference_average

    from resegzoo.compose import read_metadata
    from resegzoo.testing import make_tiny_clip

    result, warned = cli("compose", "--model", "oldstyle-tiny-a", "--model", "oldstyle-tiny-b", "--weighting",
                         "oldstyle-fixed", "--classes", "tree; water", "--out", tmp_path / "soup")
    assert result.exit_code == 0, result.output
    assert any(m.startswith("resegzoo.interfaces.WeightingSpec is deprecated") for m in warned), warned
    meta = read_metadata(tmp_path / "soup")
    assert meta["weights"] == [0.25, 0.75]  # the plugin's strategy chose them
    merged = load_safetensors(tmp_path / "soup" / "open_clip_model.safetensors")
    expected = reference_average([make_tiny_clip(seed=0).state_dict(), make_tiny_clip(seed=1).state_dict()],
                                 [0.25, 0.75])
    assert merged.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_allclose(merged[key].float().numpy(), value.float().numpy(), rtol=1e-6, atol=1e-7,
                                   err_msg=key)


def test_plugins_in_a_fresh_process_lists_it_with_the_old_paths_it_imports(plugin_paths, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*plugin_paths, os.environ.get("PYTHONPATH", "")]),
               RESEGZOO_CACHE=str(tmp_path))
    code = "from resegzoo.cli import main; main()"
    run = subprocess.run([sys.executable, "-c", code, "plugins"], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    (row,) = [r for r in json.loads(run.stdout)["plugins"] if r["name"] == "oldstyle"]
    assert not row["broken"] and (row["distribution"], row["version"]) == ("resegzoo-oldstyle", "1.0")
    assert set(row["hooks"]) == {"resegzoo_register_variants", "resegzoo_register_mask_generators",
                                 "resegzoo_register_weightings"}
    joined = "\n".join(row["deprecated"])
    assert "resegzoo.plugins.hookspecs.resegzoo_register_variants is deprecated" in joined
    for old, name in [("hookspecs", "hookimpl"), ("zoo", "ClipVariant"), ("interfaces", "MaskGeneratorSpec"),
                      ("interfaces", "WeightingSpec")]:
        assert f"resegzoo.{old}.{name} is deprecated" in joined and f"import {name} from resegzoo.plugin" in joined
