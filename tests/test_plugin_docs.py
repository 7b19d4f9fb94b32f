"""Issue 22 item 1: docs/plugins.md runs as written. Its ``# file: NAME.py`` blocks are installed as one
distribution with an entry point per module; per section, its ``# run`` blocks and its ``resegzoo ...``
commands run in a fresh folder holding tests/data/demo_tile.png, and what they made is checked."""
from __future__ import annotations

import importlib
import json
import math
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from resegzoo.cli import build_cli

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "plugins.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)


def sections() -> dict[str, str]:
    parts = re.split(r"^## ", DOC.read_text(encoding="utf-8"), flags=re.M)
    return {part.split("\n", 1)[0].strip(): part for part in parts[1:]}


def blocks(text: str) -> list[tuple[str, str]]:
    return [(lang, body) for lang, body in FENCE.findall(text)]


def modules() -> dict[str, str]:
    out = {}
    for lang, body in blocks(DOC.read_text(encoding="utf-8")):
        first = body.split("\n", 1)[0]
        if lang == "python" and first.startswith("# file: "):
            out[first.removeprefix("# file: ").removesuffix(".py")] = body
    return out


EXAMPLES = ["A CLIP variant", "A mask generator", "A weighting", "A dataset", "A method", "A model kind", "A command"]


@pytest.fixture(scope="session")
def docs_site(tmp_path_factory) -> Path:
    """The page's modules as pip leaves a distribution: the modules and a .dist-info naming each."""
    site = tmp_path_factory.mktemp("docs-plugins-site")
    found = modules()
    for name, source in found.items():
        (site / f"{name}.py").write_text(source, encoding="utf-8")
    info = site / "acme_resegzoo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-resegzoo\nVersion: 1.0\n")
    points = "".join(f"{name.replace('_', '-')} = {name}\n" for name in found)
    (info / "entry_points.txt").write_text(f"[resegzoo]\n{points}")
    return site


@pytest.fixture
def in_docs_folder(docs_site, tmp_path, monkeypatch):
    """A fresh working folder with the demo tile where the page says, the page's plugin installed."""
    from resegzoo.plugins import registry as registry_module

    (tmp_path / "tests" / "data").mkdir(parents=True)
    shutil.copy(REPO / "tests" / "data" / "demo_tile.png", tmp_path / "tests" / "data" / "demo_tile.png")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(docs_site))
    importlib.invalidate_caches()
    monkeypatch.setattr(registry_module, "_default", None)  # the commands build it, with the plugin
    yield tmp_path
    registry_module.get_registry(refresh=True)


def run_section(title: str) -> dict[str, str]:
    """Run a section's ``# run`` blocks and its commands in order; each command's output by its line."""
    outputs = {}
    for lang, body in blocks(sections()[title]):
        if lang == "python" and body.startswith("# run"):
            exec(compile(body, f"{DOC}:{title}", "exec"), {"__name__": "__docs__"})
        elif lang == "bash":
            for line in body.strip().splitlines():
                args = shlex.split(line)
                assert args[0] == "resegzoo", line
                result = CliRunner().invoke(build_cli(), args[1:], catch_exceptions=False)
                assert result.exit_code == 0, f"{line}\n{result.output}"
                outputs[line] = result.output
    assert outputs, f"section {title!r} runs no command"
    return outputs


def test_the_page_has_each_kind_with_a_module_and_a_command():
    found = sections()
    for title in EXAMPLES:
        kinds = [(lang, body.split("\n", 1)[0]) for lang, body in blocks(found[title])]
        assert any(lang == "python" and first.startswith("# file: ") for lang, first in kinds), title
        assert any(lang == "bash" for lang, _ in kinds), title
    for body in modules().values():  # what the page tells plugin authors to import from
        imported = set(re.findall(r"^\s*from (resegzoo[\w.]*) import", body, re.M))
        assert imported <= {"resegzoo.plugin", "resegzoo.testing"}, imported


def test_every_module_of_the_page_loads_as_a_plugin(in_docs_folder):
    result = CliRunner().invoke(build_cli(), ["plugins"])
    rows = {row["name"]: row for row in json.loads(result.output)["plugins"]}
    for name in modules():
        row = rows[name.replace("_", "-")]
        assert not row["broken"] and row["distribution"] == "acme-resegzoo" and "deprecated" not in row, row


def _sidecar(folder: str) -> dict:
    return json.loads((Path(folder) / "demo_tile.json").read_text())


def _tile() -> np.ndarray:
    return np.asarray(Image.open("tests/data/demo_tile.png").convert("RGB"))


def test_a_clip_variant(in_docs_folder):
    outputs = run_section("A CLIP variant")
    listing = next(out for line, out in outputs.items() if "list models" in line)
    assert "acme-tiny" in listing and "acme-vit-b-32" in listing
    sidecar = _sidecar("variant-out")
    assert sidecar["model"] == "acme-tiny" and sidecar["random_weights"] is True
    labels = np.asarray(Image.open("variant-out/demo_tile.labels.png"))
    assert labels.shape == _tile().shape[:2] and labels.max() < 3


