"""A font for each legend label, so class names in any script draw as letters, not boxes.

No single free font covers Latin, Cyrillic, Arabic, Devanagari, Thai and CJK, so legends use a
chain of system fonts and give each label the first font that has a glyph for every character
of it (one font per label keeps Arabic shaping and right-to-left order intact). The chain:

1. font files named in the ``RESEGZOO_LEGEND_FONTS`` environment variable (os.pathsep-separated);
2. DejaVu Sans, Noto Sans and its per-script siblings (Debian: fonts-dejavu-core, fonts-noto-core);
3. Droid Sans Fallback and Noto Sans CJK for Chinese, Japanese, Korean (fonts-droid-fallback,
   fonts-noto-cjk), then GNU Unifont (fonts-unifont);
4. the Noto fonts that come with resegzoo's install (dependencies ``manimgx-fonts``: Noto Sans and
   its siblings for 19 scripts, and ``noto-cjk-sans-otc``: Noto Sans CJK), so legends draw every
   script with no system fonts at all. System fonts come first: they are what the user chose.

A label that no font covers is drawn in the chain's best font for it (or Pillow's built-in font
when no system font is found), and a warning says which packages to install.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import sys
import unicodedata
import warnings
from pathlib import Path
from typing import Any

#: file names in order of preference; a ``*`` entry matches several files (sorted)
PREFERRED_FILES = (
    "DejaVuSans.ttf", "NotoSans-Regular.ttf", "NotoSans*-Regular.ttf", "NotoNaskhArabic-Regular.ttf",
    "DroidSansFallbackFull.ttf", "DroidSansFallback.ttf", "NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf",
    "unifont.otf", "unifont.ttf",
)
#: pip-installed packages of OFL Noto fonts (resegzoo's dependencies), searched after the system's
FONT_PACKAGES = ("manimgx_fonts", "noto_cjk_sans_otc")
_FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
#: a code point no font maps (plane 16 private use): drawing it shows the font's missing-glyph box
_NO_GLYPH = "\U0010fffd"
INSTALL_HINT = ("reinstall resegzoo's font dependencies (pip install manimgx-fonts noto-cjk-sans-otc) or install "
                "wide-coverage fonts (Debian: apt-get install fonts-noto-core fonts-droid-fallback)")


def font_dirs() -> list[Path]:
    """Where operating systems keep font files."""
    home = Path.home()
    dirs = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), home / ".local/share/fonts", home / ".fonts"]
    if sys.platform == "darwin":
        dirs += [Path("/System/Library/Fonts"), Path("/Library/Fonts"), home / "Library/Fonts"]
    if sys.platform == "win32":
        dirs.append(Path(os.environ.get("WINDIR", "C:/Windows")) / "Fonts")
    return [d for d in dirs if d.is_dir()]


def packaged_fonts() -> list[Path]:
    """The font files of :data:`FONT_PACKAGES` that are installed: Noto Sans, then the per-script
    fonts, then CJK (italic and emoji faces left out: they add no letters)."""
    files: list[Path] = []
    for module in FONT_PACKAGES:
        spec = importlib.util.find_spec(module)  # finds the folder without importing the package
        for folder in (spec.submodule_search_locations or []) if spec is not None else []:
            found = [p for p in Path(folder).iterdir() if p.suffix.lower() in _FONT_SUFFIXES
                     and "Italic" not in p.name and "Emoji" not in p.name]
            files += sorted(found, key=lambda p: (not p.name.startswith("NotoSans["), p.name))
    return files


@functools.lru_cache(maxsize=1)
def font_chain() -> tuple[Path, ...]:
    """Font files to try for a label, best first (see the module docstring)."""
    chosen: list[Path] = [Path(p) for p in os.environ.get("RESEGZOO_LEGEND_FONTS", "").split(os.pathsep) if p]
    found: dict[str, list[Path]] = {}
    for folder in font_dirs():
        for path in folder.rglob("*"):
            if path.suffix.lower() in (".ttf", ".otf", ".ttc"):
                found.setdefault(path.name, []).append(path)
    for pattern in PREFERRED_FILES:
        for name in sorted(n for n in found if Path(n).match(pattern)):
            chosen.extend(p for p in sorted(found[name]) if p not in chosen)
    chosen.extend(p for p in packaged_fonts() if p not in chosen)
    return tuple(p for p in chosen if p.is_file())


@functools.lru_cache(maxsize=64)
def _load(path: Path, size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.truetype(str(path), size)


def _bitmap(font: Any, text: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(text)
    return mask.size, bytes(mask)


def missing_characters(font: Any, text: str) -> list[str]:
    """The characters of ``text`` that ``font`` draws as its missing-glyph box.

    Spaces and combining marks are not checked: they draw blank or attach to their base letter."""
    box = _bitmap(font, _NO_GLYPH)
    return [ch for ch in dict.fromkeys(text)
            if not ch.isspace() and not unicodedata.category(ch).startswith(("M", "C"))
            and _bitmap(font, ch) == box]


@functools.lru_cache(maxsize=256)
def font_for(text: str, size: int = 12) -> Any:
    """The first font of the chain that draws every character of ``text`` (else the one missing fewest)."""
    from PIL import ImageFont

    best, best_missing = None, None
    for path in font_chain():
        font = _load(path, size)
        missing = missing_characters(font, text)
        if not missing:
            return font
        if best_missing is None or len(missing) < len(best_missing):
            best, best_missing = font, missing
    shown = "".join(best_missing) if best_missing is not None else text
    warnings.warn(f"no font found for the legend label {text!r} (characters {shown!r}); {INSTALL_HINT}",
                  stacklevel=2)
    return best if best is not None else ImageFont.load_default(size)
