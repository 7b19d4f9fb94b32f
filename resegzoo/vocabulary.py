"""The vocabulary: the classes a user names, each one or more names (synonyms), in order.

One class for every method, the pipeline, segment, eval and the API: ``--classes "building; road,
street; tree"`` (:meth:`Vocabulary.parse`), a ``--vocab`` file (:meth:`Vocabulary.from_file`) or a
dataset's class list. Names are checked once, here: text, bounded, printable, not repeated.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from resegzoo.errors import EXIT_USAGE, ResegzooError
from resegzoo.schema import MAX_YAML_BYTES, SchemaError, decode_utf8, load_yaml, read_user_file


class VocabularyError(ResegzooError, ValueError):
    """A class list that cannot be used: empty, an empty name, a duplicate name, a name that is not
    text, too long, or holds control characters."""

    exit_code = EXIT_USAGE


#: the longest class name or label: a name is a few words of a prompt (CLIP reads 77 tokens); a
#: longer one is a mistake that would cost minutes of text passes and a legend wider than any screen
MAX_NAME_CHARS = 200
#: the most names (synonyms included) one vocabulary may hold: each is a text pass per template
MAX_NAMES = 1000


def _check_name(name: Any, what: str) -> str:
    """One name or label: text, stripped, bounded, printable (no newline, NUL, other controls:
    they break the legend, the GeoTIFF's category names and the QGIS style)."""
    if not isinstance(name, str):
        raise VocabularyError(f"{what}: {name!r} is not a name; names are text (quote numbers in YAML: '1')")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise VocabularyError(f"{what}: a name of {len(name):,} characters ({name[:20]!r}...); "
                              f"at most {MAX_NAME_CHARS} are allowed")
    bad = next((c for c in name if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp")), None)
    if bad is not None:
        raise VocabularyError(f"{what}: the name {name[:40]!r} holds the control character {bad!r}; "
                              "names are one line of printable text")
    return name


@dataclass(frozen=True, init=False)
class Vocabulary:
    """Classes in order; each class is one or more names (synonyms), the first is its label
    unless ``labels`` names the classes (when the names are whole prompts, e.g. the official
    ReSeg-CLIP code's 19 sentences for its 6 classes)."""

    classes: tuple[tuple[str, ...], ...]
    labels: tuple[str, ...] | None = None

    def __init__(self, classes: Sequence[Sequence[str] | str], labels: Sequence[str] | None = None) -> None:
        cleaned: list[tuple[str, ...]] = []
        total = 0
        for i, cls in enumerate(classes):
            if not isinstance(cls, (str, list, tuple)):
                raise VocabularyError(f"class {i + 1}: {cls!r} is not a name or a list of names")
            names = (cls,) if isinstance(cls, str) else tuple(cls)
            total += len(names)
            if total > MAX_NAMES:
                raise VocabularyError(f"more than {MAX_NAMES} names (synonyms included); each is a text pass "
                                      "per template")
            names = tuple(_check_name(n, f"class {i + 1}") for n in names)
            if not names or any(not n for n in names):
                raise VocabularyError(f"class {i + 1} has an empty name: every class needs at least one "
                                      "non-empty name (check for doubled or trailing ';' or ',')")
            cleaned.append(names)
        if not cleaned:
            raise VocabularyError("the class list is empty: give at least one class, e.g. "
                                  "--classes \"building; road, street; tree\"")
        seen: dict[str, int] = {}
        for i, names in enumerate(cleaned):
            for n in names:
                if n.lower() in seen and seen[n.lower()] != i:
                    raise VocabularyError(f"the name {n!r} appears in classes {seen[n.lower()] + 1} and {i + 1}")
                seen[n.lower()] = i
        object.__setattr__(self, "classes", tuple(cleaned))
        if labels is not None:
            labels = tuple(_check_name(label, f"label {i + 1}") for i, label in enumerate(labels))
            if len(labels) != len(cleaned) or not all(labels):
                raise VocabularyError(f"{len(labels)} class labels for {len(cleaned)} classes: give one "
                                      "non-empty label per class")
        object.__setattr__(self, "labels", labels)

    @classmethod
    def parse(cls, text: str) -> "Vocabulary":
        """``"building; road, street; tree"``: ';' separates classes, ',' separates synonyms."""
        if not text.replace(";", "").strip():
            return cls([])  # nothing but separators: the empty-list error
        parts = text.split(";")
        if parts and not parts[-1].strip():
            parts = parts[:-1]  # allow one trailing ';'
        return cls([[n for n in part.split(",")] for part in parts])

    @classmethod
    def from_file(cls, path: str | Path) -> "Vocabulary":
        """See :meth:`_from_file`; a problem with a name is reported with the file's name."""
        try:
            return cls._from_file(path)
        except VocabularyError as exc:
            if str(exc).startswith(str(path)):
                raise
            raise VocabularyError(f"{path}: {exc}") from None

    @classmethod
    def _from_file(cls, path: str | Path) -> "Vocabulary":
        """A ``.txt`` (one class per line, synonyms separated by ',', '#' comments) or a YAML
        list whose items are a name or a list of synonyms (or ``{classes: [...]}``).

        A class may carry a label that is not one of its names: ``Water: a river, a lake`` in a
        text file, ``{Water: [a river, a lake]}`` as a YAML item. Then every class needs one."""
        path = Path(path)
        if path.suffix.lower() in (".yaml", ".yml"):
            data: Any = load_yaml(path)
            if isinstance(data, dict) and set(data) == {"classes"}:
                data = data["classes"]
            if not isinstance(data, list):
                raise SchemaError(f"{path}: expected a list of classes (each a name or a list of names)")
            if data and all(isinstance(item, dict) and len(item) == 1 for item in data):
                pairs = [next(iter(item.items())) for item in data]
                return cls([[names] if isinstance(names, str) else names for _, names in pairs],
                           labels=[label for label, _ in pairs])
            return cls(data)
        if not path.exists():
            raise VocabularyError(f"{path}: no such vocabulary file")
        lines = decode_utf8(read_user_file(path, MAX_YAML_BYTES, "a vocabulary file"), path).splitlines()
        rows = [row for row in (line.split("#", 1)[0].strip() for line in lines) if row]
        if rows and all(":" in row for row in rows):
            pairs = [row.split(":", 1) for row in rows]
            return cls([names.split(",") for _, names in pairs], labels=[label for label, _ in pairs])
        return cls([row.split(",") for row in rows])

    @property
    def class_names(self) -> list[str]:
        """Each class's label: its ``labels`` entry, else its first name."""
        return list(self.labels) if self.labels else [names[0] for names in self.classes]

    @property
    def names(self) -> list[str]:
        """Every name, class by class (the rows of per-name scores; synonyms separate)."""
        return [name for names in self.classes for name in names]

    @property
    def class_of_names(self) -> list[int]:
        """The class index of each of :attr:`names`."""
        return [i for i, names in enumerate(self.classes) for _ in names]

    def __len__(self) -> int:
        return len(self.classes)