def test_a_mask_generator(in_docs_folder):
    from resegzoo.plugin import get_registry

    run_section("A mask generator")
    assert _sidecar("masks-out")["masks"] == "acme-stripes"
    maps = get_registry().mask_generators.get("acme-stripes").factory()(np.zeros((3, 70, 3), np.uint8))
    assert maps.dtype == np.int32 and maps.shape == (4, 3, 70)
    np.testing.assert_array_equal(maps[:, 0, 69], [69 // 8 + 1, 69 // 16 + 1, 69 // 32 + 1, 69 // 64 + 1])


def test_a_weighting(in_docs_folder):
    from resegzoo.compose import read_metadata

    run_section("A weighting")
    meta = read_metadata("soup")
    separation = meta["scores"]["separation"]
    assert len(separation) == 2 and all(0 < s <= 2 for s in separation)
    raw = [math.exp((s - max(separation)) / 0.05) for s in separation]  # the page's formula, tau's default
    assert meta["weights"] == pytest.approx([r / sum(raw) for r in raw])


def test_a_dataset(in_docs_folder):
    run_section("A dataset")
    reports = list(Path("fields-eval").rglob("*.json"))
    assert reports, list(Path("fields-eval").rglob("*"))
    text = "\n".join(p.read_text() for p in reports)
    assert "acme-fields" in text and "cropland" in text


def test_a_method(in_docs_folder):
    from resegzoo.plugin import MethodContext, get_registry
    from resegzoo.api import Vocabulary

    run_section("A method")
    sidecar = _sidecar("method-out")
    assert sidecar["method"] == "acme-colour" and sidecar["colour_width"] == 0.2
    assert sidecar["class_names"] == ["green", "grey", "blue"]
    # its scores, against the formula computed here with numpy
    spec = get_registry().methods.get("acme-colour")
    method = spec.factory(MethodContext(recipe=None, model=None, settings=spec.settings()))
    window = np.array([[[[40, 160, 60], [128, 128, 128]], [[200, 50, 50], [0, 0, 0]]]], np.uint8)
    vocab = Vocabulary.parse("green; grey, red; blue")
    colours = np.array([(40, 160, 60), (128, 128, 128), (220, 40, 40), (40, 60, 200)], float)
    distance = np.linalg.norm(window[0][None].astype(float) - colours[:, None, None], axis=-1) / (255 * 3 ** 0.5)
    by_name = np.exp(-(distance / 0.2) ** 2)
    np.testing.assert_allclose(method.window_scores(window, vocab, per_name=True)[0].numpy(), by_name, rtol=1e-5)
    by_class = np.stack([by_name[0], by_name[1:3].max(0), by_name[3]])
    np.testing.assert_allclose(method.window_scores(window, vocab, per_name=False)[0].numpy(), by_class, rtol=1e-5)


def test_a_model_kind(in_docs_folder):
    outputs = run_section("A model kind")
    listing = next(out for line, out in outputs.items() if "list models" in line)
    assert "acme-roofs" in listing and "palette" in listing
    sidecar = _sidecar("palette-out")
    assert sidecar["method"] == "acme-palette" and sidecar["model"] == "palette:roofs.yaml"
    # a model that is no palette: one line before anything loads
    result = CliRunner().invoke(build_cli(), ["segment", "tests/data/demo_tile.png", "--method", "acme-palette",
                                              "--model", "palette:missing.yaml", "--classes", "roof", "--out", "x"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "needs a palette model: palette file missing.yaml does not exist" in result.output
    assert not Path("x").exists()


def test_a_command(in_docs_folder):
    outputs = run_section("A command")
    assert list(outputs.values()) == ["example-tiny: clip, Apache-2.0, plugin example\n"]
    result = CliRunner().invoke(build_cli(), ["acme-info", "nope"])
    assert result.exit_code == 1 and result.output.strip().endswith("no model 'nope'; see `resegzoo list models`")


def test_the_readme_and_the_example_plugin_point_at_the_plugin_api():
    readme = (REPO / "README.md").read_text(encoding="utf-8").split("## Writing a plugin", 1)[1].split("\n## ", 1)[0]
    assert "resegzoo.plugin" in readme and "docs/plugins.md" in readme
    example = REPO / "plugins" / "resegzoo-example"
    sources = [p for p in example.rglob("*.py")] + [example / "README.md"]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        used = set(re.findall(r"\bresegzoo\.[a-z_.]+[a-z_]", text)) - {"resegzoo.plugin", "resegzoo.testing"}
        assert not used, f"{path.relative_to(REPO)} names {sorted(used)}; plugins import from resegzoo.plugin"
