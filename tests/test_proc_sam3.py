"""proc-sam3: ProC-SAM3's fusion against a transcription of its code on SAM 3's raw outputs, and
the method through the shared pipeline with prompt pools: segment (GeoTIFF with nodata, --cog
--vector), eval with the ablation recipes, --engine ray, bf16. The tiny random SAM 3 of
resegzoo.testing serves all."""
from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F
from affine import Affine
from click.testing import CliRunner

from resegzoo.cli import build_cli
from resegzoo.methods.proc_sam3.fusion import ProcSwitches, fuse
from resegzoo.methods.segearth_ov3.model import load_scorer

NAMES = ["building", "house", "road", "street", "tree", "water", "car", "bare soil"]
TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5800000.0)


def cli(*args: str):
    return CliRunner().invoke(build_cli(), list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def scorer(tiny_sam3_dir):
    return load_scorer(tiny_sam3_dir)


@pytest.fixture(scope="module")
def contested_sam3_dir(tmp_path_factory):
    """The tiny random SAM 3 with biases moved so the instance head beats the semantic head in
    places (presence near 1, instance scores above 0.5, a weaker semantic head, sharper masks):
    with the tiny model as it is the semantic head wins everywhere and the residual fusion gives
    the max rule's labels."""
    from resegzoo.testing import make_tiny_sam3

    model = make_tiny_sam3(seed=0)
    with torch.no_grad():
        model.mask_decoder.semantic_projection.bias -= 2.0
        model.detr_decoder.presence_head.layer3.bias += 3.0
        direction = torch.randn(model.dot_product_scoring.query_proj.bias.shape, generator=torch.Generator().manual_seed(0))
        direction /= direction.norm()
        model.dot_product_scoring.query_proj.bias += 4 * direction
        model.dot_product_scoring.text_proj.bias += 4 * direction
        model.mask_decoder.instance_projection.weight *= 30
    folder = tmp_path_factory.mktemp("contested-sam3") / "sam3"
    model.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def pixels():
    return torch.randint(0, 256, (3, 40, 52), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))


def transcribed(raw, size, thr, instances=True, semantic=True, presence=True, residual=True):
    """ProC-SAM3's reducer (core/result_reducer.py) and PGRF (sam3_segmentor_cached.py) written
    out prompt by prompt, query by query."""
    eps = 1e-4
    out = torch.zeros((len(raw.pred_logits),) + size)
    for n in range(len(raw.pred_logits)):
        rho = torch.sigmoid(raw.presence_logits[n])
        scores = torch.sigmoid(raw.pred_logits[n]) * rho
        inst, sem, k = torch.zeros(size), torch.zeros(size), torch.tensor(0.0)
        if instances:
            k = scores.max()  # max_instance_scores: every query, no threshold
            for q in range(len(scores)):
                if scores[q] > thr:
                    mask = F.interpolate(raw.pred_masks[n, q][None, None], size=size, mode="bilinear",
                                         align_corners=False)[0, 0].sigmoid()
                    inst = torch.maximum(inst, mask * scores[q])
        if semantic:
            sem = F.interpolate(raw.semantic_seg[n][None], size=size, mode="bilinear",
                                align_corners=False)[0, 0].sigmoid()
        base = torch.maximum(sem, inst) if instances and semantic else (sem if semantic else inst)
        if residual:
            agreement = 1.0 - (sem - base).abs()
            gate = (rho * k * agreement.clamp(0, 1)).clamp(0, 1)
            fused = (sem + gate * (base - sem).clamp(min=0)).clamp(eps, 1 - eps)
        else:
            fused = base
        out[n] = fused * rho if presence else fused
    return out


def contested(raw):
    """The same raw outputs with the instance head made stronger and the semantic head weaker, so
    instances beat the semantic map in places (on random weights the semantic head wins
    everywhere, and the residual gate would never open)."""
    from resegzoo.methods.segearth_ov3.model import RawOutputs

    return RawOutputs(raw.pred_logits + 2.0, raw.presence_logits + 1.0, raw.semantic_seg - 1.5, raw.pred_masks * 4.0)


@pytest.mark.parametrize("residual,instances,semantic,presence", [
    (True, True, True, True), (False, True, True, True), (True, False, True, True), (True, True, False, True),
    (True, True, True, False), (False, True, False, True)])
