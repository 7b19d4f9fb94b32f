"""--engine ray against --engine local: identical tables and label maps, a worker that dies mid-item,
an interrupted driver that resumes. One embedded Ray (2 CPUs) for the whole module: starting Ray
and its actors is slow, so each test runs as few Ray jobs as it can."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from resegzoo.cli import build_cli
from resegzoo.engines import EngineOptions
from resegzoo.engines.ray_runtime import FAULT_ENV
from resegzoo.eval.datasets.generic import load_classes_file
from resegzoo.eval.synthetic import write_dataset
from resegzoo_oracle import color_of

pytest.importorskip("ray", reason="the Ray engine tests need the ray extra (pip install -e '.[ray]')")


@pytest.fixture(scope="module")
def ray_here():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tiny_clip):
    """The tiny random CLIP as an open_clip folder: context-sensitive, so any difference in what a
    block or image sees would change labels (the oracle would not notice)."""
    from safetensors.torch import save_file

    from resegzoo.testing import TINY_MODEL_CONFIG

    folder = tmp_path_factory.mktemp("tiny-clip")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_MODEL_CONFIG, "preprocess_cfg": {}}))
    save_file({k: v.contiguous() for k, v in tiny_clip.state_dict().items()}, folder / "open_clip_model.safetensors")
    return folder


def cli(*args: str):
    return CliRunner().invoke(build_cli(), list(args), catch_exceptions=False)


# -- options, without Ray ------------------------------------------------------------------------
@pytest.mark.parametrize("args,message", [
    (["--address", "auto"], "go with --engine ray"),
    (["--actors", "2"], "go with --engine ray"),
    (["--engine", "ray", "--actors", "0"], "--actors 0: give at least 1"),
    (["--engine", "ray", "--cpus-per-actor", "0"], "--cpus-per-actor > 0"),
])
def test_engine_options_are_checked(tmp_path, args, message):
    result = cli("eval", "--dataset", "generic", "--root", str(tmp_path), *args)
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output


def test_engine_ray_without_ray_says_how_to_install(tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    (root / "classes.yaml").write_text("classes: [red, green, blue]\n")
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, color_of, images=1, height=32, width=32)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as when it is not installed
    result = cli("eval", "--dataset", "generic", "--root", str(root), "--model", "oracle", "--quiet",
                 "--out", str(tmp_path / "out"), "--engine", "ray")
    assert result.exit_code == 1
    assert result.output.strip().endswith('--engine ray needs Ray with Ray Data: pip install "resegzoo[ray]"')


def test_options_dataclass_defaults_are_the_local_engine():
    assert EngineOptions().check().is_local


# -- eval ------------------------------------------------------------------------------------------
def test_eval_on_ray_with_a_dying_worker_matches_local_and_resumes(ray_here, tiny_model_dir, tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    (root / "classes.yaml").write_text("classes:\n  - [building, house]\n  - road\n  - tree\n")
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, color_of, images=5, height=40, width=56)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("inference: {window: 32, stride: 16}\nmasks: {generator: slic}\n")
    args = ["eval", "--dataset", "generic", "--root", str(root), "--recipe", str(recipe), "--quiet",
            "--model", f"local-dir:{tiny_model_dir}", "--overlays", "1"]

    local = cli(*args, "--out", str(tmp_path / "local"))
    assert local.exit_code == 0, local.output
    # resumable like the local runner: two images done locally, the Ray run does the other three
    partial = cli(*args, "--out", str(tmp_path / "ray"), "--limit", "2")
    assert partial.exit_code == 0, partial.output
    marker = tmp_path / "killed"
    monkeypatch.setenv(FAULT_ENV, f"2:{marker}")  # the first actor to reach its 2nd image dies mid-image
    on_ray = cli(*args, "--out", str(tmp_path / "ray"), "--engine", "ray", "--actors", "2")
    assert on_ray.exit_code == 0, on_ray.output
    assert marker.exists()  # a worker really died
    assert "3 image(s) in" in on_ray.output  # only the three missing images went to Ray
    for name in ("results.md", "per_class.csv"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    runs = [json.loads((tmp_path / where / "results.json").read_text())["runs"][0] for where in ("local", "ray")]
    assert runs[0]["confusion"] == runs[1]["confusion"] and runs[0]["key"] == runs[1]["key"]
    assert 0 < runs[0]["miou"] < 100  # a random tiny model: a table that could differ
    assert len(list((tmp_path / "ray").glob("runs/*/overlays/*.png"))) == 1


def test_a_model_actors_cannot_load_is_a_one_line_error(ray_here, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "classes.yaml").write_text("classes: [red, green, blue]\n")
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, color_of, images=2, height=32, width=32)
    result = cli("eval", "--dataset", "generic", "--root", str(root), "--model", "no-such-model", "--quiet",
                 "--out", str(tmp_path / "out"), "--engine", "ray", "--actors", "1")
    assert result.exit_code == 1
    assert "on Ray worker" in result.output and "unknown CLIP variant 'no-such-model'" in result.output
    assert "Traceback" not in result.output
