"""The text tower cut after the last pooled position: the embeddings of open_clip's own
encode_text (within 1e-5), on a tiny model and on a text tower shaped like ViT-B-16's."""
from __future__ import annotations

import open_clip
import pytest
import torch
import torch.nn.functional as F

from resegzoo.methods.clip.encoder import MaskedClipEncoder
from resegzoo.methods.clip.text import load_templates
from resegzoo.methods.clip.text_tower import encode_tokens, pooled_positions
from resegzoo.testing import make_tiny_clip

TOKENIZER = open_clip.get_tokenizer("ViT-B-16")


def vit_b16_text_tower() -> torch.nn.Module:
    """ViT-B-16's text tower (width 512, 12 layers, 8 heads, 77 positions) with random weights,
    beside a token-sized image tower (the test reads only the text side)."""
    cfg = open_clip.get_model_config("ViT-B-16")
    torch.manual_seed(0)
    model = open_clip.CLIP(embed_dim=cfg["embed_dim"], text_cfg=cfg["text_cfg"],
                           vision_cfg={"image_size": 32, "layers": 1, "width": 64, "patch_size": 16, "head_width": 16})
    return model.eval()


def prompts(count: int) -> list[str]:
    """Prompts of many lengths: templates x names, an empty name, and one cut at 77 tokens."""
    names = ["building", "low vegetation", "impervious surface", "agriculture land", ""]
    out = [t.replace("{}", n) for t in load_templates("imagenet")[:count] for n in names]
    return out + ["a photo of " + "a very long and winding road " * 20]


def spy_lengths(model, monkeypatch) -> list[int]:
    lengths: list[int] = []
    real = model.transformer.forward

    def forward(x, *args, **kwargs):
        lengths.append(x.shape[1])
        return real(x, *args, **kwargs)

    monkeypatch.setattr(model.transformer, "forward", forward)
    return lengths


@pytest.mark.parametrize("make", [make_tiny_clip, vit_b16_text_tower], ids=["tiny", "vit-b-16-text"])
def test_cut_embeddings_equal_open_clips_encode_text(make, monkeypatch):
    model = make()
    tokens = TOKENIZER(prompts(2))
    with torch.no_grad():
        expected = model.encode_text(tokens)
        lengths = spy_lengths(model, monkeypatch)
        got = encode_tokens(model, tokens, chunk=4)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    # the chunks were cut: the long prompt alone needs all 77 positions, every other chunk fewer
    assert max(lengths) == 77 and sorted(lengths)[0] < 16 and sum(lengths) < 0.5 * 77 * len(lengths)


def test_the_segmenters_text_embeddings_are_open_clips_normalised():
    model = make_tiny_clip()
    encoder = MaskedClipEncoder(model, TOKENIZER)
    texts = prompts(10)
    with torch.no_grad():
        expected = F.normalize(model.encode_text(TOKENIZER(texts)).float(), dim=-1)
    torch.testing.assert_close(encoder.encode_text(texts), expected, rtol=0, atol=1e-5)


def test_towers_that_cannot_be_cut_run_encode_text_unchanged(monkeypatch):
    """No causal mask (every position sees the padding), or pooling at the last position: the
    whole context matters, so the model's own encode_text runs."""
    tokens = TOKENIZER(prompts(2))
    for change in ("no mask", "last"):
        model = make_tiny_clip()
        if change == "no mask":
            model.attn_mask = None
        else:
            model.text_pool_type = "last"
        assert pooled_positions(model, tokens) is None
        calls = []
        real = model.encode_text
        monkeypatch.setattr(model, "encode_text", lambda t, real=real: calls.append(t.shape) or real(t))
        with torch.no_grad():
            got = encode_tokens(model, tokens)
            assert calls == [tokens.shape]
            torch.testing.assert_close(got, real(tokens), rtol=0, atol=0)


def test_eos_and_first_pooling_read_the_right_position():
    model = make_tiny_clip()
    tokens = TOKENIZER(prompts(3))
    with torch.no_grad():
        for pool, eos in (("eos", int(tokens.max())), ("first", None)):
            model.text_pool_type, model.text_eos_id = pool, eos
            torch.testing.assert_close(encode_tokens(model, tokens, chunk=4), model.encode_text(tokens),
                                       rtol=0, atol=1e-5)