def test_fusion_equals_the_transcription_on_raw_outputs(scorer, pixels, residual, instances, semantic, presence):
    raw = scorer.raw_outputs(pixels, NAMES)
    for outputs in (raw, contested(raw)):
        scores = outputs.pred_logits.sigmoid() * outputs.presence_logits.sigmoid()[:, None]
        thr = float(scores.median())  # some instances kept, some not
        assert 0 < int((scores > thr).sum()) < scores.numel()
        switches = ProcSwitches(confidence_threshold=thr, instances=instances, semantic=semantic, presence=presence,
                                residual=residual)
        expected = transcribed(outputs, (40, 52), thr, instances, semantic, presence, residual)
        torch.testing.assert_close(fuse(outputs, (40, 52), switches), expected, atol=1e-6, rtol=0)
        if outputs is raw:
            # the scorer's path (prompts batched, masks made for kept queries only) gives the same
            torch.testing.assert_close(scorer.score_window(pixels, NAMES, switches), expected, atol=1e-5, rtol=0)
    if residual and instances and semantic:
        # where instances beat the semantic map the gate holds them back: off SegEarth-OV3's max rule
        outputs = contested(raw)
        thr = float((outputs.pred_logits.sigmoid() * outputs.presence_logits.sigmoid()[:, None]).median())
        pgrf = fuse(outputs, (40, 52), ProcSwitches(confidence_threshold=thr, presence=presence))
        off = transcribed(outputs, (40, 52), thr, presence=presence, residual=False)
        assert (off - pgrf).max() > 0.05 and (pgrf - off).max() < 1e-6


def test_residual_off_is_segearth_ov3s_rule(scorer, pixels):
    from resegzoo.methods.segearth_ov3.fusion import FusionSwitches, fuse as segearth_fuse

    raw = scorer.raw_outputs(pixels, NAMES)
    for thr in (0.3, 0.6):
        ours = fuse(raw, (40, 52), ProcSwitches(confidence_threshold=thr, residual=False))
        torch.testing.assert_close(ours, segearth_fuse(raw, (40, 52), FusionSwitches(confidence_threshold=thr)))


def _image(h=40, w=52, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.kron(base, np.ones((10, 11, 1), dtype=np.uint8))[:h, :w])


@pytest.fixture
def whole_image(tmp_path):
    """method-proc-sam3 with the whole image as one window (ProC-SAM3's protocol)."""
    path = tmp_path / "whole.yaml"
    path.write_text("base: method-proc-sam3\ninference: {window_placement: image, background_threshold: 0.25}\n")
    return path


def test_segment_with_a_pool_on_a_geotiff_with_nodata(tmp_path, tiny_sam3_dir, whole_image):
    from rio_cogeo.cogeo import cog_validate

    from resegzoo.raster.reader import NODATA_LABEL, fill_invalid

    image = _image()
    valid = np.ones(image.shape[:2], bool)
    valid[:, :9] = False
    src_pixels = image.copy()
    src_pixels[~valid] = 0
    src = tmp_path / "scene.tif"
    with rasterio.open(src, "w", driver="GTiff", height=40, width=52, count=3, dtype="uint8", crs="EPSG:32632",
                       transform=TRANSFORM, nodata=0) as dst:
        dst.write(np.moveaxis(src_pixels, -1, 0))
    pool = tmp_path / "pool.txt"
    pool.write_text("building, house, roof\nroad, street\n")
    out = tmp_path / "out"
    result = cli("segment", str(src), "--recipe", str(whole_image), "--model", f"local-dir:{tiny_sam3_dir}",
                 "--classes", "building; road; tree", "--prompt-pool", str(pool), "--out", str(out), "--cog", "--vector")
    assert result.exit_code == 0, result.output
    cog = out / "scene.labels.tif"
    assert cog_validate(str(cog))[0]
    with rasterio.open(cog) as dst:
        labels = dst.read(1).astype(np.int32)
        assert dst.transform == TRANSFORM
    assert (labels[~valid] == NODATA_LABEL).all()
    # what it must be: ProC-SAM3's scores of every prompt, each class's best prompt, argmax, background
    names = ["building", "house", "roof", "road", "street", "tree"]
    scores = load_scorer(tiny_sam3_dir).score_window(
        torch.from_numpy(fill_invalid(src_pixels, valid)).permute(2, 0, 1), names, ProcSwitches())
    classes = torch.stack([scores[0:3].amax(0), scores[3:5].amax(0), scores[5]])
    top, expected = classes.max(0)
    expected = np.where(top.numpy() < 0.25, 3, expected.numpy())
    np.testing.assert_array_equal(labels[valid], expected[valid])
    assert len(np.unique(labels[valid])) > 1
    side = json.loads((out / "scene.json").read_text())
    assert side["classes"] == [["building", "house", "roof"], ["road", "street"], ["tree"], ["background"]]
    assert side["recipe"]["method"]["name"] == "proc-sam3" and side["settings"]["residual"] is True
    assert (out / "scene.regions.gpkg").stat().st_size > 0


