"""Issue 22 (one model record, one route, resolve once): every spec form of every model kind, in
segment, eval and the API, offline, from a Hugging Face cache this module populates with tiny
models in the real layouts (blobs + snapshot links; open_clip's Hub layout for the CLIP, transformers'
save_pretrained for SAM 3). The zoo name of SAM 3 is the shipped ``sam3`` record itself: its
repository (facebook/sam3) is put in the cache, so ``--model sam3`` runs exactly as a user types it.

A spec of the wrong kind (a CLIP model for segearth-ov3, SAM 3 for clip) is one line before any
model loads; a spec is resolved once per command."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from resegzoo.cli import build_cli
from resegzoo.plugins import registry as registry_module
from resegzoo.testing import TINY_MODEL_CONFIG, make_tiny_clip

REPO_REGISTRY = Path(__file__).resolve().parent.parent / "registry"
REVISION = "5" * 40
CLASSES = "red, crimson; green; blue"
CLIP_RECORD = "tiny-clip"


def _put_repo(cache: Path, repo: str, folder: Path) -> Path:
    """Every file of ``folder`` as Hugging Face repository ``repo`` in the HF cache, in the Hub's
    real layout: content in ``blobs/<sha256>``, ``snapshots/<revision>/<file>`` links to it."""
    root = cache / ("models--" + repo.replace("/", "--"))
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(REVISION)
    (root / "blobs").mkdir()
    snapshot = root / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / path.name).symlink_to(Path("..") / ".." / "blobs" / blob.name)
    return snapshot


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, tiny_sam3_dir):
    """The populated HF cache, a registry with a CLIP record pointing into it, and the local folders."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("model-specs")
    clip_dir = root / "tiny-clip"
    clip_dir.mkdir()
    save_file({k: v.contiguous() for k, v in make_tiny_clip(seed=4).state_dict().items()},
              str(clip_dir / "open_clip_model.safetensors"))
    (clip_dir / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_MODEL_CONFIG, "preprocess_cfg": {}}))
    cache = root / "hf-cache"
    _put_repo(cache, "test/tiny-clip", clip_dir)
    _put_repo(cache, "facebook/sam3", tiny_sam3_dir)  # the shipped `sam3` record's repository
    _put_repo(cache, "test/tiny-sam3", tiny_sam3_dir)
    registry = root / "registry"
    shutil.copytree(REPO_REGISTRY, registry)
    (registry / "models" / "test.yaml").write_text(
        "models:\n"
        f"  - name: {CLIP_RECORD}\n"
        "    kind: clip\n"
        "    source: {hf_repo: test/tiny-clip, hf_file: open_clip_model.safetensors}\n"
        f"    details: {{architecture: tiny, model_config: {json.dumps(TINY_MODEL_CONFIG)}}}\n"
        "    license: Apache-2.0\n")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    Image.fromarray(np.kron(base, np.ones((10, 11, 1), dtype=np.uint8))[:40, :52]).save(images / "a.png")
    return {"root": root, "cache": cache, "registry": registry, "clip": clip_dir, "sam3": tiny_sam3_dir,
            "image": images / "a.png"}


