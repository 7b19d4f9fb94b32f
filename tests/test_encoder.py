"""The masked-attention encoder against open_clip's own forward, and its masking invariances."""
from __future__ import annotations

import open_clip
import pytest
import torch
import torch.nn.functional as F

from resegzoo.methods.clip.encoder import MaskedClipEncoder, UnsupportedModelError
from resegzoo.testing import make_tiny_clip, tiny_model_config

DEPTH = 8  # tiny model: 64 px images, 16 px patches -> 4 x 4 grid


@pytest.fixture(scope="module")
def model():
    return make_tiny_clip(seed=3)


def _encoder(model, rules, **kw):
    return MaskedClipEncoder(model, open_clip.tokenize, rules=rules, **kw)


def _images(seed=0, n=2):
    return torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def test_all_global_reproduces_open_clip(model):
    enc = _encoder(model, ["global"] * DEPTH)
    x = _images()
    patches, cls = enc.encode_dense(x, None, return_cls=True)
    assert patches.shape == (2, 4, 4, 32)
    # open_clip's own forward: tokens after ln_post, pooled CLS after proj
    inter = model.visual.forward_intermediates(x, indices=1, normalize_intermediates=True, output_fmt="NLC")
    ref_tokens = F.normalize(inter["image_intermediates"][-1] @ model.visual.proj, dim=-1)
    torch.testing.assert_close(patches.reshape(2, 16, -1), ref_tokens, atol=1e-5, rtol=0)
    torch.testing.assert_close(cls, model.encode_image(x, normalize=True), atol=1e-5, rtol=0)


def test_text_matches_open_clip(model):
    enc = _encoder(model, None)
    texts = ["a road", "aerial photo of a building"]
    ref = model.encode_text(open_clip.tokenize(texts), normalize=True)
    torch.testing.assert_close(enc.encode_text(texts), ref, atol=1e-6, rtol=0)


def _two_segment_ids(n=1):
    """Token ids on the 4 x 4 grid: left half segment 1, right half segment 2."""
    ids = torch.ones(n, 1, 4, 4, dtype=torch.int64)
    ids[..., 2:] = 2
    return ids


def test_segment_masking_isolates_segments(model):
    enc = _encoder(model, ["segment:0"] * DEPTH)
    ids = _two_segment_ids()
    x = _images(1, 1)
    y = x.clone()
    y[..., :, :32] += torch.randn(1, 3, 64, 32)  # change pixels of the left segment only
    a, b = enc.encode_dense(x, ids), enc.encode_dense(y, ids)
    torch.testing.assert_close(a[:, :, 2:], b[:, :, 2:], atol=1e-6, rtol=0)  # right: unchanged
    assert (a[:, :, :2] - b[:, :, :2]).abs().max() > 1e-2  # left: changed (the check can fail)
    # without masks the right half does change: the invariance is the masks' doing
    plain = _encoder(model, ["global"] * DEPTH)
    assert (plain.encode_dense(x)[:, :, 2:] - plain.encode_dense(y)[:, :, 2:]).abs().max() > 1e-2


def test_neighbor_zero_token_depends_on_itself_only(model):
    enc = _encoder(model, ["neighbor:0"] * DEPTH)
    x = _images(2, 1)
    y = x.clone()
    y[..., 16:32, 32:48] += 1.0  # patch (1, 2)
    diff = (enc.encode_dense(x) - enc.encode_dense(y)).abs().amax(dim=-1)[0]
    changed = diff > 1e-6
    assert changed[1, 2] and changed.sum() == 1
    # the CLS token attends only to itself, so it does not change either
    _, c1 = enc.encode_dense(x, return_cls=True)
    _, c2 = enc.encode_dense(y, return_cls=True)
    torch.testing.assert_close(c1, c2, atol=1e-6, rtol=0)


class _FloatMaskEncoder(MaskedClipEncoder):
    """The reference code's bug: the boolean mask turned into a float 0/1 additive mask."""

    @staticmethod
    def _attention(blk, h, allowed, segearth):
        float_mask = None if allowed is None else (~allowed).float()
        return MaskedClipEncoder._attention(blk, h, float_mask, segearth)


