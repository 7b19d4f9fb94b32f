"""The zoo as data: registry/models/*.yaml records (one record type for every kind), strictly loaded,
consistent with open_clip and METHOD.md."""
from __future__ import annotations

import shutil
from pathlib import Path

import open_clip
import pytest

from resegzoo.plugins import registry as registry_module
from resegzoo.plugins.manager import get_plugin_manager
from resegzoo.plugins.registry import UnknownNameError, build_registry
from resegzoo.schema import SchemaError
from resegzoo.weights.records import ClipVariant, ModelRecord, RecordSource, load_models_file
from resegzoo.weights.zoo import REGISTRY_ENV, get_sam_checkpoint, registry_dir

REPO_REGISTRY = Path(__file__).resolve().parent.parent / "registry"


def _builtin_records() -> list[ModelRecord]:
    return [r for path in sorted((REPO_REGISTRY / "models").glob("*.yaml")) for r in load_models_file(path)]


@pytest.fixture(scope="module")
def variants() -> dict[str, ClipVariant]:
    """The clip records, as earlier releases' ClipVariant view (the fields these checks read)."""
    return {r.name: ClipVariant.from_record(r) for r in _builtin_records() if r.kind == "clip"}


def test_one_namespace_for_every_kind_and_sam3_is_a_gated_record():
    records = _builtin_records()
    names = [r.name for r in records]
    assert len(names) == len(set(names))
    assert {r.kind for r in records} == {"clip", "sam", "sam2", "sam3"}
    sam3 = next(r for r in records if r.name == "sam3")
    assert sam3.kind == "sam3" and sam3.gated and sam3.source.hf_repo == "facebook/sam3" and sam3.source.is_snapshot


def test_every_family_in_every_required_architecture(variants):
    by_family: dict[str, set[str]] = {}
    for v in variants.values():
        by_family.setdefault(v.name.split("-")[0], set()).add(v.architecture.removesuffix("-quickgelu"))
    for family in ("openai", "remoteclip", "georsclip", "skyclip"):
        assert {"ViT-B-32", "ViT-L-14"} <= by_family[family], family
    assert "RN50" in by_family["remoteclip"]
    assert {"ViT-L-14-336", "ViT-H-14"} <= by_family["georsclip"]


def test_records_match_method_md_sources(variants):
    assert variants["remoteclip-vit-l-14"].hf_repo == "chendelong/RemoteCLIP"
    assert variants["remoteclip-vit-l-14"].hf_file == "RemoteCLIP-ViT-L-14.pt"
    assert variants["georsclip-vit-l-14-336"].hf_file == "ckpt/RS5M_ViT-L-14-336.pt"
    assert variants["georsclip-vit-b-32"].license == "CC-BY-4.0"
    sky = variants["skyclip-vit-l-14"]
    assert sky.format == "skyclip-zip" and sky.url.endswith("/SkyCLIP_ViT_L14_top30pct.zip")
    assert sky.member == "SkyCLIP_ViT_L14_top30pct/epoch_20.pt"
    assert variants["openai-vit-l-14"].pretrained_tag == "openai"


def test_architectures_exist_and_openai_derived_weights_use_quickgelu(variants):
    known = set(open_clip.list_models())
    for v in variants.values():
        assert v.architecture in known, v.name
        openai_derived = v.format == "openclip-pretrained" or (v.init_from or "").startswith("openai")
        assert v.architecture.endswith("-quickgelu") == openai_derived, v.name
        if v.format == "openclip-pretrained":
            assert open_clip.get_pretrained_cfg(v.architecture, v.pretrained_tag)["quick_gelu"] is True


def test_init_from_names_a_zoo_record_where_it_is_one_of_ours(variants):
    # the composer's "same initialisation" warning relies on init_from
    for v in variants.values():
        if v.init_from and v.init_from.startswith("openai"):
            assert v.init_from in variants, v.name
    l14 = [v for v in variants.values() if v.architecture == "ViT-L-14-quickgelu" and v.format != "openclip-pretrained"]
    assert {v.init_from for v in l14} == {"openai-vit-l-14"}  # the three composable ViT-L-14s


def test_no_invented_hashes(variants):
    for v in variants.values():
        assert v.sha256 is None or len(v.sha256) == 64


def test_sam_checkpoints():
    for model_type, file in [("vit_b", "sam_vit_b_01ec64.pth"), ("vit_l", "sam_vit_l_0b3195.pth"),
                             ("vit_h", "sam_vit_h_4b8939.pth")]:
        record = get_sam_checkpoint(model_type)
        assert record.kind == "sam" and record.details.model_type == model_type
        assert record.source.url == f"https://dl.fbaipublicfiles.com/segment_anything/{file}"
        assert get_sam_checkpoint(record.name) == record
    assert get_sam_checkpoint("hiera_t").kind == "sam2"
    with pytest.raises(UnknownNameError, match="did you mean 'sam-vit-b'"):
        get_sam_checkpoint("sam-vitb")


def _copy_registry(tmp_path: Path) -> Path:
    target = tmp_path / "registry"
    shutil.copytree(REPO_REGISTRY, target)
    return target


