"""The oracle plugin: found through its entry point, colours map to names deterministically."""
from __future__ import annotations

import itertools
from importlib import metadata

import torch

from resegzoo_oracle import OracleEncoder, color_of, embed_color


def test_registered_through_the_entry_point():
    from resegzoo.plugin import build_registry

    eps = [ep for ep in metadata.entry_points(group="resegzoo") if ep.name == "oracle"]
    assert eps and eps[0].value == "resegzoo_oracle.plugin"
    reg = build_registry()
    assert reg.variants.owners["oracle"] == "oracle"  # the entry-point name, not an import path
    variant = reg.variants.get("oracle-p4")
    assert variant.format == "custom" and variant.build(device="cpu").patch_size == 4


def test_color_of_words_hex_and_hash():
    assert color_of("red") == (255, 0, 0) and color_of(" Blue ") == (0, 0, 255)
    assert color_of("#12ab9F") == (0x12, 0xAB, 0x9F)
    assert color_of("building") == color_of("building") != color_of("buildings")
    assert color_of("#12ab9g") != (0x12, 0xAB, 0x9F)  # not hex: hashed like any name


def test_embedding_is_unit_and_maximal_only_for_the_same_colour():
    colours = torch.tensor(list(itertools.product([0, 1, 127, 128, 254, 255], repeat=3)), dtype=torch.float32)
    e = embed_color(colours)
    torch.testing.assert_close(e.norm(dim=-1), torch.ones(len(colours)))
    cos = e @ e.T
    off_diagonal = cos - 2 * torch.eye(len(colours))
    assert off_diagonal.max() < 1 - 1e-7  # distinct colours never reach cosine 1


def test_dense_features_are_patch_mean_colours():
    enc = OracleEncoder(patch_size=2, image_size=4)
    img = torch.zeros(1, 3, 4, 4)
    img[0, 0, :2, :2] = 1.0  # top-left patch red
    img[0, 2, :2, 2:] = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # top-right patch: half blue
    feats, cls = enc.encode_dense(img, None, return_cls=True)
    assert feats.shape == (1, 2, 2, 4)
    torch.testing.assert_close(feats[0, 0, 0], enc.encode_text(["red"])[0])
    torch.testing.assert_close(feats[0, 0, 1], embed_color(torch.tensor([0.0, 0.0, 127.5])))
    torch.testing.assert_close(cls[0], embed_color(img[0].mean(dim=(1, 2)) * 255))
