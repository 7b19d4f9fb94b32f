"""A synthetic DenseEncoder whose features are colours: a ground-truth oracle for resegzoo's tests.

``color_of(name)`` gives the colour the oracle associates with a class name; the feature of a
patch is ``embed_color(mean colour of its pixels)``. ``embed_color`` is injective onto the unit
sphere, so a pixel's cosine with a class is maximal (1) exactly when it has the class's colour.
"""
from __future__ import annotations

import hashlib
from typing import Any

# torch lives in .encoder, imported on first use of embed_color, OracleEncoder or build: resegzoo
# imports every plugin to build its CLI, and `resegzoo --help` must not pay for torch (3 CPU-s).
_LAZY = ("embed_color", "OracleEncoder", "build")
__all__ = ["COLOR_WORDS", "color_of", *_LAZY]

#: Colour words the oracle understands (lower case); other names are hashed to a colour.
COLOR_WORDS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "cyan": (0, 255, 255),
    "magenta": (255, 0, 255),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "orange": (255, 128, 0),
    "purple": (128, 0, 128),
    "brown": (128, 64, 0),
    "pink": (255, 160, 200),
}


def color_of(name: str) -> tuple[int, int, int]:
    """The colour of a class name: a colour word, ``#rrggbb``, else the first 3 bytes of sha256."""
    key = name.strip().lower()
    if key in COLOR_WORDS:
        return COLOR_WORDS[key]
    if len(key) == 7 and key.startswith("#") and all(c in "0123456789abcdef" for c in key[1:]):
        return (int(key[1:3], 16), int(key[3:5], 16), int(key[5:7], 16))
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return (digest[0], digest[1], digest[2])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from resegzoo_oracle import encoder

        return getattr(encoder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