def test_yaml_typo_is_an_error_naming_file_and_key(tmp_path, monkeypatch):
    folder = _copy_registry(tmp_path)
    path = folder / "models" / "remoteclip.yaml"
    path.write_text(path.read_text().replace("hf_file: RemoteCLIP-ViT-L-14.pt", "hf_flie: RemoteCLIP-ViT-L-14.pt"))
    with pytest.raises(SchemaError) as info:
        load_models_file(path)
    msg = str(info.value)
    assert str(path) in msg and "'hf_flie'" in msg and "did you mean 'hf_file'" in msg
    assert "remoteclip-vit-l-14" in msg
    # the same error surfaces when the registry is built from that folder
    monkeypatch.setenv(REGISTRY_ENV, str(folder))
    monkeypatch.setattr(registry_module, "_default", None)
    with pytest.raises(SchemaError, match="hf_flie"):
        build_registry(get_plugin_manager(load_entrypoints=False))


def test_yaml_missing_key_and_wrong_type(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text("models:\n  - name: x\n    kind: clip\n    source: {hf_repo: a/b, hf_file: c.pt}\n"
                    "    details: {architecture: ViT-B-32}\n")
    with pytest.raises(SchemaError, match=r"v\.yaml: models\[0\] \(x\): missing required key 'license'"):
        load_models_file(path)
    path.write_text("models:\n  - name: x\n    kind: sam\n    source: {url: 'https://e.org/s.pth'}\n"
                    "    details: {model_type: vit_x}\n    license: MIT\n")
    with pytest.raises(SchemaError, match="model_type: 'vit_x' is not one of"):
        load_models_file(path)
    path.write_text("models:\n  - name: x\n    kind: sam2\n    source: {url: 'https://e.org/s.pth'}\n"
                    "    details: {model_type: vit_b}\n    license: MIT\n")
    with pytest.raises(SchemaError, match="a sam2 record's model_type is one of hiera_t"):
        load_models_file(path)


@pytest.mark.parametrize("source,message", [
    ("{}", "give its source"),
    ("{member: a/b.pt}", "needs source.url"),
    ("{hf_file: b.pt}", "needs source.hf_repo"),
    ("{hf_repo: a/b, url: 'https://e.org/x.pt'}", "give exactly one place"),
    ("{hf_repo: just-a-name}", "write ORG/REPO"),
])
def test_yaml_record_without_a_sound_source_is_an_error(tmp_path, source, message):
    path = tmp_path / "v.yaml"
    path.write_text(f"models:\n  - name: x\n    kind: sam3\n    source: {source}\n    license: MIT\n")
    with pytest.raises(SchemaError, match=message):
        load_models_file(path)


def test_kind_details_are_checked_per_kind(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text("models:\n  - name: x\n    kind: clip\n    source: {hf_repo: a/b, hf_file: c.pt}\n"
                    "    details: {architecture: ViT-B-32, init_frm: y}\n    license: MIT\n")
    with pytest.raises(SchemaError, match="unknown key 'init_frm'"):
        load_models_file(path)
    path.write_text("models:\n  - name: x\n    kind: sam3\n    source: {hf_repo: a/b}\n"
                    "    details: {model_type: vit_b}\n    license: MIT\n")
    with pytest.raises(SchemaError, match="takes no details"):
        load_models_file(path)
    # a plugin's own kind keeps its details as given
    record = ModelRecord(name="mine", kind="colour-table", license="MIT", source=RecordSource(path="/x"),
                         details={"anything": 1})
    assert record.details == {"anything": 1}


def test_a_yaml_record_cannot_carry_code(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text("models:\n  - name: x\n    kind: clip\n    source: {fetcher: os.system}\n"
                    "    details: {architecture: ViT-B-32}\n    license: MIT\n")
    with pytest.raises(SchemaError, match="only be set by a Python plugin"):
        load_models_file(path)


def test_a_clip_variant_of_earlier_releases_is_a_clip_record_and_back():
    for name, variant in {r.name: ClipVariant.from_record(r) for r in _builtin_records() if r.kind == "clip"}.items():
        record = variant.as_record()
        assert record.kind == "clip" and record.name == name
        assert ClipVariant.from_record(record) == variant


def test_registry_dir_is_the_checkout_folder_here_and_overridable(tmp_path, monkeypatch):
    assert registry_dir() == REPO_REGISTRY
    monkeypatch.setenv(REGISTRY_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=REGISTRY_ENV):
        registry_dir()


def test_wheels_ship_every_registry_file():
    """registry/ reaches a regular install through [tool.setuptools.data-files]; that table does
    not recurse, so each folder needs its own line. Checked by hand once with a regular
    `pip install` into a fresh venv: registry_dir() was <venv>/share/resegzoo/registry."""
    import fnmatch

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
        import tomli as tomllib

    pyproject = tomllib.loads((REPO_REGISTRY.parent / "pyproject.toml").read_text())
    data_files = pyproject["tool"]["setuptools"]["data-files"]
    for path in REPO_REGISTRY.rglob("*"):
        if path.is_file():
            rel = path.relative_to(REPO_REGISTRY.parent)
            patterns = data_files.get(f"share/resegzoo/{rel.parent.as_posix()}", [])
            assert any(fnmatch.fnmatch(rel.as_posix(), p) for p in patterns), f"{rel} is not shipped"