@pytest.fixture
def offline_zoo(zoo, monkeypatch):
    """Offline, with the populated HF cache and the registry holding the test record."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(zoo["cache"]))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(zoo["cache"]))
    monkeypatch.setenv("RESEGZOO_REGISTRY", str(zoo["registry"]))
    monkeypatch.setattr(registry_module, "_default", None)
    return zoo


def clip_forms(zoo) -> dict[str, str]:
    folder = zoo["clip"]
    return {"zoo name": CLIP_RECORD, "hf-hub": "hf-hub:test/tiny-clip", "local-dir": f"local-dir:{folder}",
            "folder": str(folder), "file": str(folder / "open_clip_model.safetensors")}


def sam3_forms(zoo) -> dict[str, str]:
    folder = zoo["sam3"]
    return {"zoo name": "sam3", "hf-hub": "hf-hub:test/tiny-sam3", "local-dir": f"local-dir:{folder}",
            "folder": str(folder)}


FORMS = {"clip": clip_forms, "segearth-ov3": sam3_forms}
FORM_NAMES = {"clip": ("zoo name", "hf-hub", "local-dir", "folder", "file"),
              "segearth-ov3": ("zoo name", "hf-hub", "local-dir", "folder")}  # SAM 3 has no single-file form


@pytest.fixture(scope="module")
def recipes(zoo):
    """A quick recipe per method: CLIP with no segments at the model's window; SegEarth-OV3's whole image."""
    clip = zoo["root"] / "clip.yaml"
    clip.write_text("masks: {generator: none}\nschedule: {rules: ['global*']}\n")
    ov3 = zoo["root"] / "ov3.yaml"
    ov3.write_text(f"base: {REPO_REGISTRY / 'recipes' / 'method-segearth-ov3.yaml'}\n"
                   "inference: {window_placement: image}\n")
    return {"clip": str(clip), "segearth-ov3": str(ov3)}


def cli(*args: str):
    return CliRunner().invoke(build_cli(), list(args), catch_exceptions=False)


def one_line(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.strip() and not ln.startswith(("Usage:", "Try "))]
    assert len(lines) == 1, result.output
    return lines[0]


_REFERENCE: dict[str, np.ndarray] = {}


def reference_labels(zoo, method: str, recipe: str) -> np.ndarray:
    """The labels of the local-dir form through the API (every other form must give the same)."""
    if method not in _REFERENCE:
        from resegzoo.api import Segmenter, Vocabulary, load_recipe

        seg = Segmenter.from_recipe(load_recipe(recipe), model=FORMS[method](zoo)["local-dir"])
        image = np.asarray(Image.open(zoo["image"]).convert("RGB"))
        _REFERENCE[method] = seg.segment(image, Vocabulary.parse(CLASSES)).labels
    return _REFERENCE[method]


@pytest.mark.parametrize("method,form", [(m, f) for m in FORM_NAMES for f in FORM_NAMES[m]])
def test_segment_takes_every_spec_form(offline_zoo, recipes, tmp_path, method, form):
    spec = FORMS[method](offline_zoo)[form]
    out = tmp_path / "out"
    result = cli("segment", str(offline_zoo["image"]), "--recipe", recipes[method], "--model", spec,
                 "--classes", CLASSES, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Loading weights" not in result.output  # transformers' own bar stays out of resegzoo's output
    labels = np.asarray(Image.open(out / "a.labels.png"))
    np.testing.assert_array_equal(labels, reference_labels(offline_zoo, method, recipes[method]))
    side = json.loads((out / "a.json").read_text())
    assert side["model"] == spec and side["method"] == method
    assert side["weights"] and set(side["weights"]) <= {"sha256", "config_sha256", "files"}  # by content


@pytest.fixture(scope="module")
def dataset(zoo) -> Path:
    """A generic dataset of one 40 x 52 image."""
    from resegzoo.eval.datasets.generic import load_classes_file
    from resegzoo.eval.synthetic import write_dataset
    from resegzoo_oracle import color_of

    root = zoo["root"] / "dataset"
    root.mkdir()
    (root / "classes.yaml").write_text("classes:\n  - [red, crimson]\n  - green\n  - blue\n")
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, color_of, images=1, height=40, width=52)
    return root


@pytest.mark.parametrize("method", list(FORMS))
def test_eval_takes_every_spec_form_in_one_command(offline_zoo, recipes, dataset, tmp_path, method):
    forms = FORMS[method](offline_zoo)
    args = ["eval", "--dataset", "generic", "--root", str(dataset), "--recipe", recipes[method], "--out",
            str(tmp_path / "out"), "--quiet", "--overlays", "0"]
    for spec in forms.values():
        args += ["--model", spec]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    runs = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert len(runs) == len(forms)
    assert len({json.dumps(run["confusion"]) for run in runs}) == 1  # the same weights, whatever the form


@pytest.mark.parametrize("method", list(FORMS))
def test_the_api_takes_every_spec_form(offline_zoo, recipes, method):
    from resegzoo.api import Segmenter, Vocabulary, load_recipe
    from resegzoo.weights.zoo import ResolvedModel

    image = np.asarray(Image.open(offline_zoo["image"]).convert("RGB"))
    for form, spec in FORMS[method](offline_zoo).items():
        seg = Segmenter.from_recipe(load_recipe(recipes[method]), model=spec)
        assert isinstance(seg.resolved, ResolvedModel) and seg.resolved.spec == spec, form
        assert seg.resolved.kind == ("clip" if method == "clip" else "sam3")
        labels = seg.segment(image, Vocabulary.parse(CLASSES)).labels
        np.testing.assert_array_equal(labels, reference_labels(offline_zoo, method, recipes[method]), err_msg=form)


@pytest.fixture
def nothing_loads(monkeypatch):
    """Any model or mask generator built from here on fails the test."""
    import resegzoo.segmenter.models as models
    import resegzoo.weights.loading as loading

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the spec was checked")

    for module, name in ((loading, "build_clip"), (loading, "build_sam3"), (models, "build_mask_generator")):
        monkeypatch.setattr(module, name, refuse)


WRONG_KINDS = [
    ("clip", "sam3", "'sam3' is a SAM 3 model, not a CLIP model"),
    ("clip", "local-dir:{sam3}", "is a SAM 3 model (config.json, model_type sam3), not a CLIP model"),
    ("clip", "hf-hub:test/tiny-sam3", "hf-hub:test/tiny-sam3 is a sam3 model (config.json), not a CLIP model"),
    ("segearth-ov3", CLIP_RECORD, f"'{CLIP_RECORD}' is a CLIP model, not a SAM 3 model"),
    ("segearth-ov3", "local-dir:{clip}", "is a CLIP model (open_clip_config.json), not a SAM 3 model"),
    ("segearth-ov3", "hf-hub:test/tiny-clip", "hf-hub:test/tiny-clip is a CLIP model (open_clip_config.json)"),
    ("segearth-ov3", "{clip}/open_clip_model.safetensors", "is a single file; a SAM 3 model is a folder"),
    ("segearth-ov3", "remoteclip-vit-b-32", "'remoteclip-vit-b-32' is a CLIP model, not a SAM 3 model"),
]


@pytest.mark.parametrize("method,spec,message", WRONG_KINDS)
def test_a_model_of_the_wrong_kind_is_one_line_before_any_model_loads(offline_zoo, recipes, tmp_path,
                                                                      nothing_loads, method, spec, message):
    spec = spec.format(sam3=offline_zoo["sam3"], clip=offline_zoo["clip"])
    result = cli("segment", str(offline_zoo["image"]), "--recipe", recipes[method], "--model", spec,
                 "--classes", CLASSES, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2  # what was asked for cannot be done, found before any work
    assert message in one_line(result)
    assert not (tmp_path / "out" / "a.labels.png").exists()


def test_eval_refuses_a_model_of_the_wrong_kind_before_any_model_loads(offline_zoo, recipes, dataset, tmp_path,
                                                                       nothing_loads):
    result = cli("eval", "--dataset", "generic", "--root", str(dataset), "--recipe", recipes["segearth-ov3"],
                 "--model", CLIP_RECORD, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert f"'{CLIP_RECORD}' is a CLIP model, not a SAM 3 model" in one_line(result)


def test_a_mistyped_clip_model_is_reported_before_sam_loads(offline_zoo, tmp_path, nothing_loads):
    result = cli("segment", str(offline_zoo["image"]), "--model", "tiny-clp", "--masks", "sam",
                 "--classes", CLASSES, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "unknown CLIP model 'tiny-clp'; did you mean 'tiny-clip'" in one_line(result)


def test_a_spec_is_resolved_once_per_command(offline_zoo, recipes, dataset, tmp_path, monkeypatch):
    import resegzoo.weights.loading as loading
    import resegzoo.weights.resolve as resolve

    calls: list[str] = []
    real = resolve.resolve

    def counting(spec, *args, **kwargs):
        calls.append(spec)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(loading, "resolve", counting)
    result = cli("segment", str(offline_zoo["image"]), "--recipe", recipes["segearth-ov3"], "--model", "sam3",
                 "--classes", CLASSES, "--out", str(tmp_path / "seg"))
    assert result.exit_code == 0, result.output
    assert calls == ["sam3"]
    calls.clear()
    result = cli("eval", "--dataset", "generic", "--root", str(dataset), "--recipe", recipes["clip"], "--recipe",
                 "method-maskclip", "--model", CLIP_RECORD, "--out", str(tmp_path / "ev"), "--quiet")
    assert result.exit_code == 0, result.output
    assert calls == [CLIP_RECORD]  # two runs, one resolution (run keys, segmenters, text cache share it)


def test_sam3_missing_offline_says_gated_licence_token_and_fetch(hf_offline, monkeypatch, tmp_path, recipes, zoo):
    monkeypatch.setattr(registry_module, "_default", None)
    result = cli("segment", str(zoo["image"]), "--recipe", recipes["segearth-ov3"], "--model", "sam3",
                 "--classes", CLASSES, "--out", str(tmp_path / "out"))
    assert result.exit_code == 1  # the work failed: a model that cannot be fetched
    line = one_line(result)
    for words in ("facebook/sam3", "not in the Hugging Face cache", "sam3 is gated", "accept its licence",
                  "https://huggingface.co/facebook/sam3", "HF_TOKEN", "hf auth login", "`resegzoo fetch sam3`"):
        assert words in line, (words, line)
    fetched = cli("fetch", "sam3")
    assert fetched.exit_code == 1 and "sam3 is gated" in one_line(fetched) and "resegzoo fetch sam3" in fetched.output


def test_ray_actors_get_the_resolved_model_not_the_spec(offline_zoo, recipes, tmp_path, monkeypatch):
    """A record only the driver knows (registered in this process, not through an installed plugin):
    the actors could not resolve its name themselves, so a run that works shows they were handed
    the driver's resolved model."""
    import ray

    from resegzoo.plugins.hookspecs import hookimpl
    from resegzoo.plugins.manager import get_plugin_manager
    from resegzoo.plugins.registry import build_registry
    from resegzoo.weights.records import ClipDetails, ModelRecord, RecordSource

    class DriverOnly:
        @hookimpl
        def resegzoo_register_models(self, register):
            register(ModelRecord(name="driver-only-clip", kind="clip", license="MIT",
                                 source=RecordSource(path=str(offline_zoo["clip"] / "open_clip_model.safetensors")),
                                 details=ClipDetails("tiny", model_config=TINY_MODEL_CONFIG)))

    pm = get_plugin_manager()
    pm.register(DriverOnly(), name="driver-only")
    monkeypatch.setattr(registry_module, "_default", build_registry(pm))
    common = [str(offline_zoo["image"]), "--recipe", recipes["clip"], "--model", "driver-only-clip", "--classes", CLASSES]
    local = cli("segment", *common, "--out", str(tmp_path / "l"))
    assert local.exit_code == 0, local.output
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = cli("segment", *common, "--out", str(tmp_path / "r"), "--engine", "ray", "--actors", "1")
    finally:
        ray.shutdown()
    assert on_ray.exit_code == 0, on_ray.output
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "l" / "a.labels.png")),
                                  np.asarray(Image.open(tmp_path / "r" / "a.labels.png")))
    assert json.loads((tmp_path / "r" / "a.json").read_text())["weights"] == \
        json.loads((tmp_path / "l" / "a.json").read_text())["weights"]
