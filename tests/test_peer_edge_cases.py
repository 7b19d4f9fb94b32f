"""Exact peer edge cases (issue 18 item 12), each against a direct transcription of the reference
formulas (written here from the papers' code, not copied from it):

(a) ``inference.readout: features`` upsamples the tokens as the encoder gives them BEFORE L2
    normalisation, normalises per pixel after, then takes cosines (ReSeg-CLIP's ``infernce.py``);
(b) under ``window_placement: shift`` an axis shorter than the window gets one smaller crop,
    zero-padded (in the normalised image) and centred to a patch multiple, encoded with
    positional embeddings resized by mmseg/DINO's scale-factor rule, its logits upsampled to the
    padded crop and the padding cut off (SegEarth-OV's ``forward_slide``);
(c) NACLIP's Gaussian std: 5 in NACLIP's code (``method-naclip``), 1 in SegEarth-OV's
    (``method-naclip-segearth``).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F

from resegzoo.segmenter.core import Segmenter
from resegzoo.methods.clip.encoder import MaskedClipEncoder
from resegzoo.methods.clip.settings import settings_of
from resegzoo.segmenter.recipe import load_recipe
from resegzoo.vocabulary import Vocabulary
from resegzoo.testing import make_tiny_clip

RECIPES = Path(__file__).resolve().parents[1] / "registry" / "recipes"
DEPTH = 8  # the tiny model: 64 px images, 16 px patches, a 4 x 4 grid
VOCAB = Vocabulary([["road", "street"], ["tree"], ["water"]])


@pytest.fixture(scope="module")
def model():
    return make_tiny_clip(seed=5)


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _normalised(encoder: MaskedClipEncoder, image: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    mean = torch.tensor(encoder.mean).view(1, 3, 1, 1)
    std = torch.tensor(encoder.std).view(1, 3, 1, 1)
    return (x - mean) / std


def _raw_tokens(model, x: torch.Tensor) -> torch.Tensor:
    """(1, gh, gw, C) patch tokens after ln_post and proj, NOT normalised: open_clip's own forward
    (only for the native grid: open_clip cannot resize positional embeddings)."""
    inter = model.visual.forward_intermediates(x, indices=1, normalize_intermediates=True, output_fmt="NLC")
    tokens = inter["image_intermediates"][-1] @ model.visual.proj
    g = int(math.isqrt(tokens.shape[1]))
    return tokens.reshape(1, g, g, -1)


# -- (a) the feature readout ----------------------------------------------------------------------


def test_feature_readout_upsamples_raw_tokens_then_normalises(model):
    encoder = MaskedClipEncoder(model, open_clip.tokenize, rules=["global"] * DEPTH)
    seg = Segmenter(encoder, None, load_recipe(None, window=64, stride=64, readout="features", probabilities="name",
                                               generator="none"))
    image = _image(64, 64)
    got, _ = seg.scores(image, VOCAB)
    # transcription: F.interpolate(raw tokens, bilinear, align_corners=False) -> F.normalize -> cosines
    raw = _raw_tokens(model, _normalised(encoder, image)).permute(0, 3, 1, 2)
    up = F.interpolate(raw, size=(64, 64), mode="bilinear", align_corners=False)
    up = F.normalize(up, dim=1)
    names = seg.method.text_embeddings(VOCAB).names
    expected = torch.einsum("bchw,nc->bnhw", up, names)[0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    # normalising the tokens first (the earlier readout) is measurably different on this model
    early = F.interpolate(F.normalize(raw, dim=1), size=(64, 64), mode="bilinear", align_corners=False)
    before = torch.einsum("bchw,nc->bnhw", F.normalize(early, dim=1), names)[0]
    assert (before - expected).abs().max() > 1e-4


def test_raw_tokens_normalised_are_the_normalised_tokens(model):
    encoder = MaskedClipEncoder(model, open_clip.tokenize, rules=["global"] * DEPTH)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    raw, raw_cls = encoder.encode_dense(x, None, return_cls=True, normalize=False)
    unit, unit_cls = encoder.encode_dense(x, None, return_cls=True)
    torch.testing.assert_close(F.normalize(raw, dim=-1), unit, atol=1e-6, rtol=0)
    torch.testing.assert_close(F.normalize(raw_cls, dim=-1), unit_cls, atol=1e-6, rtol=0)
    assert (raw.norm(dim=-1) - 1).abs().max() > 1e-2  # raw tokens are not unit vectors


# -- (b) a crop smaller than the window under shift placement --------------------------------------


def _segearth_position(pos: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """SegEarth-OV's interpolate_pos_encoding, transcribed: bicubic by scale factor
    ((g + 0.1) / sqrt(N)) per axis; identity when the grid is the model's own."""
    n = int(math.isqrt(pos.shape[0] - 1))
    if grid == (n, n):
        return pos
    patch = pos[1:].reshape(1, n, n, -1).permute(0, 3, 1, 2)
    patch = F.interpolate(patch, scale_factor=((grid[0] + 0.1) / n, (grid[1] + 0.1) / n), mode="bicubic")
    assert tuple(patch.shape[-2:]) == grid
    return torch.cat([pos[:1], patch.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1)])


def _vit_tokens(model, x: torch.Tensor) -> torch.Tensor:
    """(1, gh, gw, C) raw patch tokens of open_clip's ViT blocks, for any patch-multiple size."""
    v = model.visual
    t = v.conv1(x)
    grid = tuple(t.shape[-2:])
    t = t.flatten(2).transpose(1, 2)
    t = torch.cat([v.class_embedding.expand(1, 1, -1), t], dim=1) + _segearth_position(v.positional_embedding, grid)
    t = v.ln_pre(t)
    batch_first = getattr(v.transformer, "batch_first", True)
    for blk in v.transformer.resblocks:
        t = blk(t) if batch_first else blk(t.transpose(0, 1)).transpose(0, 1)
    t = v.ln_post(t) @ v.proj
    return t[:, 1:].reshape(1, grid[0], grid[1], -1)


