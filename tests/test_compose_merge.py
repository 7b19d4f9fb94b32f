"""Averaging: exactness, linearity, the streaming format, the open_clip output folder, metadata."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from compose_helpers import (
    load_safetensors,
    reference_average,
    related_models,
    save_folders,
)
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from resegzoo.compose import compose, load_recipe, read_metadata, recipe_from_mapping
from resegzoo.compose.merge import weighted_average
from resegzoo.weights.st_io import SafetensorsFile, StreamingWriter
from resegzoo.testing import make_tiny_clip, tiny_model_config


def _recipe(models, strategy="uniform", **params):
    return recipe_from_mapping({"inputs": list(models), "weighting": {"strategy": strategy, "params": params}})


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Three related tiny models saved as open_clip folders, and their state dicts."""
    root = tmp_path_factory.mktemp("inputs")
    models = related_models(3)
    return save_folders(models, root), [m.state_dict() for m in models]


def test_streaming_writer_is_read_by_the_safetensors_library(tmp_path):
    tensors = {
        "a.f32": torch.randn(3, 5), "b.f16": torch.randn(7).half(), "c.bf16": torch.randn(2, 2).bfloat16(),
        "d.i64": torch.arange(6).reshape(2, 3), "e.bool": torch.tensor([True, False]), "f.scalar": torch.tensor(2.5),
        "g.empty": torch.zeros(0, 4),
    }
    path = tmp_path / "x.safetensors"
    with path.open("wb") as fh:
        writer = StreamingWriter(fh, [(k, v.dtype, tuple(v.shape)) for k, v in tensors.items()], {"note": "hi"})
        for k, v in tensors.items():
            writer.write(k, v)
        writer.close()
    loaded = load_file(str(path))
    assert set(loaded) == set(tensors)
    for k, v in tensors.items():
        assert loaded[k].dtype == v.dtype and torch.equal(loaded[k], v), k
    with safe_open(str(path), framework="pt") as fh:
        assert fh.metadata() == {"note": "hi"}
    # and resegzoo's reader reads what the library writes
    save_file(tensors, str(tmp_path / "lib.safetensors"), metadata={"k": "v"})
    with SafetensorsFile(tmp_path / "lib.safetensors") as fh:
        assert fh.metadata == {"k": "v"}
        for k, v in tensors.items():
            assert torch.equal(fh.read(k), v), k


def test_writer_refuses_tensors_out_of_order():
    writer = StreamingWriter(io.BytesIO(), [("a", torch.float32, (2,)), ("b", torch.float32, (2,))], {})
    with pytest.raises(ValueError, match="does not match"):
        writer.write("b", torch.zeros(2))
    with pytest.raises(ValueError, match="only 0 of 2"):
        writer.close()


def test_weighted_average_is_linear_and_matches_the_formula():
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(64, 33, generator=gen) for _ in range(3)]
    ys = [torch.randn(64, 33, generator=gen) for _ in range(3)]
    w = [0.2, 0.5, 0.3]
    avg = lambda ts: weighted_average(ts, w, torch.float64)
    expected = sum(wi * x.double() for wi, x in zip(w, xs))
    torch.testing.assert_close(avg(xs), expected, rtol=0, atol=1e-12)
    # linear in the inputs: f(x + 2y) = f(x) + 2 f(y)
    lhs = avg([x.double() + 2 * y.double() for x, y in zip(xs, ys)])
    torch.testing.assert_close(lhs, avg(xs) + 2 * avg(ys), rtol=0, atol=1e-12)
    # float32 arithmetic (the default for float32 models) stays within float32 rounding
    torch.testing.assert_close(weighted_average(xs, w, torch.float32), expected.float(), rtol=1e-6, atol=1e-6)
    # chunking does not change the result
    from resegzoo.compose import merge

    old, merge.CHUNK = merge.CHUNK, 100
    try:
        torch.testing.assert_close(avg(xs), expected, rtol=0, atol=1e-12)
    finally:
        merge.CHUNK = old


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_one_hot_weights_are_exact_for_every_dtype(dtype):
    ts = [torch.randn(1000).to(dtype) for _ in range(3)]
    assert torch.equal(weighted_average(ts, [0.0, 1.0, 0.0], dtype), ts[1])


