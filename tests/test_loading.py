"""The CLIP model route (resegzoo.weights.loading): every real checkpoint layout loads into a model equal to the saved one."""
from __future__ import annotations

import io
import json
import zipfile

import open_clip
import pytest
import torch
from safetensors.torch import save_file

from resegzoo.plugins import registry as registry_module
from resegzoo.plugins.hookspecs import hookimpl
from resegzoo.weights.loading import checkpoint_path, load_clip, load_state_dict
from resegzoo.weights.resolve import resolve_variant
from resegzoo.weights.zoo import CheckpointError, FetchError, LoadError
from resegzoo.plugins.manager import get_plugin_manager
from resegzoo.plugins.registry import UnknownNameError, build_registry
from resegzoo.testing import make_tiny_clip
from resegzoo.weights.zoo import ClipVariant

TEXTS = ["a building", "a road next to a river", "trees"]


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def assert_same_model(loaded, reference, images) -> None:
    """Exact equality of image and text features (the tokenizer included)."""
    with torch.no_grad():
        assert torch.equal(loaded.model.encode_image(images), reference.encode_image(images))
        tokens = open_clip.tokenizer.SimpleTokenizer(context_length=77)(TEXTS)
        assert torch.equal(loaded.tokenizer(TEXTS), tokens)
        assert torch.equal(loaded.model.encode_text(tokens), reference.encode_text(tokens))
    assert not loaded.model.training


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone().contiguous() for k, v in model.state_dict().items()}


@pytest.fixture
def with_variants(monkeypatch):
    """Make extra ClipVariants visible to resolve_variant/load_clip, as a plugin would."""

    def install(*variants: ClipVariant) -> None:
        class TestPlugin:
            @hookimpl
            def resegzoo_register_variants(self, register):
                for v in variants:
                    register(v)

        pm = get_plugin_manager(load_entrypoints=False)
        pm.register(TestPlugin(), name="test-plugin")
        monkeypatch.setattr(registry_module, "_default", build_registry(pm))

    return install


def _variant(name: str, config: dict, **source) -> ClipVariant:
    return ClipVariant(name=name, architecture="tiny", license="x", citation="x", model_config=config, **source)


def test_remoteclip_style_pickle_from_offline_hf_cache(tiny_clip, tiny_clip_config, put_in_hf_cache,
                                                       with_variants, images):
    buf = io.BytesIO()
    torch.save(_state(tiny_clip), buf)  # RemoteCLIP/GeoRSCLIP: a plain pickled state dict
    put_in_hf_cache("org/TinyRSCLIP", "ckpt/Tiny-ViT.pt", buf.getvalue())
    with_variants(_variant("tiny-rs", tiny_clip_config, format="openclip-pickle",
                           hf_repo="org/TinyRSCLIP", hf_file="ckpt/Tiny-ViT.pt"))
    loaded = load_clip("tiny-rs")
    assert_same_model(loaded, tiny_clip, images)
    assert (loaded.name, loaded.image_size, loaded.variant.name) == ("tiny-rs", 64, "tiny-rs")
    assert loaded.mean == open_clip.constants.OPENAI_DATASET_MEAN


def test_skyclip_zip_with_state_dict_and_module_prefix(tiny_clip, tiny_clip_config, tmp_path, images):
    buf = io.BytesIO()
    checkpoint = {"epoch": 20, "name": "SkyCLIP_tiny", "state_dict": {f"module.{k}": v for k, v in _state(tiny_clip).items()},
                  "optimizer": {"lr": 1e-5}}
    torch.save(checkpoint, buf)
    archive = tmp_path / "SkyCLIP_tiny.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("SkyCLIP_tiny/epoch_20.pt", buf.getvalue())
        zf.writestr("SkyCLIP_tiny/params.txt", "epochs: 20")
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": tiny_clip_config}))
    assert_same_model(load_clip(str(archive)), tiny_clip, images)
    sd, _ = load_state_dict(str(archive))
    assert sd.keys() == tiny_clip.state_dict().keys()  # `module.` stripped, `state_dict` unwrapped


