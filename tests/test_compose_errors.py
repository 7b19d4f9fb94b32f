"""Bad inputs to `resegzoo compose`: each a clear error, and nothing written or overwritten."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from compose_helpers import related_models, save_folder, save_folders

from resegzoo.outputs.atomic import temporaries
from resegzoo.cli import build_cli
from resegzoo.testing import make_tiny_clip, tiny_model_config


def run(*args: str):
    return CliRunner().invoke(build_cli(), ["compose", *args])


def assert_clean_error(result, *fragments: str, exit_code: int = 1) -> None:
    """A user error: its kind's exit status (1: the work failed, 2: what was asked for cannot be
    done), a message, no traceback."""
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    return save_folders(related_models(2, seed=2), root)


@pytest.fixture
def existing_out(tmp_path):
    """An output folder that already holds a model; errors must leave it exactly as it is."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    return out


def assert_untouched(out: Path) -> None:
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "precious"
    assert not temporaries(out.parent)


def test_mismatched_architectures_are_listed(pair, tmp_path, existing_out):
    other = save_folder(make_tiny_clip(0, tiny_model_config(width=32, head_width=16)), tmp_path / "narrow",
                        tiny_model_config(width=32, head_width=16))
    result = run("--model", pair[0], "--model", str(other), "--out", str(existing_out), "--force")
    assert_clean_error(result, "cannot be averaged", "different architectures", "vision_cfg.width: 64 vs 32",
                       "shape mismatch", "visual.conv1.weight")
    assert_untouched(existing_out)


def test_a_missing_key_is_named(pair, tmp_path, existing_out):
    sd = related_models(1, seed=2)[0].state_dict()
    del sd["logit_scale"]
    lacking = save_folder(sd, tmp_path / "lacking")
    result = run("--model", pair[0], "--model", str(lacking), "--out", str(existing_out), "--force")
    assert_clean_error(result, "lacks 1 key(s)", "logit_scale")
    assert_untouched(existing_out)


def test_nan_in_an_input_is_refused(pair, tmp_path, existing_out):
    sd = related_models(1, seed=2)[0].state_dict()
    sd["visual.transformer.resblocks.5.mlp.c_fc.weight"][3, 4] = float("nan")
    broken = save_folder(sd, tmp_path / "broken")
    result = run("--model", pair[0], "--model", str(broken), "--out", str(existing_out), "--force")
    assert_clean_error(result, "visual.transformer.resblocks.5.mlp.c_fc.weight", "NaN/Inf")
    assert_untouched(existing_out)


@pytest.mark.parametrize("weights, message", [
    ("0.5,-0.5", "must be >= 0"),
    ("0,0", "must not all be zero"),
    ("nan,1", "finite"),
    ("1,2,3", "3 manual weight(s) given for 2 input model(s)"),
    ("a,b", "give numbers separated by commas"),
])
def test_bad_manual_weights(pair, existing_out, weights, message):
    result = run("--model", pair[0], "--model", pair[1], "--weighting", "manual", "--weights", weights,
                 "--out", str(existing_out), "--force")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert message in result.output, result.output
    assert_untouched(existing_out)


def test_existing_output_needs_force(pair, existing_out):
    result = run("--model", pair[0], "--model", pair[1], "--out", str(existing_out))
    assert_clean_error(result, "already exists", "--force")
    assert_untouched(existing_out)


def test_unwritable_output_location(pair, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run("--model", pair[0], "--model", pair[1], "--out", str(blocker / "out"))
    assert_clean_error(result, "a-file is a file, not a folder")  # checked by the CLI before any model loads
    assert blocker.read_text() == "not a folder"


def test_read_only_output_folder_is_refused(pair, tmp_path, monkeypatch):
    # Tests may run as root, where chmod cannot make a folder unwritable; stand in for the OS answer.
    from resegzoo.compose import output

    parent = tmp_path / "readonly"
    parent.mkdir()
    monkeypatch.setattr(output.os, "access", lambda path, mode: Path(path) != parent)
    result = run("--model", pair[0], "--model", pair[1], "--out", str(parent / "out"))
    assert_clean_error(result, "no write permission")
    assert list(parent.iterdir()) == []


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_crash_mid_write_leaves_nothing(pair, tmp_path, monkeypatch, exc):
    from resegzoo.compose import compose, recipe_from_mapping
    from resegzoo.weights.st_io import StreamingWriter

    real_write = StreamingWriter.write_part
    calls = []

    def failing_write(self, name, tensor):
        calls.append(name)
        if len(calls) > 3:
            raise exc
        real_write(self, name, tensor)

    monkeypatch.setattr(StreamingWriter, "write_part", failing_write)
    out = tmp_path / "out"
    with pytest.raises(type(exc)):
        compose(recipe_from_mapping({"inputs": pair}), out, progress=False)
    assert len(calls) == 4
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no partial folder left beside it either


def test_crash_with_force_keeps_the_previous_output(pair, existing_out, monkeypatch):
    from resegzoo.compose import compose, recipe_from_mapping

    def failing_card():
        raise RuntimeError("card writer crashed")

    monkeypatch.setattr("resegzoo.compose.card.build_card", lambda summary: failing_card())
    with pytest.raises(RuntimeError, match="card writer crashed"):
        compose(recipe_from_mapping({"inputs": pair}), existing_out, force=True, progress=False)
    assert_untouched(existing_out)


def test_unknown_recipe_key_is_named(tmp_path, pair):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"inputs: [{pair[0]}, {pair[1]}]\nweigting: {{strategy: uniform}}\n")
    result = run(str(recipe), "--out", str(tmp_path / "out"))
    assert_clean_error(result, "unknown key 'weigting'", "did you mean 'weighting'", exit_code=2)
    assert not (tmp_path / "out").exists()