def test_weights_1_0_0_give_model_1_bit_for_bit(three, tmp_path):
    folders, sds = three
    compose(_recipe(folders, "manual", weights=[1, 0, 0]), tmp_path / "out", progress=False)
    out = load_safetensors(tmp_path / "out" / "open_clip_model.safetensors")
    assert set(out) == set(sds[0])
    for key, value in sds[0].items():
        assert out[key].dtype == value.dtype and torch.equal(out[key], value), key


def test_averaging_a_model_with_itself_gives_it_back(three, tmp_path):
    folders, sds = three
    # the same model three times, under distinct labels, uniform weights 1/3
    recipe = recipe_from_mapping({"inputs": [{"model": folders[1], "label": f"copy{i}"} for i in range(3)]})
    compose(recipe, tmp_path / "out", progress=False)
    out = load_safetensors(tmp_path / "out" / "open_clip_model.safetensors")
    for key, value in sds[1].items():
        assert torch.equal(out[key], value), key


def test_output_loads_in_open_clip_and_equals_the_direct_average(three, tmp_path):
    import open_clip

    folders, sds = three
    weights = [0.5, 0.3, 0.2]
    compose(_recipe(folders, "manual", weights=weights), tmp_path / "out", progress=False)
    model, _, _preprocess = open_clip.create_model_and_transforms(f"local-dir:{tmp_path / 'out'}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{tmp_path / 'out'}")
    model.eval()

    direct = make_tiny_clip(0)
    direct.load_state_dict(reference_average(sds, weights))
    for key, value in direct.state_dict().items():  # float32 arithmetic vs a float64 reference
        torch.testing.assert_close(model.state_dict()[key], value, rtol=1e-6, atol=1e-8, msg=key)
    image = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    text = tokenizer(["a satellite image of a road.", "an aerial image of water."])
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(image), direct.encode_image(image), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(model.encode_text(text), direct.encode_text(text), rtol=1e-5, atol=1e-6)
    # the zoo's loader (what `resegzoo segment --model OUT` uses) loads it too
    from resegzoo.weights.loading import load_clip

    loaded = load_clip(str(tmp_path / "out"))
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.encode_image(image), model.encode_image(image), rtol=0, atol=0)


def test_output_dtype_is_applied_to_floating_tensors_only(three, tmp_path):
    folders, sds = three
    recipe = _recipe(folders, "manual", weights=[1, 1, 2])
    recipe.dtype = "bf16"
    compose(recipe, tmp_path / "out", progress=False)
    out = load_safetensors(tmp_path / "out" / "open_clip_model.safetensors")
    ref = reference_average(sds, [0.25, 0.25, 0.5])
    for key, value in ref.items():
        assert out[key].dtype == (torch.bfloat16 if value.is_floating_point() else value.dtype), key
        torch.testing.assert_close(out[key], value.to(out[key].dtype), msg=key)  # bf16 tolerance


