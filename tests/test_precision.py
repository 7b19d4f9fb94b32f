"""Mixed precision: bf16 agrees with fp32 on the CPU, fp16 on a CPU is refused, text and softmax
stay fp32, and no tensor the pipeline makes lands on the CPU when the model lives elsewhere."""
from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image
from torch.overrides import TorchFunctionMode

from resegzoo.api import Segmenter, Vocabulary, load_recipe
from resegzoo.cli import build_cli
from resegzoo.masks.superpixels import build_slic
from resegzoo.runtime.precision import PrecisionError, autocast_dtype
from resegzoo.methods.clip.encoder import MaskedClipEncoder
from resegzoo.methods.clip.text import TextEmbeddings
from resegzoo.testing import make_tiny_clip

VOCAB = Vocabulary.parse("building; road; tree; water")


def smooth_image(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    rgb = np.stack([np.sin(3 * x + 1) * 0.5 + 0.5, np.cos(2 * y) * 0.5 + 0.5, x * y], axis=-1)
    return (rgb * 255).astype(np.uint8)


def fp32_and_bf16_logits(model, image, window):
    tokenizer = open_clip.get_tokenizer("ViT-B-16")
    out = {}
    for precision in ("fp32", "bf16"):
        seg = Segmenter(MaskedClipEncoder(model, tokenizer), build_slic(),
                        load_recipe(None, window=window, precision=precision))
        out[precision], _ = seg.logits(image, VOCAB)
        assert out[precision].dtype == torch.float32  # stitched logits stay fp32 under any precision
    return out["fp32"], out["bf16"]


def check_agreement(fp32, bf16, label, at_least):
    agree = (fp32.argmax(0) == bf16.argmax(0)).float().mean().item()
    delta = (fp32 - bf16).abs().max().item()
    top2 = fp32.topk(2, dim=0).values
    margin = top2[0] - top2[1]
    flipped = fp32.argmax(0) != bf16.argmax(0)
    print(f"{label}: label agreement {agree:.4f}, max |d logit| {delta:.2e}")
    assert agree >= at_least, (label, agree, delta)
    assert 0 < delta < 5e-3  # bf16 really ran (some difference), and it is small
    # a label may only flip where fp32 itself is nearly tied between its two best classes
    assert not flipped.any() or margin[flipped].max().item() <= 2 * delta


def test_bf16_agrees_with_fp32_on_a_tiny_clip():
    """The tiny random CLIP barely separates classes (median top-2 cosine margin ~1.5e-3, under
    bf16's ~0.4 % rounding of each product), so 1.4 % of its pixels are near-ties that may flip
    (measured: 98.6 %); the margin check below shows that only near-ties flip."""
    fp32, bf16 = fp32_and_bf16_logits(make_tiny_clip(), smooth_image(96, 128), 64)
    check_agreement(fp32, bf16, "tiny CLIP", at_least=0.98)


def test_bf16_agrees_with_fp32_on_a_random_vit_b16():
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16", pretrained=None).eval()
    fp32, bf16 = fp32_and_bf16_logits(model, smooth_image(224, 224), 224)
    check_agreement(fp32, bf16, "ViT-B-16 (random)", at_least=0.99)


def test_fp16_on_the_cpu_is_refused_with_a_clear_message(tmp_path):
    with pytest.raises(PrecisionError, match="fp16 is not supported on the CPU"):
        autocast_dtype("fp16", "cpu")
    assert autocast_dtype("fp16", "cuda") is torch.float16 and autocast_dtype("bf16", "cpu") is torch.bfloat16
    tokenizer = open_clip.get_tokenizer("ViT-B-16")
    with pytest.raises(PrecisionError):
        Segmenter(MaskedClipEncoder(make_tiny_clip(), tokenizer), None, load_recipe(None, precision="fp16"))
    image = tmp_path / "a.png"
    Image.fromarray(smooth_image(40, 40)).save(image)
    out = tmp_path / "out"
    result = CliRunner().invoke(build_cli(), ["segment", str(image), "--classes", "red; blue", "--model", "oracle",
                                              "--masks", "none", "--precision", "fp16", "--out", str(out)])
    assert result.exit_code != 0
    assert "fp16 is not supported on the CPU" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_bf16_runs_attention_in_bf16_while_text_and_softmax_stay_fp32(monkeypatch):
    seen = []
    sdpa = F.scaled_dot_product_attention

    def recording_sdpa(q, k, v, *args, **kwargs):
        seen.append((q.dtype, k.dtype, v.dtype))
        return sdpa(q, k, v, *args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording_sdpa)
    model = make_tiny_clip()
    global_out = []  # the 2 global blocks run open_clip's own nn.MultiheadAttention
    for blk in model.visual.transformer.resblocks[:2]:
        blk.attn.register_forward_hook(lambda mod, inp, out: global_out.append(out[0].dtype))
    seg = Segmenter(MaskedClipEncoder(model, open_clip.get_tokenizer("ViT-B-16")), build_slic(),
                    load_recipe(None, window=64, precision="bf16"))
    assert seg.method.text_embeddings(VOCAB).names.dtype == torch.float32
    assert seen and all(dtypes == (torch.float32,) * 3 for dtypes in seen)  # the text tower: fp32
    seen.clear()
    result = seg.segment(smooth_image(64, 64), VOCAB)
    assert len(seen) == 6  # the 6 masked blocks of the default schedule, in bf16
    assert all(dtypes == (torch.bfloat16,) * 3 for dtypes in seen)
    assert global_out == [torch.bfloat16, torch.bfloat16]
    assert result.probs.dtype == np.float32
    np.testing.assert_allclose(result.probs.sum(axis=0), 1.0, atol=1e-5)


class DeviceRecorder(TorchFunctionMode):
    """Records every torch function whose result holds a tensor on the CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.on_cpu: list[str] = []
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.calls += 1
        results = out if isinstance(out, (tuple, list)) else (out,)
        if any(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in results):
            self.on_cpu.append(getattr(func, "__name__", str(func)))
        return out


def test_no_tensor_is_made_on_the_cpu_when_the_model_is_on_another_device():
    """The model on the 'meta' device stands in for CUDA: every tensor the segmenter makes for a
    batch of windows (normalisation constants, token ids, attention masks, positions, text
    scores, upsampling) must be made there; only numpy data enters through the CPU, moved at once."""
    model = make_tiny_clip().to("meta")
    seg = Segmenter(MaskedClipEncoder(model, open_clip.get_tokenizer("ViT-B-16")), build_slic(),
                    load_recipe(None, window=64, stride=32))  # meta has no autocast: fp32
    assert seg.device.type == "meta"
    text = TextEmbeddings(torch.randn(4, 32, device="meta"), torch.arange(4, device="meta"), 4)
    padded = smooth_image(64, 96)
    wins = [(0, 0, 64, 64), (0, 32, 64, 96)]
    maps = seg._window_masks(padded, wins)
    recorder = DeviceRecorder()
    with recorder:
        crops = np.stack([padded[y0:y1, x0:x1] for (y0, x0, y1, x1) in wins])
        logits = seg.method.window_logits(crops, maps, text, lam=-0.3, per_name=False)
    assert logits.device.type == "meta" and logits.shape == (2, 4, 64, 64)
    # torch.from_numpy (no tensor argument) is not seen; its CPU result's first use would be
    assert recorder.calls > 100 and recorder.on_cpu == [], recorder.on_cpu


def test_threads_follow_the_option_then_omp_num_threads(monkeypatch):
    from resegzoo.runtime.precision import set_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert set_threads(None) == 1 == torch.get_num_threads()
        assert set_threads(2) == 2 == torch.get_num_threads()  # the option wins over the variable
        with pytest.raises(PrecisionError):
            set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_sam_runs_its_encoder_and_decoder_under_bf16_and_refuses_fp16_on_the_cpu():
    from resegzoo.masks.sam import SamLevel, SamMaskGenerator
    from resegzoo.masks.testing import make_tiny_sam

    sam = make_tiny_sam(seed=1)
    dtypes = []
    # products inside the ViT run in bf16 (its final LayerNorm2d returns fp32 by type promotion)
    sam.image_encoder.blocks[0].mlp.register_forward_hook(lambda mod, inp, out: dtypes.append(out.dtype))
    sam.mask_decoder.register_forward_hook(lambda mod, inp, out: dtypes.append(out[0].dtype))
    levels = [SamLevel(points_per_side=3, pred_iou_thresh=0.0, stability_score_thresh=0.0, min_mask_region_area=0,
                       crop_n_layers=0)]
    image = smooth_image(96, 128)
    bf16 = SamMaskGenerator(sam, levels, precision="bf16")(image)
    assert dtypes and set(dtypes) == {torch.bfloat16}
    dtypes.clear()
    fp32 = SamMaskGenerator(sam, levels)(image)
    assert set(dtypes) == {torch.float32}
    assert bf16.shape == fp32.shape == (1, 96, 128) and len(np.unique(bf16)) > 1
    with pytest.raises(PrecisionError):
        SamMaskGenerator(sam, levels, precision="fp16")


def test_eval_precision_is_part_of_the_run_settings():
    from resegzoo.cli.eval import with_precision
    from resegzoo.eval.runner import RunSpec

    run = RunSpec(label="x", recipe=load_recipe(None), model="oracle", masks="none")
    bf16 = with_precision(run, "bf16")
    assert bf16.recipe.inference.precision == "bf16" and run.recipe.inference.precision == "fp32"
    assert bf16.recipe.to_dict() != run.recipe.to_dict()  # the run key hashes the recipe: another folder
