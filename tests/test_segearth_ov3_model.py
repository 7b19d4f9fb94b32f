"""SegEarth-OV3's scorer on transformers' Sam3Model: the fusion rule, SAM 3's geometry token,
batching and the text cache, the processor's resize, and the offline tokenizer."""
from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

from resegzoo.methods.segearth_ov3.fusion import FusionSwitches, fuse
from resegzoo.methods.segearth_ov3.model import load_scorer
from resegzoo.methods.segearth_ov3.tokenizer import clip_bpe_vocab_and_merges, open_clip_tokenize

NAMES = ["building", "road", "tree", "water", "car", "low vegetation", "bare soil", "river"]


@pytest.fixture(scope="module")
def scorer(tiny_sam3_dir):
    return load_scorer(tiny_sam3_dir)


@pytest.fixture(scope="module")
def pixels():
    return torch.randint(0, 256, (3, 40, 52), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))


def transcribed_fusion(raw, size, thr, instances=True, semantic=True, presence=True):
    """The rule written out name by name, instance by instance, as segearthov3_segmentor.py and
    Sam3Processor._forward_grounding do it."""
    out = torch.zeros((len(raw.pred_logits),) + size)
    for n in range(len(raw.pred_logits)):
        p = torch.sigmoid(raw.presence_logits[n])
        seg = torch.zeros(size)
        if instances:
            for q in range(raw.pred_logits.shape[1]):
                score = torch.sigmoid(raw.pred_logits[n, q]) * p
                if score > thr:
                    mask = F.interpolate(raw.pred_masks[n, q][None, None], size=size, mode="bilinear",
                                         align_corners=False)[0, 0].sigmoid()
                    seg = torch.maximum(seg, mask * score)
        if semantic:
            sem = F.interpolate(raw.semantic_seg[n][None], size=size, mode="bilinear",
                                align_corners=False)[0, 0].sigmoid()
            seg = torch.maximum(seg, sem)
        out[n] = seg * p if presence else seg
    return out


def _median_threshold(raw):
    scores = raw.pred_logits.sigmoid() * raw.presence_logits.sigmoid()[:, None]
    return float(scores.median())


@pytest.mark.parametrize("instances,semantic,presence", [
    (True, True, True), (True, False, True), (False, True, True), (True, True, False), (True, False, False)])
def test_fusion_equals_the_formulas_on_raw_outputs(scorer, pixels, instances, semantic, presence):
    raw = scorer.raw_outputs(pixels, NAMES)
    thr = _median_threshold(raw)  # some instances kept, some not
    scores = raw.pred_logits.sigmoid() * raw.presence_logits.sigmoid()[:, None]
    assert 0 < int((scores > thr).sum()) < scores.numel()
    switches = FusionSwitches(confidence_threshold=thr, instances=instances, semantic=semantic, presence=presence)
    expected = transcribed_fusion(raw, (40, 52), thr, instances, semantic, presence)
    assert torch.allclose(fuse(raw, (40, 52), switches), expected, atol=1e-6)
    # the scorer's fast path (masks made for kept queries only) gives the same
    assert torch.allclose(scorer.score_window(pixels, NAMES, switches), expected, atol=1e-5)


def test_instances_above_the_threshold_only(scorer, pixels):
    raw = scorer.raw_outputs(pixels, NAMES)
    only_instances = FusionSwitches(confidence_threshold=1.0, semantic=False)
    assert fuse(raw, (40, 52), only_instances).abs().max() == 0  # nothing scores above 1
    low = FusionSwitches(confidence_threshold=0.0, semantic=False, presence=False)
    assert fuse(raw, (40, 52), low).min() > 0