def test_float_zero_one_mask_trap_is_detected(model):
    # the same invariance check as above fails for an encoder with the float-mask bug
    ids = _two_segment_ids()
    x = _images(1, 1)
    y = x.clone()
    y[..., :, :32] += torch.randn(1, 3, 64, 32)
    buggy = _FloatMaskEncoder(model, open_clip.tokenize, rules=["segment:0"] * DEPTH)
    leak = (buggy.encode_dense(x, ids)[:, :, 2:] - buggy.encode_dense(y, ids)[:, :, 2:]).abs().max()
    assert leak > 1e-3
    # and our masks are boolean, never float
    from resegzoo.methods.clip.schedule import block_masks, default_schedule

    for m in block_masks(default_schedule(DEPTH), torch.ones(1, 4, 4, 4, dtype=torch.int64), (4, 4)):
        assert m is None or m.dtype == torch.bool


def test_batch_carries_one_mask_per_image(model):
    enc = _encoder(model, None)  # default schedule: 2 global + segment:0..3 + 2 x neighbor:0
    gen = torch.Generator().manual_seed(5)
    ids = torch.randint(0, 4, (2, 4, 4, 4), generator=gen)
    x = _images(3, 2)
    both = enc.encode_dense(x, ids)
    for i in range(2):
        alone = enc.encode_dense(x[i:i + 1], ids[i:i + 1])
        torch.testing.assert_close(both[i:i + 1], alone, atol=1e-5, rtol=0)
    swapped = enc.encode_dense(x, ids.flip(0))
    assert (swapped - both).abs().max() > 1e-3  # the masks matter, per image


def test_segearth_last_block_matches_manual_formula(model):
    enc = _encoder(model, ["global"] * DEPTH, segearth_last_block=True)
    x = _images(4, 1)
    got = enc.encode_tokens(x)
    v = model.visual
    tokens = torch.cat([v.class_embedding.expand(1, 1, -1), v.conv1(x).flatten(2).transpose(1, 2)], 1)
    tokens = v.ln_pre(tokens + v.positional_embedding)
    for blk in v.transformer.resblocks[:-1]:
        tokens = blk(tokens)
    last = v.transformer.resblocks[-1]
    hh = last.ln_1(tokens)[0]
    q, k, val = F.linear(hh, last.attn.in_proj_weight, last.attn.in_proj_bias).chunk(3, -1)
    heads, d = last.attn.num_heads, hh.shape[-1] // last.attn.num_heads
    outs = []
    for i in range(heads):
        sl = slice(i * d, (i + 1) * d)
        qi, ki, vi = q[:, sl], k[:, sl], val[:, sl]
        w = sum(torch.softmax(a @ a.T / d ** 0.5, -1) for a in (qi, ki, vi))
        outs.append(w @ vi)
    out = last.attn.out_proj(torch.cat(outs, -1))
    ref = F.normalize(v.ln_post(out) @ v.proj, dim=-1)
    torch.testing.assert_close(got[0], ref, atol=1e-5, rtol=0)


def test_other_window_sizes_interpolate_positions(model):
    enc = _encoder(model, None)
    ids = torch.ones(1, 4, 6, 6, dtype=torch.int64)
    out = enc.encode_dense(torch.randn(1, 3, 96, 96), ids)
    assert out.shape == (1, 6, 6, 32)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(1, 6, 6))


def test_unsupported_models_are_refused():
    cfg = tiny_model_config()
    cfg["vision_cfg"] = {"image_size": 64, "layers": [1, 1, 1, 1], "width": 8}  # a ResNet tower
    resnet = make_tiny_clip(config=cfg)
    with pytest.raises(UnsupportedModelError, match="VisionTransformer"):
        MaskedClipEncoder(resnet, open_clip.tokenize)
    with pytest.raises(ValueError, match="default schedule needs at least 6 blocks"):
        MaskedClipEncoder(make_tiny_clip(config=tiny_model_config(layers=4)), open_clip.tokenize)


def test_masked_block_equals_open_clip_block_when_nothing_is_blocked(model):
    blk = model.visual.transformer.resblocks[3]
    x = torch.randn(2, 17, 64)
    everything = torch.ones(2, 1, 17, 17, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(MaskedClipEncoder.masked_block(blk, x, everything), blk(x), atol=1e-5, rtol=0)
