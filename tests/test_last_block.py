"""Peer methods' last block (METHOD.md section 7): each attention against its formula on a
3-token example, residual/FFN handling on a tiny CLIP, the schedule rule decision, and
method-vanilla end to end against open_clip's own dense output."""
from __future__ import annotations

import math

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F

from resegzoo.api import Segmenter, Vocabulary, load_recipe
from resegzoo.methods.clip.encoder import MaskedClipEncoder, ScheduleConflictError
from resegzoo.methods.clip.last_block import METHODS, attention_weights, gaussian_bias
from resegzoo.methods.clip.schedule import Rule
from resegzoo.methods.clip.settings import settings_of
from resegzoo.testing import make_tiny_clip
from resegzoo.weights.zoo import registry_dir

DEPTH = 8


@pytest.fixture(scope="module")
def model():
    return make_tiny_clip(seed=11)


# -- the formulas, on 3 tokens (CLS + a 1 x 2 patch grid), one head of dimension 2 ----------------

Q = [[1.0, 0.0], [0.5, 1.0], [-1.0, 2.0]]
K = [[0.0, 1.0], [2.0, -1.0], [1.0, 1.0]]
V = [[1.0, 2.0], [-1.0, 0.5], [3.0, -2.0]]


def _softmax_rows(m):
    out = []
    for row in m:
        e = [math.exp(x - max(row)) for x in row]
        out.append([x / sum(e) for x in e])
    return out


def _scores(a, b, scale=1 / math.sqrt(2)):
    return [[sum(x * y for x, y in zip(ra, rb)) * scale for rb in b] for ra in a]


def _add(*ms):
    return [[sum(vals) for vals in zip(*rows)] for rows in zip(*ms)]


def _expected(method, std):
    if method == "vanilla":
        return _softmax_rows(_scores(Q, K))
    if method == "maskclip":
        return [[1.0 if i == j else 0.0 for j in range(3)] for i in range(3)]
    if method == "sclip":
        return _add(_softmax_rows(_scores(Q, Q)), _softmax_rows(_scores(K, K)))
    if method == "clearclip":
        return _softmax_rows(_scores(Q, Q))
    if method == "naclip":
        g = math.exp(-1 / (2 * std * std))  # patches 1 and 2 are neighbours at distance 1
        omega = [[0, 0, 0], [0, 1, g], [0, g, 1]]
        return _softmax_rows(_add(_scores(K, K), omega))
    return _add(_softmax_rows(_scores(Q, Q)), _softmax_rows(_scores(K, K)), _softmax_rows(_scores(V, V)))


@pytest.mark.parametrize("method", list(METHODS))
def test_attention_matches_the_formula_on_three_tokens(method):
    q, k, v = (torch.tensor(m, dtype=torch.float64)[None, None] for m in (Q, K, V))
    got = attention_weights(method, q, k, v, grid=(1, 2), naclip_std=1.5)[0, 0]
    torch.testing.assert_close(got, torch.tensor(_expected(method, 1.5), dtype=torch.float64), atol=1e-12, rtol=0)


def test_naclip_bias_is_a_gaussian_of_grid_distance():
    omega = gaussian_bias((2, 3), std=2.0)
    assert omega.shape == (7, 7) and (omega[0] == 0).all() and (omega[:, 0] == 0).all()
    # patch (0, 0) is token 1, patch (1, 2) is token 6: squared distance 1 + 4 = 5
    assert omega[1, 6].item() == pytest.approx(math.exp(-5 / 8))
    assert omega[2, 2].item() == pytest.approx(1.0)


# -- residual and FFN on a tiny CLIP ---------------------------------------------------------------

def _tokens_before_last(model, x):
    v = model.visual
    t = torch.cat([v.class_embedding.expand(x.shape[0], 1, -1), v.conv1(x).flatten(2).transpose(1, 2)], 1)
    t = v.ln_pre(t + v.positional_embedding)
    for blk in v.transformer.resblocks[:-1]:
        t = blk(t)
    return t


def _manual_last(model, tokens, method, residual):
    last = model.visual.transformer.resblocks[-1]
    h = last.ln_1(tokens)[0]
    q, k, v = F.linear(h, last.attn.in_proj_weight, last.attn.in_proj_bias).chunk(3, -1)
    heads, d = last.attn.num_heads, h.shape[-1] // last.attn.num_heads
    outs = []
    for i in range(heads):
        sl = slice(i * d, (i + 1) * d)
        w = attention_weights(method, q[:, sl], k[:, sl], v[:, sl], grid=(4, 4))
        outs.append(w @ v[:, sl])
    out = last.attn.out_proj(torch.cat(outs, -1))[None]
    if residual:
        out = tokens + out
        out = out + last.mlp(last.ln_2(out))
    return F.normalize(model.visual.ln_post(out[0]) @ model.visual.proj, dim=-1)


@pytest.mark.parametrize("method, residual", [("sclip", True), ("clearclip", False), ("naclip", False),
                                              ("maskclip", True), ("segearth-ov", False)])
