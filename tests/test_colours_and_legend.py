"""Class colours keyed by name (stable across runs and vocabulary orders) and legends in any script."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from resegzoo.outputs.colours import HASH_PALETTE, LANDCOVER_COLOURS, palette_for_names
from resegzoo.outputs.imageio import draw_overlay

VOCAB = ["building", "road", "tree", "water", "solar panel", "greenhouse", "tennis court", "swimming pool",
         "quarry", "landfill", "pier"]


def _mapping(names):
    return dict(zip(names, palette_for_names(names)))


def _colliding_names() -> list[str]:
    """Two names whose hashed colour is the same when each is alone: one of them must yield."""
    seen: dict[tuple[int, int, int], str] = {}
    for i in range(200):
        name = f"site type {i}"
        colour = palette_for_names([name])[0]
        if colour in seen:
            return [seen[colour], name]
        seen[colour] = name
    raise AssertionError("no two of 200 names share a first colour among 24")


def test_colours_do_not_depend_on_the_vocabulary_order():
    vocab = VOCAB + _colliding_names()
    reference = _mapping(vocab)
    rng = np.random.default_rng(0)
    for _ in range(30):
        order = list(rng.permutation(vocab))
        assert _mapping(order) == reference
    assert len(set(reference.values())) == len(vocab)  # distinct within a vocabulary


def test_land_cover_words_have_fixed_colours_whatever_the_spelling():
    for names in itertools.permutations(["Buildings", "low_vegetation", "WATER", "car"]):
        colours = _mapping(names)
        assert colours["Buildings"] == LANDCOVER_COLOURS["building"]
        assert colours["low_vegetation"] == LANDCOVER_COLOURS["low vegetation"]
        assert colours["WATER"] == LANDCOVER_COLOURS["water"] and colours["car"] == LANDCOVER_COLOURS["car"]
    assert palette_for_names(["background"]) == [(0, 0, 0)]
    fixed = {LANDCOVER_COLOURS[k] for k in ("building", "road", "tree", "water", "grass", "low vegetation", "car",
                                            "clutter", "background", "bare soil", "agriculture", "forest", "rangeland")}
    assert len(fixed) == 13  # the common words are told apart


def test_hashed_names_avoid_taken_colours_and_many_names_stay_distinct():
    names = [f"class {i}" for i in range(len(HASH_PALETTE) + 10)] + ["water"]
    colours = palette_for_names(names)
    assert len(set(colours)) == len(names)
    assert colours[-1] == LANDCOVER_COLOURS["water"]
    assert set(HASH_PALETTE) <= set(colours)  # the palette is used up before spare colours are made


def test_colours_are_the_same_in_another_process():
    code = ("import json, sys; from resegzoo.outputs.colours import palette_for_names; "
            "print(json.dumps(palette_for_names(sys.argv[1:])))")
    runs = [json.loads(subprocess.run([sys.executable, "-c", code, *VOCAB], capture_output=True, text=True, check=True,
                                      env={**os.environ, "PYTHONHASHSEED": seed}).stdout)
            for seed in ("1", "2")]
    assert runs[0] == runs[1] == [list(c) for c in palette_for_names(VOCAB)]


def test_eval_overlays_colour_classes_by_name():
    from resegzoo.eval.datasets import builtin_info
    from resegzoo.eval.overlay import palette_for

    info = builtin_info("loveda")  # no colour-coded labels: colours come from the names
    palette = palette_for(info)
    assert [tuple(int(v) for v in c) for c in palette] == palette_for_names([n[0] for n in info.classes])
    assert tuple(palette[3]) == LANDCOVER_COLOURS["water"]


# -- legends ---------------------------------------------------------------------------------------
def _legend_crop(name: str) -> np.ndarray:
    image = np.full((8, 8, 3), 128, np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "no font found for the legend label" must not happen
        canvas = np.asarray(draw_overlay(image, np.zeros((8, 8), np.int64), [(200, 0, 0)], [name]).convert("L"))
    return canvas[:, 8 + 4 + 10 + 4:]  # right of the image and the colour swatch: the text


@pytest.mark.parametrize("pair", ["水森", "ЖД", "بج", "कख", "กข", "aé"])
def test_legend_draws_letters_of_any_script_not_boxes(pair):
    first, second = (_legend_crop(ch) for ch in pair)
    assert (first < 128).sum() > 3 and (second < 128).sum() > 3  # something is drawn
    # a missing glyph draws the same box for every character: distinct letters give distinct ink
    assert first.shape != second.shape or not np.array_equal(first, second)


@pytest.fixture
def no_system_fonts(monkeypatch):
    """A machine without any system font (a fresh Debian image): only what pip installed."""
    from resegzoo.outputs import fonts

    monkeypatch.setattr(fonts, "font_dirs", lambda: [])
    monkeypatch.delenv("RESEGZOO_LEGEND_FONTS", raising=False)
    for cached in (fonts.font_chain, fonts.font_for):
        cached.cache_clear()
    yield
    for cached in (fonts.font_chain, fonts.font_for):
        cached.cache_clear()


@pytest.mark.parametrize("pair", ["水森", "ЖД", "بج", "कख", "กข", "aé", "কখ", "אב"])
def test_legend_needs_no_system_fonts(no_system_fonts, pair):
    from resegzoo.outputs.fonts import FONT_PACKAGES, font_chain

    assert {p.parent.name for p in font_chain()} == set(FONT_PACKAGES)  # resegzoo's dependencies
    first, second = (_legend_crop(ch) for ch in pair)
    assert (first < 128).sum() > 3 and (second < 128).sum() > 3
    assert first.shape != second.shape or not np.array_equal(first, second)


def test_system_fonts_come_before_the_packaged_ones(tmp_path, monkeypatch):
    from resegzoo.outputs import fonts

    packaged = fonts.packaged_fonts()
    system = tmp_path / "fonts"
    system.mkdir()
    (system / "DejaVuSans.ttf").write_bytes(packaged[0].read_bytes())  # any real font file will do
    monkeypatch.setattr(fonts, "font_dirs", lambda: [system])
    fonts.font_chain.cache_clear()
    try:
        chain = fonts.font_chain()
    finally:
        fonts.font_chain.cache_clear()
    assert chain[0] == system / "DejaVuSans.ttf" and list(chain[1:]) == packaged


def test_legend_is_wide_enough_for_long_names():
    for name in ["très très longue classe de végétation basse", "城市建成区不透水面"]:  # CJK: wide glyphs
        canvas = draw_overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.int64), [(0, 0, 255)], [name])
        ink = np.asarray(canvas.convert("L"))[:, 4 + 4 + 10:] < 128  # the legend's text column
        assert ink.any(axis=0)[-4:].sum() == 0 and ink.any(axis=0)[-30:].sum() > 0  # ends just before the edge


def test_eval_overlays_have_captions_and_a_legend():
    """image | prediction | ground truth under their captions, each class's colour and name on the right."""
    from resegzoo.eval.datasets import builtin_info
    from resegzoo.eval.overlay import CAPTION_HEIGHT, overlay_panel, palette_for

    info = builtin_info("loveda")
    image = np.full((60, 80, 3), 128, np.uint8)
    pred = np.zeros((60, 80), np.int64)
    panel = overlay_panel(image, pred, pred.copy(), info)
    width = 3 * 80 + 2 * 4
    assert panel.shape[0] == max(60 + CAPTION_HEIGHT, 16 * info.num_classes + 8) and panel.shape[1] > width
    captions = panel[:CAPTION_HEIGHT, :width].min(axis=2)
    for k in range(3):  # dark caption text above each of the three panels, and nowhere in the gaps
        assert (captions[:, k * 84:k * 84 + 80] < 100).sum() > 20, k
    assert (captions[:, 80:84] == 255).all() and (captions[:, 164:168] == 255).all()
    np.testing.assert_array_equal(panel[CAPTION_HEIGHT:CAPTION_HEIGHT + 60, :80], image)
    legend = panel[:, width:]
    for k, colour in enumerate(palette_for(info)):  # a swatch of each class's colour, one row per class
        swatch = legend[4 + 16 * k + 5, 4 + 5]
        np.testing.assert_array_equal(swatch, colour)
    ink = (legend[:, 20:].min(axis=2) < 100).sum(axis=1)
    assert all(ink[4 + 16 * k:4 + 16 * (k + 1)].sum() > 10 for k in range(info.num_classes))  # a name per row