def _segearth_slide(model, x: torch.Tensor, names: torch.Tensor, crop: int, stride: int, patch: int) -> torch.Tensor:
    """SegEarth-OV's forward_slide with forward_feature (no feature upsampler), transcribed:
    mmseg's windows, a short crop zero-padded and centred to a patch multiple, cosine logits of
    the normalised tokens upsampled bilinearly to the padded crop, the padding cut off, averaged."""
    _, _, h_img, w_img = x.shape
    h_grids = max(h_img - crop + stride - 1, 0) // stride + 1
    w_grids = max(w_img - crop + stride - 1, 0) // stride + 1
    preds = x.new_zeros((1, names.shape[0], h_img, w_img))
    count = x.new_zeros((1, 1, h_img, w_img))
    for hi in range(h_grids):
        for wi in range(w_grids):
            y2, x2 = min(hi * stride + crop, h_img), min(wi * stride + crop, w_img)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            img = x[:, :, y1:y2, x1:x2]
            hc, wc = img.shape[2:]
            lr = (patch - wc % patch) if wc % patch else 0
            tb = (patch - hc % patch) if hc % patch else 0
            left, top = lr // 2, tb // 2
            img = F.pad(img, (left, lr - left, top, tb - top))
            feats = _vit_tokens(model, img)
            feats = feats / feats.norm(dim=-1, keepdim=True)
            logits = (feats @ names.T).permute(0, 3, 1, 2)
            logits = F.interpolate(logits, size=img.shape[-2:], mode="bilinear")[:, :, top:top + hc, left:left + wc]
            preds += F.pad(logits, (x1, w_img - x2, y1, h_img - y2))
            count[:, :, y1:y2, x1:x2] += 1
    return (preds / count)[0]


@pytest.mark.parametrize("h, w", [(40, 150), (150, 40), (64, 150), (20, 30)])
def test_a_short_axis_gets_one_smaller_crop_as_segearth_ov_runs_it(model, h, w):
    encoder = MaskedClipEncoder(model, open_clip.tokenize, rules=["global"] * DEPTH,
                                position_interpolation="scale-factor")
    recipe = load_recipe(None, window=64, stride=32, window_placement="shift", position_interpolation="scale-factor",
                         probabilities="name", generator="none")
    seg = Segmenter(encoder, None, recipe)
    image = _image(h, w, seed=h + w)
    got, info = seg.scores(image, VOCAB)
    names = seg.method.text_embeddings(VOCAB).names
    expected = _segearth_slide(model, _normalised(encoder, image), names, crop=64, stride=32, patch=16)
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=0)
    assert info["windows"] == max(1, -(-(max(h, 64) - 64) // 32) + 1) * max(1, -(-(max(w, 64) - 64) // 32) + 1)


def test_position_rules_differ_and_scale_factor_is_segearth_ovs():
    from resegzoo.methods.clip.encoder import _interpolate_pos

    pos = torch.randn(1 + 14 * 14, 8, generator=torch.Generator().manual_seed(2))
    ours = _interpolate_pos(pos, (14, 14), (9, 14), "scale-factor")
    torch.testing.assert_close(ours, _segearth_position(pos, (9, 14)), atol=1e-6, rtol=0)
    assert (ours - _interpolate_pos(pos, (14, 14), (9, 14), "size")).abs().max() > 1e-3
    assert _interpolate_pos(pos, (14, 14), (14, 14), "scale-factor") is pos


def test_the_peers_protocol_runs_short_crops_the_reference_way():
    recipe = load_recipe(RECIPES / "eval-default.yaml")
    assert (recipe.inference.window_placement, settings_of(recipe).position_interpolation) == ("shift", "scale-factor")


# -- (c) NACLIP's std: NACLIP's code and SegEarth-OV's --------------------------------------------


def _segearth_naclip_addition(n: int, std: float) -> torch.Tensor:
    """SegEarth-OV's NACLIP omega, transcribed: a (2n-1)^2 Gaussian window (coordinates scaled by
    1 / (std sqrt 2)) convolved ('same') over one-hot patch images; zero row and column for CLS."""
    d = 2 * n - 1
    c = 1 / (std * math.sqrt(2))
    axis = torch.linspace(-(d - 1) / 2.0 * c, (d - 1) / 2.0 * c, d)
    window = torch.exp(-(torch.stack(torch.meshgrid(axis, axis, indexing="ij")) ** 2).sum(0))
    eye = torch.einsum("ij,kl->ijkl", torch.eye(n), torch.eye(n)).permute(0, 3, 1, 2).reshape(-1, 1, n, n)
    out = F.conv2d(eye, window[None, None], padding="same").reshape(n * n, n * n)
    return F.pad(out, (1, 0, 1, 0))


@pytest.mark.parametrize("recipe, std", [("method-naclip", 5.0), ("method-naclip-segearth", 1.0)])
def test_both_naclip_rows_are_shipped_with_their_std(recipe, std):
    from resegzoo.methods.clip.last_block import gaussian_bias
    from resegzoo.segmenter.recipe import protocol_name

    loaded = load_recipe(RECIPES / f"{recipe}.yaml")
    extras = settings_of(loaded).extras
    assert extras.last_block == "naclip" and extras.naclip_std == std
    assert loaded.masks.generator == "none" and protocol_name(loaded) == "peers"
    torch.testing.assert_close(gaussian_bias((14, 14), std), _segearth_naclip_addition(14, std), atol=1e-6, rtol=0)