def test_unknown_weighting_and_param(pair, tmp_path):
    result = run("--model", pair[0], "--weighting", "prompt-qualty", "--out", str(tmp_path / "o"))
    assert_clean_error(result, "unknown weighting strategy 'prompt-qualty'", "prompt-quality", exit_code=2)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"inputs: [{pair[0]}]\nweighting: {{strategy: prompt-quality, params: {{temperature: 1}}}}\n")
    assert_clean_error(run(str(recipe), "--out", str(tmp_path / "o")), "unknown key 'temperature'", exit_code=2)


def test_builtin_recipe_resolves_and_explains_missing_weights(tmp_path, monkeypatch):
    # Offline with an empty Hugging Face cache: the built-in recipe is found, and fetching its
    # first input fails with the zoo's explanation of what to download, not a traceback.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    result = run("reseg-clip-l14", "--dry-run")
    assert_clean_error(result, "remoteclip-vit-l-14", "resegzoo fetch")
    result = run("no-such-recipe", "--dry-run")
    assert result.exit_code == 2 and "reseg-clip-l14" in result.output


def test_no_inputs_and_no_output(tmp_path, pair):
    assert run().exit_code == 2
    assert_clean_error(run("--model", pair[0]), "no output folder")


def _raw_inputs(tmp_path, tensors_per_input):
    """Bare safetensors files (no open_clip model needed for uniform weighting)."""
    from safetensors.torch import save_file

    paths = []
    for i, tensors in enumerate(tensors_per_input):
        paths.append(tmp_path / f"raw{i}.safetensors")
        save_file(tensors, str(paths[-1]))
    return [str(p) for p in paths]


def test_non_floating_tensors_must_be_identical(tmp_path):
    from resegzoo.compose import compose, recipe_from_mapping

    w = torch.ones(4, 3)
    same = _raw_inputs(tmp_path, [{"w": w, "ids": torch.arange(5)}, {"w": 1.25 * w, "ids": torch.arange(5)}])
    data = {"inputs": same, "model_config": tiny_model_config()}
    compose(recipe_from_mapping(data), tmp_path / "ok", progress=False)
    from safetensors.torch import load_file

    out = load_file(str(tmp_path / "ok" / "open_clip_model.safetensors"))
    assert torch.equal(out["ids"], torch.arange(5)) and torch.equal(out["w"], 1.125 * w)

    (tmp_path / "d").mkdir()
    differ = _raw_inputs(tmp_path / "d", [{"w": w, "ids": torch.arange(5)}, {"w": w, "ids": torch.arange(5) + 1}])
    result = run("--model", differ[0], "--model", differ[1], "--architecture", "ViT-B-32", "--out", str(tmp_path / "o"))
    assert_clean_error(result, "non-floating tensor 'ids' differs")
    assert not (tmp_path / "o").exists()


def test_dtype_mismatch_is_listed(tmp_path):
    w = torch.ones(4, 3)
    paths = _raw_inputs(tmp_path, [{"w": w}, {"w": w.half()}])
    result = run("--model", paths[0], "--model", paths[1], "--architecture", "ViT-B-32", "--dry-run")
    assert_clean_error(result, "dtype mismatch", "w torch.float32 vs torch.float16")


def test_offline_every_missing_input_is_named_at_once(pair, tmp_path, existing_out, hf_offline, resegzoo_cache):
    """Offline, one run names every input that is missing (not the first only), with one fetch
    command for the zoo's names; a present input among them does not hide the others."""
    result = run("--model", "remoteclip-vit-l-14", "--model", pair[0], "--model", "georsclip-vit-l-14",
                 "--model", str(tmp_path / "nowhere.safetensors"), "--out", str(existing_out), "--force")
    assert_clean_error(result, "3 of 4 inputs cannot be used", "remoteclip-vit-l-14: ", "georsclip-vit-l-14: ",
                       "nowhere.safetensors", "`resegzoo fetch remoteclip-vit-l-14 georsclip-vit-l-14`")
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(error_lines) == 1 and "nowhere.safetensors" in error_lines[0], result.output  # one line, all named
    assert_untouched(existing_out)