def test_without_the_geometry_token_the_outputs_are_transformers_forward(scorer, pixels):
    """resegzoo's split path is Sam3Model.forward's arithmetic; only the token differs."""
    try:
        scorer.geometry_token = False
        raw = scorer.raw_outputs(pixels, NAMES)
    finally:
        scorer.geometry_token = True
    ids, mask = scorer.tokenize(NAMES)
    with torch.inference_mode():
        out = scorer.model(pixel_values=scorer.pixel_values(pixels).expand(len(NAMES), -1, -1, -1),
                           input_ids=ids, attention_mask=mask)
    assert torch.allclose(raw.pred_logits, out.pred_logits, atol=1e-5)
    assert torch.allclose(raw.presence_logits, out.presence_logits[:, 0], atol=1e-5)
    assert torch.allclose(raw.pred_masks, out.pred_masks, atol=1e-5)
    assert torch.allclose(raw.semantic_seg, out.semantic_seg, atol=1e-5)
    with_token = scorer.raw_outputs(pixels, NAMES)
    assert (with_token.pred_logits - raw.pred_logits).abs().max() > 1e-4  # the token matters


def _official_empty_prompt_token(geo, feats, pos):
    """SAM 3's SequenceGeometryEncoder on the empty prompt, written out: its CLS embedding,
    final_proj + norm, then pre-norm layers (self-attention over the one token, cross-attention
    to the image with the position encoding on the keys, MLP), then encode_norm."""
    x = geo.prompt_layer_norm(geo.final_proj(geo.cls_embed.weight))  # (1, C)
    mem = feats.flatten(2)[0].T  # (HW, C)
    key_in = mem + pos.flatten(2)[0].T
    for lay in geo.layers:
        a = lay.self_attn
        x = x + a.o_proj(a.v_proj(lay.layer_norm1(x)))  # softmax over a single key is 1
        c = lay.cross_attn
        h = c.config.num_attention_heads
        q = c.q_proj(lay.layer_norm2(x)).view(1, h, -1).transpose(0, 1)
        k = c.k_proj(key_in).view(len(mem), h, -1).transpose(0, 1)
        v = c.v_proj(mem).view(len(mem), h, -1).transpose(0, 1)
        w = torch.softmax(q @ k.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1)
        x = x + c.o_proj((w @ v).transpose(0, 1).reshape(1, -1))
        x = x + lay.mlp(lay.layer_norm3(x))
    return geo.output_layer_norm(x)


def test_geometry_token_is_sam3s_empty_prompt_token(scorer, pixels):
    with torch.inference_mode():
        enc = scorer.encode_image(scorer.pixel_values(pixels))[0]
        expected = _official_empty_prompt_token(scorer.model.geometry_encoder, enc.fpn[-1], enc.pos[-1])
    assert enc.geometry.shape == (1, 1, expected.shape[-1])
    assert torch.allclose(enc.geometry[0], expected, atol=1e-5)


def test_names_batched_and_text_cached_equal_one_name_at_a_time(scorer, pixels, monkeypatch):
    switches = FusionSwitches(confidence_threshold=_median_threshold(scorer.raw_outputs(pixels, NAMES)))
    batched = scorer.score_window(pixels, NAMES, switches)
    calls = []
    real = scorer.model.get_text_features
    monkeypatch.setattr(scorer.model, "get_text_features", lambda **kw: calls.append(1) or real(**kw))
    scorer.score_window(pixels, NAMES, switches)
    assert calls == []  # every name's embedding came from the cache
    one_by_one = torch.stack([load_scorer(scorer_folder(scorer)).score_window(pixels, [n], switches)[0]
                              for n in NAMES])
    assert torch.allclose(batched, one_by_one, atol=1e-5)


def scorer_folder(scorer):
    return scorer.model.config._name_or_path