def test_eval_generic_with_the_ablation_recipes(tmp_path, contested_sam3_dir):
    from resegzoo.eval.datasets.generic import load_classes_file
    from resegzoo.eval.synthetic import write_dataset
    from resegzoo_oracle import color_of

    root, out = tmp_path / "ds", tmp_path / "out"
    root.mkdir()
    # class names that are keys of the shipped pool (a generic dataset has no pool of its own)
    (root / "classes.yaml").write_text("classes:\n  - building\n  - road\n  - water\n")
    write_dataset(load_classes_file(root / "classes.yaml"), "folders", root, color_of, images=2, height=40, width=52)
    recipes = ["method-proc-sam3", "method-proc-sam3-no-pools", "method-proc-sam3-no-residual",
               "method-proc-sam3-no-pools-no-residual"]
    args = ["eval", "--dataset", "generic", "--root", str(root), "--model", f"local-dir:{contested_sam3_dir}",
            "--out", str(out), "--quiet"]
    for r in recipes:
        args += ["--recipe", r]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert len(runs) == 4
    assert [run["recipe"]["text"]["prompt_pool"] for run in runs] == ["dataset", "none", "dataset", "none"]
    assert [run["recipe"]["method"]["settings"].get("residual", True) for run in runs] == [True, True, False, False]
    # each switch changes what is predicted (each row its own confusion matrix)
    assert len({json.dumps(run["confusion"]) for run in runs}) == 4


def test_segment_on_ray_equals_local(tmp_path, tiny_sam3_dir, whole_image):
    import ray

    from PIL import Image

    for i in range(2):
        Image.fromarray(_image(seed=10 + i)).save(tmp_path / f"im{i}.png")
    common = ["--recipe", str(whole_image), "--model", f"local-dir:{tiny_sam3_dir}", "--classes", "building; road; tree",
              "--prompt-pool", "remote-sensing"]
    # one torch thread, as the actor has (its one CPU): the same summation order, so the random
    # model's near-ties cannot flip a pixel
    threads = torch.get_num_threads()
    try:
        local = cli("segment", str(tmp_path / "im0.png"), str(tmp_path / "im1.png"), *common, "--threads", "1",
                    "--out", str(tmp_path / "l"))
    finally:
        torch.set_num_threads(threads)
    assert local.exit_code == 0, local.output
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = cli("segment", str(tmp_path / "im0.png"), str(tmp_path / "im1.png"), *common,
                     "--out", str(tmp_path / "r"), "--engine", "ray", "--actors", "1")
    finally:
        ray.shutdown()
    assert on_ray.exit_code == 0, on_ray.output
    for i in range(2):
        a = np.asarray(Image.open(tmp_path / "l" / f"im{i}.labels.png"))
        b = np.asarray(Image.open(tmp_path / "r" / f"im{i}.labels.png"))
        np.testing.assert_array_equal(a, b)
        side = json.loads((tmp_path / "r" / f"im{i}.json").read_text())
        assert side["recipe"]["method"]["name"] == "proc-sam3" and len(side["classes"][0]) > 1


def test_bf16_runs_the_decoders_in_float32(tiny_sam3_dir, pixels):
    """ProC-SAM3's protocol: the image encoder under bf16 autocast, the rest in float32."""
    from resegzoo.methods.base import MethodContext
    from resegzoo.methods.proc_sam3.method import ProcSam3Settings, build
    from resegzoo.segmenter.recipe import SegmentRecipe

    context = MethodContext(recipe=SegmentRecipe(), model=f"local-dir:{tiny_sam3_dir}", settings=ProcSam3Settings(),
                            precision="bf16")
    method = build(context)
    seen = []
    hook = method.scorer.model.detr_decoder.register_forward_hook(lambda m, i, o: seen.append(o.intermediate_hidden_states.dtype))
    try:
        with torch.inference_mode():
            enc = method.scorer._decoder_inputs(method.scorer.encode_image(method.scorer.pixel_values(pixels)))
        assert all(f.dtype == torch.float32 for f in enc[0].fpn)
        scores = method.window_scores(pixels.permute(1, 2, 0)[None].numpy(), _vocab(), per_name=True)
    finally:
        hook.remove()
    assert seen and all(dtype == torch.float32 for dtype in seen) and scores.dtype == torch.float32


def _vocab():
    from resegzoo.vocabulary import Vocabulary

    return Vocabulary([["building", "house"], ["road"]])


def test_both_heads_off_is_refused_before_any_work(tmp_path, tiny_sam3_dir):
    from PIL import Image

    Image.fromarray(_image()).save(tmp_path / "a.png")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("base: method-proc-sam3\nmethod: {name: proc-sam3, settings: {instances: false, semantic: false}}\n")
    result = cli("segment", str(tmp_path / "a.png"), "--recipe", str(recipe), "--model", f"local-dir:{tiny_sam3_dir}",
                 "--classes", "building; road", "--out", str(tmp_path / "o"))
    assert result.exit_code in (1, 2)
    assert "both be off" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o" / "a.labels.png").exists()