def test_metadata_and_recipe_round_trip(three, tmp_path):
    folders, _ = three
    recipe = _recipe(folders, "manual", weights=[2, 1, 1])
    result = compose(recipe, tmp_path / "out", progress=False)
    meta = read_metadata(tmp_path / "out")
    # published: the inputs by name (never a local path), the output folder left out
    assert meta["recipe"] == recipe.published_dict([Path(f).name for f in folders])
    assert [i["model"] for i in meta["recipe"]["inputs"]] == [Path(f).name for f in folders]
    assert meta["weights"] == [0.5, 0.25, 0.25] == result.weighting.weights
    assert meta["scores"] == {"given": [2.0, 1.0, 1.0]}
    assert meta["weighting"] == {"strategy": "manual", "params": {"weights": [2.0, 1.0, 1.0]}}
    from resegzoo import __version__

    assert meta["resegzoo_version"] == __version__
    for item, folder in zip(meta["inputs"], folders):
        data = (Path(folder) / "open_clip_model.safetensors").read_bytes()
        assert item["sha256"] == hashlib.sha256(data).hexdigest()
    # the library sees the same str -> str metadata (JSON strings)
    with safe_open(str(tmp_path / "out" / "open_clip_model.safetensors"), framework="pt") as fh:
        assert json.loads(fh.metadata()["weights"]) == meta["weights"]
    # recipe.yaml composes the same model again where its inputs lie beside it (names resolve
    # relative to the recipe file)
    beside_inputs = Path(folders[0]).parent / "recipe.yaml"
    shutil.copy(tmp_path / "out" / "recipe.yaml", beside_inputs)
    again = load_recipe(beside_inputs)
    assert again.to_dict() == {**recipe.to_dict(), "inputs": [{"model": f, "label": Path(f).name} for f in folders]}
    beside_inputs.unlink()
    config = json.loads((tmp_path / "out" / "open_clip_config.json").read_text())
    assert config["model_cfg"] == tiny_model_config()


def test_pickled_inputs_are_converted_once_into_the_cache(tmp_path, resegzoo_cache):
    models = related_models(2, seed=1)
    paths = []
    for i, m in enumerate(models):  # SkyCLIP-style pickles: {"state_dict": ...} with module. prefixes
        paths.append(tmp_path / f"m{i}.pt")
        torch.save({"epoch": 20, "state_dict": {f"module.{k}": v for k, v in m.state_dict().items()}}, paths[-1])
    data = {"inputs": [str(p) for p in paths], "model_config": tiny_model_config()}
    compose(recipe_from_mapping(data), tmp_path / "out", progress=False)
    converted = sorted((resegzoo_cache / "compose" / "safetensors").glob("*.safetensors"))
    assert [c.stem for c in converted] == sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in paths)
    stamps = [c.stat().st_mtime_ns for c in converted]
    compose(recipe_from_mapping(data), tmp_path / "out2", progress=False)
    assert [c.stat().st_mtime_ns for c in converted] == stamps  # reused, not rewritten
    out = load_safetensors(tmp_path / "out2" / "open_clip_model.safetensors")
    ref = reference_average([m.state_dict() for m in models], [0.5, 0.5])
    for key, value in ref.items():
        torch.testing.assert_close(out[key], value, rtol=1e-6, atol=1e-8, msg=key)


def test_distances_per_pair_and_block(three, tmp_path):
    folders, sds = three
    result = compose(_recipe(folders), dry_run=True, progress=False)
    assert result.output is None
    pair = result.distances.pairs[(Path(folders[0]).name, Path(folders[1]).name)]  # default labels: folder names
    a = torch.cat([v.reshape(-1) for v in sds[0].values() if v.is_floating_point()]).double()
    b = torch.cat([sds[1][k].reshape(-1) for k, v in sds[0].items() if v.is_floating_point()]).double()
    expected = float((a - b).norm() / ((a.norm() ** 2 + b.norm() ** 2) / 2).sqrt())
    assert pair == pytest.approx(expected, rel=1e-4)
    assert pair < 0.5 and result.distances.warnings() == []
    assert "visual.transformer.resblocks.7" in result.distances.blocks
    assert "transformer.resblocks.1" in result.distances.blocks


def test_different_initialisations_are_warned_about(tmp_path):
    from resegzoo.compose import DistanceWarning

    folders = save_folders([make_tiny_clip(0), make_tiny_clip(1)], tmp_path)
    with pytest.warns(DistanceWarning, match="do not share an initialisation"):
        result = compose(_recipe(folders), dry_run=True, progress=False)
    assert next(iter(result.distances.pairs.values())) > 1.0