def test_the_processors_resize_on_its_float_path(scorer, pixels, monkeypatch):
    """Sam3Processor's v2 transform, forced onto the float path it takes on a GPU."""
    from torchvision.transforms import v2
    from torchvision.transforms.v2.functional import _geometry

    monkeypatch.setattr(_geometry, "_do_native_uint8_resize_on_cpu", lambda interpolation: False)
    r = scorer.resolution
    transform = v2.Compose([v2.ToDtype(torch.uint8, scale=True), v2.Resize(size=(r, r)),
                            v2.ToDtype(torch.float32, scale=True),
                            v2.Normalize(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])])
    assert torch.allclose(scorer.pixel_values(pixels)[0], transform(pixels), atol=1e-6)


def test_open_clip_bpe_ids_equal_transformers_clip_tokenizer():
    from transformers import CLIPTokenizer

    vocab, merges = clip_bpe_vocab_and_merges()
    hf = CLIPTokenizer(vocab=vocab, merges=merges)
    names = ["building", "road, street", "Low Vegetation", "store tank", "ground track field", "bare  soil",
             "roof-top", "swimming pool", "café", "water body 2", "clutter/background",
             " ".join(["very long name"] * 12)]
    ids, mask = open_clip_tokenize(names)
    out = hf(names, padding="max_length", max_length=32, truncation=True, return_tensors="pt")
    assert torch.equal(ids, out["input_ids"])
    assert torch.equal(mask, out["attention_mask"])


def test_tiny_sam3_is_small_and_quick(tiny_sam3_dir):
    from resegzoo.testing import make_tiny_sam3

    size = sum(f.stat().st_size for f in tiny_sam3_dir.iterdir())
    assert size < 10 * 2**20
    make_tiny_sam3(seed=1)  # imports warm
    # CPU time of this process: the wall clock on a shared machine measures the neighbours too
    t = time.process_time()
    make_tiny_sam3(seed=2)
    assert time.process_time() - t < 1.0


def test_bf16_runs_on_the_cpu_close_to_fp32(tiny_sam3_dir, pixels):
    fp32 = load_scorer(tiny_sam3_dir).score_window(pixels, NAMES[:3], FusionSwitches(confidence_threshold=0.9))
    bf16 = load_scorer(tiny_sam3_dir, precision="bf16").score_window(pixels, NAMES[:3],
                                                                     FusionSwitches(confidence_threshold=0.9))
    assert bf16.dtype == torch.float32 and not torch.equal(bf16, fp32)
    assert (bf16 - fp32).abs().max() < 0.05


@pytest.mark.parametrize("sizes", [[(16, 16), (8, 8), (4, 4)], [(20, 26), (10, 13), (5, 7)], [(15, 15), (8, 8), (4, 4)]])
def test_pixel_decoder_for_many_names_equals_transformers(sizes):
    """The image's part of each stage made once and the upsampled convolution as a transposed one
    (resegzoo.methods.segearth_ov3.pixel_decoder) against transformers' _embed_pixels, at SAM 3's
    full width (256 channels), for 2 x steps and for one that is not (the module's own steps)."""
    from transformers import Sam3Config
    from transformers.models.sam3.modeling_sam3 import Sam3MaskDecoder

    from resegzoo.methods.segearth_ov3.pixel_decoder import lateral_features, pixel_embed

    torch.manual_seed(0)
    decoder = Sam3MaskDecoder(Sam3Config().mask_decoder_config).eval()
    c, n = decoder.config.hidden_size, 3
    fpn = [torch.randn(1, c, h, w) for h, w in sizes]  # SAM 3's kept levels, finest first
    h, w = sizes[-1]  # the coarsest level is replaced by the encoder's image tokens
    states = torch.randn(n, h * w + 5, c)  # the image tokens first, then the prompt's
    with torch.inference_mode():
        expected = decoder._embed_pixels(backbone_features=[f.expand(n, -1, -1, -1) for f in fpn],
                                         encoder_hidden_states=states)
        coarsest = states[:, :h * w].transpose(1, 2).reshape(n, c, h, w)
        got = pixel_embed(decoder.pixel_decoder, coarsest, lateral_features(decoder.pixel_decoder, fpn))
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