def test_safetensors_file_and_local_dir_folder(tiny_clip, tiny_clip_config, tmp_path, images):
    folder = tmp_path / "composed"
    folder.mkdir()
    save_file(_state(tiny_clip), str(folder / "open_clip_model.safetensors"))
    mean = [0.5, 0.5, 0.5]
    (folder / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": tiny_clip_config, "preprocess_cfg": {"mean": mean, "std": mean}, "architecture": "tiny-avg"}))
    for spec in (f"local-dir:{folder}", str(folder), str(folder / "open_clip_model.safetensors")):
        loaded = load_clip(spec)
        assert_same_model(loaded, tiny_clip, images)
        assert loaded.mean == (0.5, 0.5, 0.5) and loaded.architecture == "tiny-avg"
    # open_clip itself reads the same folder: resegzoo's folder layout is open_clip's
    reference = open_clip.create_model(f"local-dir:{folder}").eval()
    assert torch.equal(load_clip(str(folder)).model.encode_image(images), reference.encode_image(images))


def test_hf_hub_spec_from_offline_cache(tiny_clip, tiny_clip_config, put_in_hf_cache, tmp_path, images):
    save_file(_state(tiny_clip), str(tmp_path / "w.safetensors"))
    put_in_hf_cache("org/tiny-composed", "open_clip_model.safetensors", (tmp_path / "w.safetensors").read_bytes())
    put_in_hf_cache("org/tiny-composed", "open_clip_config.json", json.dumps({"model_cfg": tiny_clip_config}).encode())
    assert_same_model(load_clip("hf-hub:org/tiny-composed"), tiny_clip, images)
    assert checkpoint_path("hf-hub:org/tiny-composed").name == "open_clip_model.safetensors"


@pytest.fixture
def tiny_arch(monkeypatch, tiny_clip_config):
    """Teach this test's open_clip a named architecture 'Tiny-ViT-16' (as if it shipped one)."""
    get_config, list_models = open_clip.get_model_config, open_clip.list_models
    monkeypatch.setattr(open_clip, "get_model_config",
                        lambda name: dict(tiny_clip_config) if name == "Tiny-ViT-16" else get_config(name))
    monkeypatch.setattr(open_clip, "list_models", lambda: [*list_models(), "Tiny-ViT-16"])
    return "Tiny-ViT-16"


def test_bare_pickle_with_architecture_or_inferred(tiny_clip, tiny_arch, tmp_path, images):
    path = tmp_path / "RemoteCLIP-Tiny.pt"
    torch.save(_state(tiny_clip), path)
    assert_same_model(load_clip(str(path), architecture=tiny_arch), tiny_clip, images)
    inferred = load_clip(str(path))  # the shapes fit exactly one architecture
    assert inferred.architecture == tiny_arch
    assert_same_model(inferred, tiny_clip, images)
    sd, arch = load_state_dict(str(path))
    assert arch == tiny_arch and all(torch.equal(sd[k], v) for k, v in tiny_clip.state_dict().items())


def test_shapes_fitting_gelu_and_quickgelu_ask_for_arch(tmp_path):
    model = open_clip.create_model("RN50")  # a real architecture: shapes fit RN50 and RN50-quickgelu
    path = tmp_path / "rn50.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(LoadError, match=r"RN50, RN50-quickgelu.*--arch"):
        load_clip(str(path))


def test_unknown_architecture_suggests_close_names(tiny_clip, tmp_path):
    path = tmp_path / "w.pt"
    torch.save(_state(tiny_clip), path)
    with pytest.raises(LoadError, match="did you mean.*ViT-B-32"):
        load_clip(str(path), architecture="ViT-B-23")


def test_unrecognisable_shapes_ask_for_arch(tiny_clip, tmp_path):
    path = tmp_path / "w.pt"
    torch.save(_state(tiny_clip), path)
    with pytest.raises(LoadError, match="--arch"):
        load_clip(str(path))


def test_checkpoint_of_another_architecture_lists_mismatches(tiny_clip, tiny_arch, tmp_path, tiny_clip_config):
    other = make_tiny_clip(seed=1, config=dict(tiny_clip_config, vision_cfg=dict(
        tiny_clip_config["vision_cfg"], width=32, layers=6)))
    path = tmp_path / "other.pt"
    torch.save(_state(other), path)
    with pytest.raises(LoadError) as info:
        load_clip(str(path), architecture=tiny_arch)
    msg = str(info.value)
    assert "Missing keys: visual.transformer.resblocks.6." in msg
    assert "Unexpected keys: none" in msg
    assert "visual.class_embedding (checkpoint (32,), model (64,))" in msg


def test_unexpected_keys_are_listed(tiny_clip, tiny_arch, tmp_path):
    state = _state(tiny_clip)
    state["visual.extra_head.weight"] = torch.zeros(3)
    path = tmp_path / "extra.pt"
    torch.save(state, path)
    with pytest.raises(LoadError, match=r"Unexpected keys: visual\.extra_head\.weight"):
        load_clip(str(path), architecture=tiny_arch)


def test_truncated_pickle_is_a_clear_error(tiny_clip, tmp_path):
    path = tmp_path / "cut.pt"
    torch.save(_state(tiny_clip), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_state_dict(str(path), architecture="ViT-B-32")


def test_truncated_safetensors_is_a_clear_error(tiny_clip, tmp_path):
    path = tmp_path / "cut.safetensors"
    save_file(_state(tiny_clip), str(path))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated download"):
        load_state_dict(str(path), architecture="ViT-B-32")


@pytest.mark.parametrize("payload, message", [
    ({"epoch": 3, "lr": 0.1}, "not tensors"),
    ([torch.zeros(2)], "holds a list, not a state dict"),
])
def test_pickle_that_is_not_a_state_dict(tmp_path, payload, message):
    path = tmp_path / "x.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=message):
        load_state_dict(str(path), architecture="ViT-B-32")


class Arbitrary:
    """A class a malicious or careless checkpoint might pickle."""


def test_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "obj": Arbitrary()}, path)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_state_dict(str(path), architecture="ViT-B-32")