def test_encoder_last_block_keeps_or_drops_residual_as_the_method_does(model, method, residual):
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    enc = MaskedClipEncoder(model, open_clip.tokenize, rules=["global"] * DEPTH, last_block=method)
    with torch.no_grad():
        got = enc.encode_tokens(x)[0]
        ref = _manual_last(model, _tokens_before_last(model, x), method, residual)
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
        # the recipe may override the method's own choice
        flipped = MaskedClipEncoder(model, open_clip.tokenize, rules=["global"] * DEPTH, last_block=method,
                                    last_block_residual=not residual).encode_tokens(x)[0]
        torch.testing.assert_close(flipped, _manual_last(model, _tokens_before_last(model, x), method, not residual),
                                   atol=1e-5, rtol=0)
        assert (flipped - got).abs().max() > 1e-3


def test_vanilla_last_block_is_open_clips_block(model):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    plain = MaskedClipEncoder(model, open_clip.tokenize, rules=["global"] * DEPTH)
    vanilla = MaskedClipEncoder(model, open_clip.tokenize, rules=["global*"], last_block="vanilla")
    torch.testing.assert_close(vanilla.encode_tokens(x), plain.encode_tokens(x), atol=1e-5, rtol=0)


# -- a schedule rule on the method's block: an explicit decision ---------------------------------

def test_a_restricting_rule_on_the_method_block_is_an_error(model):
    with pytest.raises(ScheduleConflictError, match="neighbor:0"):
        MaskedClipEncoder(model, open_clip.tokenize, rules=["global"] * 7 + ["neighbor:0"], last_block="segearth-ov")
    with pytest.raises(ValueError, match="last rule 'global'"):
        load_recipe(None, schedule={"rules": ["global*", "neighbor:0"]}, extras={"last_block": "sclip"})
    # the default schedule gives the last block to the method: segment:0..3, neighbor:0, method
    enc = MaskedClipEncoder(model, open_clip.tokenize, rules=None, last_block="segearth-ov")
    assert [str(r) for r in enc.schedule[-6:]] == ["segment:0", "segment:1", "segment:2", "segment:3",
                                                   "neighbor:0", "global"]
    assert enc.schedule[:2] == [Rule("global")] * 2


def test_starred_rule_fills_any_depth(model):
    from resegzoo.methods.clip.schedule import resolve_schedule

    assert resolve_schedule(["global*", "neighbor:0"], 12) == [Rule("global")] * 11 + [Rule("neighbor", 0)]
    assert resolve_schedule(["global*"], 24) == [Rule("global")] * 24
    with pytest.raises(ValueError, match="star one rule"):
        resolve_schedule(["global*", "segment:0*"], 8)


def test_method_recipes_load_and_name_their_method():
    for name in METHODS:
        recipe = load_recipe(registry_dir() / "recipes" / f"method-{name}.yaml")
        clip = settings_of(recipe)
        assert clip.extras.last_block == name and recipe.masks.generator == "none"
        assert clip.schedule.rules == ["global*"]
        assert clip.extras.cls_token_lambda == (-0.3 if name == "segearth-ov" else 0.0)


# -- method-vanilla end to end: open_clip's own dense logits --------------------------------------

def test_method_vanilla_end_to_end_equals_open_clip_dense_logits(model):
    recipe = load_recipe(registry_dir() / "recipes" / "method-vanilla.yaml", fit_scale=[64, 64], window=64,
                         stride=32)
    enc = MaskedClipEncoder(model, open_clip.tokenize, rules=settings_of(recipe).schedule.rules,
                            last_block=settings_of(recipe).extras.last_block)
    seg = Segmenter(enc, None, recipe)
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    vocab = Vocabulary([["road", "street"], ["tree"], ["water"]])
    rows, _ = seg.scores(image, vocab)
    # the reference: open_clip's tokens after ln_post, proj, L2; text as open_clip encodes it
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    x = (x - torch.tensor(enc.mean).view(1, 3, 1, 1)) / torch.tensor(enc.std).view(1, 3, 1, 1)
    with torch.no_grad():
        inter = model.visual.forward_intermediates(x, indices=1, normalize_intermediates=True, output_fmt="NLC")
        patches = F.normalize(inter["image_intermediates"][-1] @ model.visual.proj, dim=-1)[0]  # (16, C)
        names = []
        for name in ["road", "street", "tree", "water"]:
            t = model.encode_text(open_clip.tokenize([tpl.replace("{}", name) for tpl in seg.method.templates]), normalize=True)
            names.append(F.normalize(t.mean(0), dim=-1))
        cos = patches @ torch.stack(names).T  # (16, 4)
    expected = F.interpolate(cos.T.reshape(1, 4, 4, 4), size=(64, 64), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(rows, expected, atol=1e-5, rtol=0)
    probs = torch.softmax(50 * expected, 0)
    by_class = torch.stack([probs[:2].max(0).values, probs[2], probs[3]])
    np.testing.assert_allclose(seg.segment(image, vocab).probs, by_class.numpy(), atol=1e-5)
