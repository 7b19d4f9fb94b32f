"""Weighting strategies: registered as plugins, strict parameters, and scores that mean something."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from compose_helpers import related_models, save_folders
from PIL import Image

from resegzoo.cli import build_cli
from resegzoo.compose import compose, recipe_from_mapping
from resegzoo.compose.weighting import WeightingError, softmax
from resegzoo.plugins.registry import get_registry
from resegzoo.schema import SchemaError
from resegzoo.testing import tiny_model_config

CLASSES = ["road", "tree", "water", "building", "car", "field"]
TEMPLATES = ["a satellite image of {}.", "an aerial photo of {}.", "a picture of the {}.", "there is {} here."]


def _tokens():
    import open_clip

    tok = open_clip.tokenizer.SimpleTokenizer(context_length=77)
    return tok([t.replace("{}", c) for c in CLASSES for t in TEMPLATES])


def better_text_tower(model):
    """A copy whose text tower is better by construction: the text projection drops the directions
    in which prompts of one class vary with the template, and the direction all prompts share."""
    tokens = _tokens()
    with torch.no_grad():
        x = model.transformer(model.token_embedding(tokens) + model.positional_embedding, attn_mask=model.attn_mask)
        feats = model.ln_final(x)[torch.arange(len(tokens)), tokens.argmax(-1)]
    f = feats.reshape(len(CLASSES), len(TEMPLATES), -1)
    within = (f - f.mean(1, keepdim=True)).reshape(-1, f.shape[-1])
    directions = torch.linalg.svd(within, full_matrices=False).Vh[:6]
    shared = feats.mean(0, keepdim=True)
    basis, _ = torch.linalg.qr(torch.cat([directions, shared / shared.norm()]).T)
    better = copy.deepcopy(model)
    with torch.no_grad():
        better.text_projection.copy_((torch.eye(f.shape[-1]) - basis @ basis.T) @ model.text_projection)
    return better


def noisier_text_tower(model, scale=0.5, seed=0):
    worse = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in worse.named_parameters():
            if not name.startswith("visual") and p.ndim > 1:
                p.add_(torch.randn(p.shape, generator=gen) * scale * p.std())
    return worse


def reference_quality(model) -> tuple[float, float]:
    """a and b of METHOD.md computed with explicit loops over open_clip's own encode_text."""
    with torch.no_grad():
        u = model.encode_text(_tokens(), normalize=True).reshape(len(CLASSES), len(TEMPLATES), -1)
    cons = []
    for c in range(len(CLASSES)):
        pairs = [float(u[c, t] @ u[c, s]) for t in range(len(TEMPLATES)) for s in range(len(TEMPLATES)) if t != s]
        cons.append(sum(pairs) / len(pairs))
    cents = [u[c].mean(0) / u[c].mean(0).norm() for c in range(len(CLASSES))]
    seps = [float(cents[c] @ cents[d]) for c in range(len(CLASSES)) for d in range(len(CLASSES)) if c != d]
    return sum(cons) / len(cons), sum(seps) / len(seps)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Three models sharing an initialisation: plain, with a better text tower, with a noisier one."""
    plain = related_models(1, seed=4)[0]
    models = [plain, better_text_tower(plain), noisier_text_tower(plain)]
    return models, save_folders(models, tmp_path_factory.mktemp("graded"))


def test_builtin_strategies_are_registered_as_plugins():
    table = get_registry().weightings
    assert {"uniform", "manual", "prompt-quality", "image-agreement"} <= set(table)
    assert table.owners["prompt-quality"] == "resegzoo.builtin.weightings"
    with pytest.raises(SchemaError, match="unknown key 'temp'"):
        table.get("prompt-quality").factory(temp=1.0)
    with pytest.raises(SchemaError, match="must be > 0"):
        table.get("prompt-quality").factory(tau=0)


def test_manual_weights_are_normalised_and_reported():
    manual = get_registry().weightings.get("manual").factory(weights=[2, 1, 1])
    from resegzoo.compose.recipe import PromptSet
    from resegzoo.compose.weighting import WeightingContext

    result = manual(WeightingContext(["a", "b", "c"], PromptSet(), load_model=None))
    assert result.weights == [0.5, 0.25, 0.25]
    assert result.scores == {"given": [2.0, 1.0, 1.0]}


def test_softmax_temperature():
    assert softmax([0.0, 0.0], 1.0) == [0.5, 0.5]
    w = softmax([0.1, 0.2], 0.05)
    assert w[1] / w[0] == pytest.approx(math.exp(2.0))
    with pytest.raises(WeightingError):
        softmax([1.0], 0.0)


def test_prompt_quality_prefers_the_better_text_tower(graded):
    models, folders = graded
    recipe = recipe_from_mapping({
        "inputs": [{"model": f, "label": label} for f, label in zip(folders, ["plain", "better", "noisier"])],
        "weighting": {"strategy": "prompt-quality", "params": {"tau": 0.1}},
        "vocabulary": {"classes": CLASSES, "templates": TEMPLATES},
    })
    result = compose(recipe, dry_run=True, progress=False)
    scores, weights = result.weighting.scores, result.weighting.weights
    # the formula, checked against an independent loop over open_clip's encode_text
    for i, model in enumerate(models):
        a, b = reference_quality(model)
        assert scores["consistency"][i] == pytest.approx(a, abs=1e-5)
        assert scores["separation"][i] == pytest.approx(b, abs=1e-5)
        assert scores["quality"][i] == pytest.approx(a - b, abs=1e-5)
    assert weights == pytest.approx(softmax(scores["quality"], 0.1))
    assert weights[1] == max(weights) and weights[1] > weights[0]
    assert sum(weights) == pytest.approx(1.0)


def _images(folder, n=2):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.zeros((80, 80, 3), np.uint8)
        img[:, :40] = (40, 120, 40)
        img[:, 40:] = (30, 60, 160)
        img = np.clip(img + rng.integers(0, 30, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"tile{i}.png")
    return folder


def test_patch_features_match_open_clip_tokens(graded):
    from resegzoo.compose.inputs import ResolvedInput
    from resegzoo.compose.weighting.models import load_scoring_model

    model, folder = graded[0][0], graded[1][0]
    item = ResolvedInput("m", folder, Path(folder) / "open_clip_model.safetensors", "0" * 64, folder,
                         model_config=tiny_model_config())
    scoring = load_scoring_model(item)
    image = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    model.visual.output_tokens = True
    try:
        with torch.no_grad():
            _, tokens = model.visual(image)  # open_clip: patch tokens after ln_post, before proj
    finally:
        model.visual.output_tokens = False
    expected = torch.nn.functional.normalize(tokens @ model.visual.proj, dim=-1)
    torch.testing.assert_close(scoring.encode_patches(image), expected, rtol=1e-5, atol=1e-6)


def test_image_agreement_through_the_cli(graded, tmp_path):
    from resegzoo.compose.weighting.image_agreement import template_agreement

    images = _images(tmp_path / "imgs")
    out = tmp_path / "out"
    result = CliRunner().invoke(build_cli(), [
        "compose", "--model", graded[1][0], "--model", graded[1][2], "--weighting", "image-agreement",
        "--images", str(images), "--classes", "; ".join(CLASSES), "--tau", "0.1", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert "agreement" in result.output
    from resegzoo.compose import read_metadata

    meta = read_metadata(out)
    agreement = meta["scores"]["agreement"]
    assert all(0.0 <= g <= 1.0 for g in agreement)
    assert meta["weights"] == pytest.approx(softmax(agreement, 0.1))
    # the agreement measure itself: identical labels agree fully, disjoint ones not at all
    patches = torch.nn.functional.normalize(torch.randn(10, 4), dim=-1)
    same = torch.stack([torch.eye(4)[:3]] * 3)  # 3 templates, 3 classes, identical text
    assert template_agreement(patches, same) == 1.0
    flipped = torch.stack([torch.eye(4)[:2], -torch.eye(4)[:2]])  # the second template inverts every score
    assert template_agreement(patches, flipped) == 0.0


def test_image_agreement_needs_images(graded, tmp_path):
    result = CliRunner().invoke(build_cli(), [
        "compose", "--model", graded[1][0], "--weighting", "image-agreement", "--dry-run",
    ])
    assert result.exit_code == 2 and "missing required key 'images'" in result.output  # a usage error


def test_image_agreement_reads_images_as_segment_does(tmp_path):
    """16-bit, 4-band GeoTIFFs are read like `resegzoo segment` reads them; junk is a clear error."""
    import numpy as np
    import pytest
    import rasterio

    from resegzoo.compose.weighting import WeightingError
    from resegzoo.compose.weighting.image_agreement import load_image
    from resegzoo.raster.reader import read_image

    path = tmp_path / "tile.tif"
    data = np.random.default_rng(0).integers(0, 4000, size=(4, 20, 30), dtype=np.uint16)
    with rasterio.open(path, "w", driver="GTiff", height=20, width=30, count=4, dtype="uint16") as dst:
        dst.write(data)
    x = load_image(path, 20, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    assert x.shape == (3, 20, 20)
    rgb, _, raster = read_image(path)
    assert raster.stretch is not None  # 16-bit data was stretched to 8 bits first
    assert float(x.max()) <= 1.0 and abs(float(x.mean()) - rgb.mean() / 255.0) < 0.02

    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(WeightingError, match="cannot read image"):
        load_image(junk, 20, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