def test_unknown_variant_name_suggests_close_names():
    with pytest.raises(UnknownNameError, match="did you mean 'remoteclip-vit-l-14'"):
        resolve_variant("remoteclip-vit-l14")
    with pytest.raises(UnknownNameError):
        load_clip("remoteclip-vit-l14")


def test_path_like_specs_are_not_registry_names(tmp_path):
    assert resolve_variant("local-dir:somewhere") is None
    assert resolve_variant("hf-hub:org/x") is None
    assert resolve_variant("weights.pt") is None
    assert resolve_variant("remoteclip-vit-l-14").source.hf_repo == "chendelong/RemoteCLIP"
    with pytest.raises(LoadError, match="no such file"):
        load_clip(str(tmp_path / "absent.pt"))
    with pytest.raises(LoadError, match="open_clip_config.json"):
        load_clip(f"local-dir:{tmp_path}")


def test_custom_variants_are_built_by_the_segmenter(with_variants):
    with_variants(ClipVariant(name="synthetic", architecture="synthetic", format="custom", license="x",
                              citation="x", build=lambda device="cpu": None))
    with pytest.raises(LoadError, match="built by its plugin"):
        load_clip("synthetic")


def test_registry_variant_missing_offline_explains(hf_offline):
    with pytest.raises(FetchError) as info:
        checkpoint_path("georsclip-vit-l-14")
    assert "Zilun/GeoRSCLIP" in str(info.value) and "ckpt/RS5M_ViT-L-14.pt" in str(info.value)


def test_zips_with_the_same_name_in_different_folders_do_not_share_members(tmp_path, tiny_clip, tiny_clip_config):
    states = []
    for seed, folder in enumerate(["a", "b"]):
        state = _state(make_tiny_clip(seed=seed))
        states.append(state)
        buf = io.BytesIO()
        torch.save({"state_dict": state}, buf)
        (tmp_path / folder).mkdir()
        with zipfile.ZipFile(tmp_path / folder / "model.zip", "w") as zf:
            zf.writestr("model/epoch_20.pt", buf.getvalue())
    for folder, state in zip(["a", "b"], states):
        sd, _ = load_state_dict(str(tmp_path / folder / "model.zip"), architecture="ViT-B-32")
        assert torch.equal(sd["visual.proj"], state["visual.proj"])
