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
from resegzoo.segmenter.encoder import MaskedClipEncoder
from resegzoo.segmenter.recipe import load_recipe
from resegzoo.segmenter.text import Vocabulary
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
    names = seg.text_embeddings(VOCAB).names
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
