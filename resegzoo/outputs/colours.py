"""Class colours keyed by class NAME, so a class looks the same in every run and every output.

A class whose name is a common land-cover word (building, road, tree, water, ...) always gets that
word's conventional colour; any other name is hashed into a palette of distinct colours. Which
colour a name gets never depends on where it stands in the vocabulary: two names in one
vocabulary that would share a colour are told apart in the order of the names themselves (sorted),
not of the vocabulary, so reordering the classes changes no colour.
"""
from __future__ import annotations

import colorsys
import hashlib
import re
import unicodedata
from typing import Sequence

RGB = tuple[int, int, int]

#: Conventional colours for common land-cover words (all distinct). Keys are normalised names
#: (see :func:`normalise`); several spellings of one concept share an entry.
LANDCOVER_COLOURS: dict[str, RGB] = {
    "background": (0, 0, 0),
    "building": (220, 30, 40),
    "roof": (220, 30, 40),
    "house": (220, 30, 40),
    "road": (150, 150, 150),
    "street": (150, 150, 150),
    "impervious surface": (190, 190, 190),
    "pavement": (190, 190, 190),
    "parking lot": (120, 110, 130),
    "railway": (95, 60, 40),
    "tree": (20, 110, 30),
    "forest": (0, 70, 20),
    "woodland": (0, 70, 20),
    "low vegetation": (140, 210, 90),
    "vegetation": (80, 170, 70),
    "grass": (175, 235, 110),
    "grassland": (175, 235, 110),
    "meadow": (175, 235, 110),
    "rangeland": (200, 190, 90),
    "shrub": (110, 150, 60),
    "agriculture": (245, 215, 60),
    "agricultural land": (245, 215, 60),
    "farmland": (245, 215, 60),
    "cropland": (245, 215, 60),
    "field": (245, 215, 60),
    "water": (30, 110, 230),
    "river": (30, 110, 230),
    "lake": (30, 110, 230),
    "sea": (20, 60, 160),
    "wetland": (90, 190, 190),
    "bare soil": (170, 120, 70),
    "bareland": (170, 120, 70),
    "bare land": (170, 120, 70),
    "barren": (170, 120, 70),
    "sand": (235, 200, 150),
    "snow": (235, 245, 255),
    "ice": (235, 245, 255),
    "cloud": (250, 250, 250),
    "shadow": (45, 45, 60),
    "car": (255, 0, 200),
    "vehicle": (255, 0, 200),
    "clutter": (130, 40, 170),
    "ship": (255, 140, 0),
    "airplane": (0, 220, 255),
    "developed space": (240, 100, 100),
    "urban": (240, 100, 100),
}

#: Distinct colours that names outside the table are hashed into (none is in the table above).
HASH_PALETTE: tuple[RGB, ...] = (
    (0, 130, 200), (60, 180, 75), (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
    (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200),
    (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (230, 25, 75),
    (255, 225, 25), (100, 100, 255), (255, 120, 120), (0, 90, 60), (200, 120, 255), (120, 200, 255),
)


def normalise(name: str) -> str:
    """'Low_Vegetation ' and 'low-vegetation' -> 'low vegetation' (Unicode NFKC, case-folded)."""
    text = unicodedata.normalize("NFKC", name).casefold()
    return re.sub(r"[\s_\-]+", " ", text).strip()


def landcover_colour(name: str) -> RGB | None:
    """The fixed colour of a common land-cover word (a plural 's' is dropped), else None."""
    key = normalise(name)
    if key in LANDCOVER_COLOURS:
        return LANDCOVER_COLOURS[key]
    if key.endswith("s") and key[:-1] in LANDCOVER_COLOURS:
        return LANDCOVER_COLOURS[key[:-1]]
    return None


def _hash_order(name: str) -> list[RGB]:
    """HASH_PALETTE in an order fixed by the name: its first choice, then its fallbacks."""
    digest = int.from_bytes(hashlib.sha256(normalise(name).encode("utf-8")).digest()[:8], "big")
    start = digest % len(HASH_PALETTE)
    return [HASH_PALETTE[(start + i) % len(HASH_PALETTE)] for i in range(len(HASH_PALETTE))]


def _spare_colour(name: str, taken: set[RGB]) -> RGB:
    """A colour from the name's hash when the whole palette is taken (vocabularies of 25+ names)."""
    digest = hashlib.sha256(("spare:" + normalise(name)).encode("utf-8")).digest()
    for i in range(0, len(digest) - 2, 3):
        h, s, v = digest[i] / 255, 0.55 + 0.45 * digest[i + 1] / 255, 0.55 + 0.45 * digest[i + 2] / 255
        rgb = tuple(int(c * 255) for c in colorsys.hsv_to_rgb(h, s, v))
        if rgb not in taken:
            return rgb  # type: ignore[return-value]
    return rgb  # type: ignore[return-value]  # ~10 tries all taken: accept a repeat


def palette_for_names(names: Sequence[str]) -> list[RGB]:
    """One colour per class name, in the order given; independent of that order.

    Land-cover words keep their fixed colour even when two of them share it (synonyms); every other
    name gets its hashed colour unless a name sorted before it, or a land-cover word in the same
    vocabulary, already has that colour."""
    colours: dict[str, RGB] = {}
    for name in names:
        fixed = landcover_colour(name)
        if fixed is not None:
            colours[name] = fixed
    taken = set(colours.values())
    for name in sorted({n for n in names if n not in colours}, key=lambda n: (normalise(n), n)):
        choice = next((c for c in _hash_order(name) if c not in taken), None)
        colours[name] = choice if choice is not None else _spare_colour(name, taken)
        taken.add(colours[name])
    return [colours[name] for name in names]
