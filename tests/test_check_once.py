"""Issue 22 section 5: checks run once, at the API boundary, before any model loads; one options
object goes from the CLI through the API to the engines; segment and eval share one engine
interface and one local loop; shipped recipes are found in one place."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from click.testing import CliRunner

import resegzoo
from resegzoo.cli import build_cli

CLASSES = "red; blue"


@pytest.fixture
def scene(red_blue_geotiff) -> Path:
    return red_blue_geotiff


@pytest.fixture
def counted(monkeypatch):
    """How often check_method and check_device run."""
    import resegzoo.methods.base as base
    import resegzoo.runtime.preflight as preflight

    calls = {"check_method": 0, "check_device": 0}
    for module, name in ((base, "check_method"), (preflight, "check_device")):
        original = getattr(module, name)

        def counting(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counting)
    return calls


def test_segment_files_checks_the_method_and_the_device_once(scene, tmp_path, counted):
    from resegzoo.api import BatchProgress, load_recipe, segment_files

    result = segment_files([scene], CLASSES, tmp_path / "out", recipe=load_recipe(None, window=16, stride=8),
                           model="oracle", masks="slic", progress=BatchProgress(quiet=True))
    assert len(result.records) == 1
    assert counted == {"check_method": 1, "check_device": 1}


def test_the_cli_checks_the_method_and_the_device_once(scene, tmp_path, counted):
    result = CliRunner().invoke(build_cli(), ["segment", str(scene), "--classes", CLASSES, "--model", "oracle",
                                              "--masks", "none", "--window", "16", "--out", str(tmp_path / "out"),
                                              "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert counted == {"check_method": 1, "check_device": 1}


def test_eval_checks_each_run_once_and_the_device_once(tmp_path, counted):
    from resegzoo.eval.datasets.generic import load_classes_file
    from resegzoo.eval.synthetic import write_dataset
    from resegzoo_oracle import color_of

    root = tmp_path / "data"
    root.mkdir()
    (root / "classes.yaml").write_text("classes: [red, blue]\n")
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, color_of, images=2)
    result = CliRunner().invoke(build_cli(), ["eval", "--dataset", "generic", "--root", str(root), "--model", "oracle",
                                              "--masks", "none", "--masks", "slic", "--out", str(tmp_path / "ev"),
                                              "--quiet"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert counted == {"check_method": 2, "check_device": 1}  # two runs (masks none, slic), one device


def test_the_options_object_goes_from_the_cli_to_the_api_and_the_engine(scene, tmp_path, monkeypatch):
    """The CLI builds the same SegmentOptions segment_files builds, and the batch hands the engine
    the options' checked segmenter spec (its model resolved)."""
    import resegzoo.api as api
    from resegzoo.engines.local import LocalEngine

    seen = {}
    original_run, original_engine_run = api.run_segment, LocalEngine.run

    def spy(options, progress=None):
        seen.setdefault("options", []).append(options)
        return original_run(options, progress)

    def engine_spy(self, task, items, segmenter=None, skip=None):
        seen.setdefault("tasks", []).append(task)
        return original_engine_run(self, task, items, segmenter, skip)

    monkeypatch.setattr(api, "run_segment", spy)
    monkeypatch.setattr(LocalEngine, "run", engine_spy)
    CliRunner().invoke(build_cli(), ["segment", str(scene), "--classes", CLASSES, "--model", "oracle", "--masks",
                                     "none", "--window", "16", "--out", str(tmp_path / "cli"), "-q"],
                       catch_exceptions=False)
    api.segment_files([scene], CLASSES, tmp_path / "api", recipe=api.load_recipe(None, window=16), model="oracle",
                      masks="none", progress=api.BatchProgress(quiet=True))
    by_cli, by_api = seen["options"]
    assert isinstance(by_cli, api.SegmentOptions) and isinstance(by_api, api.SegmentOptions)
    assert by_cli.segmenter == by_api.segmenter and by_cli.classes == by_api.classes
    # the engines get that spec with its model resolved once (what Ray actors build from)
    import dataclasses

    assert all(t.segmenter.resolved is not None for t in seen["tasks"])
    assert [dataclasses.replace(t.segmenter, resolved=None) for t in seen["tasks"]] == [by_cli.segmenter,
                                                                                       by_api.segmenter]


def _loops(path: Path) -> list[str]:
    """Functions of ``path`` that call prefetched(): a local loop of their own."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            calls = [n for n in ast.walk(node) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "prefetched"]
            if calls:
                found.append(f"{path.name}:{node.name}")
    return found


def test_one_local_loop_serves_segment_and_eval():
    root = Path(resegzoo.__file__).parent
    loops = [loop for path in sorted(root.rglob("*.py")) for loop in _loops(path)]
    # the engine's loop; the segmenter's own bands-of-windows prefetch is inside one image, not a loop over work
    assert [loop for loop in loops if not loop.startswith("core.py:")] == ["local.py:run"], loops


def test_one_lookup_finds_the_shipped_recipes():
    """Only segmenter/recipe.py names the registry's recipes folder."""
    root = Path(resegzoo.__file__).parent
    places = [str(path.relative_to(root)) for path in sorted(root.rglob("*.py"))
              if '"recipes"' in path.read_text(encoding="utf-8")
              and "registry_dir" in path.read_text(encoding="utf-8")]
    assert places == ["segmenter/recipe.py"], places
    from resegzoo.segmenter.recipe import resolve_recipe, shipped_recipes

    assert "eval-default" in shipped_recipes() and resolve_recipe("eval-default") == shipped_recipes()["eval-default"]
    result = CliRunner().invoke(build_cli(), ["list", "recipes"], catch_exceptions=False)
    assert all(name in result.output for name in shipped_recipes())


def test_one_rule_says_how_many_classes_fit_a_label_map(scene, tmp_path):
    """255 labels (0..254) fit beside nodata 255: 255 classes, or 254 and background; the CLI, the
    API and plan_raster apply the same rule (batch.job.check_label_count) with the same message."""
    from resegzoo.api import OptionValueError, SegmentOptions, load_recipe
    from resegzoo.batch.job import check_label_count
    from resegzoo.raster.errors import ImageError

    names = [f"class{i}" for i in range(256)]
    background = load_recipe(None, background_threshold=0.5)
    assert SegmentOptions.check([scene], "; ".join(names[:255]), tmp_path / "a", model="oracle", masks="none")
    assert SegmentOptions.check([scene], "; ".join(names[:254]), tmp_path / "a", recipe=background, model="oracle",
                                masks="none")
    with pytest.raises(OptionValueError, match="255 classes and background: at most 255 labels"):
        SegmentOptions.check([scene], "; ".join(names[:255]), tmp_path / "a", recipe=background, model="oracle",
                             masks="none")
    with pytest.raises(OptionValueError, match="256 classes: at most 255 labels"):
        SegmentOptions.check([scene], "; ".join(names), tmp_path / "a", model="oracle", masks="none")
    with pytest.raises(ImageError, match="256 classes: at most 255 labels"):
        check_label_count(256, False)
    result = CliRunner().invoke(build_cli(), ["segment", str(scene), "--classes", "; ".join(names), "--model", "oracle",
                                              "--masks", "none", "--out", str(tmp_path / "cli")])
    assert result.exit_code == 2 and "256 classes: at most 255 labels" in result.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "cli").exists()
