"""Prompt pools: several prompts per class, merged into an ordinary :class:`Vocabulary`.

A pool is one class a line, entries separated by commas, the first entry the class name it is
keyed by and the rest its prompts (ProC-SAM3's ``configs/cls_<dataset>_exp.txt``; the shipped
``remote-sensing`` pool is the union of the benchmark datasets' pools). Expanding a vocabulary
gives each class whose name matches a key that key's prompts as extra names (synonyms): every
method takes them as it takes synonyms (SAM 3 methods prompt each name, CLIP methods take the
best name), and the sidecar lists them.

The rule is ProC-SAM3's (``core/prompt_bank.py``, ``_load_prompt_pool_from_exp_file`` and
``_expand_query_words``), docs/METHOD.md section 10:

- a dataset's pool lines are paired with the dataset's classes by their first entry: the class
  having it as a name (compared after :func:`normalize`), else the closest class by
  :func:`match_class`'s fuzzy score ("storage tank" finds "store tank");
- each class takes the first pool entry whose key is one of its names (then its own names come
  first, then the prompts) or, for dataset pools, whose key fuzzy-matches this class best (then
  the prompts alone); a class no key matches keeps its own names;
- a prompt an earlier class already holds is not repeated (ProC-SAM3: a prompt is one row).

Two additions, for user vocabularies, that change no dataset's pool: a prompt that is another
class's own name is left to that class, and repeats are found regardless of case (a vocabulary
may not hold one name in two classes). User pools (``--prompt-pool``) match keys exactly (after
:func:`normalize`): the fuzzy match would give "water tower" the prompts of "water".
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Sequence

from resegzoo.errors import ResegzooError
from resegzoo.schema import decode_utf8

#: ``text.prompt_pool`` values that are not a file: no pool; the dataset's own pool in eval (the
#: shipped union where a dataset has none, and in segment); the shipped union
NO_POOL = "none"
DATASET_POOL = "dataset"
SHIPPED_POOLS = ("remote-sensing",)
#: a pool file larger than this is not a pool (a name is a few words; thousands of lines at most)
MAX_POOL_BYTES = 1024 * 1024

#: ProC-SAM3's fuzzy match: a score (0.65 x character similarity + 0.35 x word overlap) of at
#: least this, or a shared word with a character similarity of at least FUZZY_SEQUENCE
FUZZY_SCORE = 0.55
FUZZY_SEQUENCE = 0.3


class PromptPoolError(ResegzooError, ValueError):
    """A prompt pool that cannot be used: unknown name, missing or unreadable file, no entries."""


@dataclass(frozen=True)
class PromptPool:
    """Pool entries in file order: (key, prompts), the key being a class name."""

    entries: tuple[tuple[str, tuple[str, ...]], ...]
    #: where it came from, in words (``remote-sensing``, a file's path, ``dataset loveda``)
    source: str = ""

    @classmethod
    def from_lines(cls, lines: Sequence[Sequence[str] | str], source: str = "") -> "PromptPool":
        """Entries from lines (a text line, or its entries as a list): first entry the key."""
        entries = []
        for line in lines:
            parts = split_prompts(line) if isinstance(line, str) else [str(p).strip() for p in line if str(p).strip()]
            if parts:
                entries.append((parts[0], tuple(parts[1:])))
        return cls(tuple(entries), source)

    @classmethod
    def parse(cls, text: str, source: str = "") -> "PromptPool":
        """A pool file's text: one class a line, ``#`` starts a comment line, blank lines skipped."""
        return cls.from_lines([ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")],
                              source)

    @property
    def keys(self) -> list[str]:
        return [key for key, _ in self.entries]


def load_pool(spec: str) -> PromptPool:
    """A shipped pool by name (``remote-sensing``) or a pool file (UTF-8 text, one class a line)."""
    if spec in SHIPPED_POOLS:
        text = resources.files("resegzoo").joinpath("data", "prompt_pools", f"{spec}.txt").read_text("utf-8")
        return PromptPool.parse(text, spec)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise PromptPoolError(f"prompt pool {spec!r} is neither a shipped pool ({', '.join(SHIPPED_POOLS)}) nor a "
                              "file; a pool file has one class a line: its name, then its prompts, comma-separated")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_POOL_BYTES + 1)
    except OSError as exc:
        raise PromptPoolError(f"prompt pool {path}: cannot read it ({exc.strerror or exc})") from None
    if len(raw) > MAX_POOL_BYTES:
        raise PromptPoolError(f"prompt pool {path}: larger than {MAX_POOL_BYTES // 1024} KB; not a prompt pool")
    try:
        pool = PromptPool.parse(decode_utf8(raw, path), str(path))
    except ValueError as exc:
        raise PromptPoolError(f"prompt pool {exc}") from None
    if not any(prompts for _, prompts in pool.entries):
        raise PromptPoolError(f"prompt pool {path}: no line gives a class name and prompts "
                              "(e.g. `road, street, asphalt road`)")
    return pool


def union_of(pools: Sequence[PromptPool], source: str = "") -> PromptPool:
    """One pool from several: each key (after :func:`normalize`) once, in order of first
    appearance, with every pool's prompts for it (repeats, regardless of case, once); keys
    without prompts are left out. The shipped ``remote-sensing`` pool is made this way."""
    merged: dict[str, tuple[str, list[str]]] = {}
    for pool in pools:
        for key, prompts in pool.entries:
            first, mine = merged.setdefault(normalize(key), (key, []))
            for prompt in prompts:
                if prompt.casefold() not in {p.casefold() for p in [first, *mine]}:
                    mine.append(prompt)
    return PromptPool(tuple((key, tuple(prompts)) for key, prompts in merged.values() if prompts), source)


def format_pool(pool: PromptPool) -> str:
    """A pool as a pool file's lines (what :meth:`PromptPool.parse` reads back)."""
    return "".join(", ".join((key,) + prompts) + "\n" for key, prompts in pool.entries)


# -- ProC-SAM3's text rules ----------------------------------------------------------------------
def normalize(token: str) -> str:
    """A name as pool keys are compared: '_' and '-' as spaces, spaces collapsed, lower case."""
    token = str(token).strip().replace("_", " ").replace("-", " ")
    return re.sub(r"\s+", " ", token).lower().strip(" ,")


def split_prompts(text: str) -> list[str]:
    """A line's comma-separated entries, stripped, empty ones dropped."""
    return [part.strip() for part in str(text).strip().split(",") if part.strip()]


def match_class(candidate: str, classes: Sequence[Sequence[str]]) -> Optional[int]:
    """The class ``candidate`` names: the first class having it as a name (after
    :func:`normalize`), else the class of the most similar name when similar enough (ProC-SAM3's
    ``_match_class_index``); None when none is."""
    wanted = normalize(candidate)
    if not wanted:
        return None
    for i, names in enumerate(classes):
        if wanted in {normalize(n) for n in names}:
            return i
    words = set(wanted.split())
    best, best_score, best_overlap, best_sequence = None, 0.0, 0.0, 0.0
    for i, names in enumerate(classes):
        for name in names:
            other = normalize(name)
            theirs = set(other.split())
            overlap = len(words & theirs) / max(len(words | theirs), 1)
            sequence = SequenceMatcher(None, wanted, other).ratio()
            score = 0.65 * sequence + 0.35 * overlap
            if score > best_score:
                best, best_score, best_overlap, best_sequence = i, score, overlap, sequence
    if best_score >= FUZZY_SCORE or (best_overlap > 0.0 and best_sequence >= FUZZY_SEQUENCE):
        return best
    return None


def dataset_pool(classes: Sequence[Sequence[str]], lines: Sequence[Sequence[str] | str],
                 source: str = "") -> PromptPool:
    """A dataset's pool lines paired with its classes (ProC-SAM3's exp-file reading): each line
    goes to the class its first entry names (:func:`match_class`) and is keyed by that class's
    first name; its other entries that are not already the class's names or prompts follow the
    key. Lines naming no class are dropped; classes no line names get a key alone."""
    raw = PromptPool.from_lines(lines)
    pool: dict[int, list[str]] = {}
    order: list[int] = []
    for key, prompts in raw.entries:
        index = match_class(key, classes)
        if index is None:
            continue
        if index not in pool:
            pool[index] = [classes[index][0]]
            order.append(index)
        for prompt in prompts:
            if prompt not in pool[index] and prompt not in classes[index]:
                pool[index].append(prompt)
    for index in range(len(classes)):
        if index not in pool:
            pool[index] = [classes[index][0]]
            order.append(index)
    return PromptPool(tuple((classes[i][0], tuple(pool[i])) for i in order), source)


def expand_classes(classes: Sequence[Sequence[str]], pool: PromptPool, fuzzy: bool = False) -> list[list[str]]:
    """Each class's names with its pool prompts (the module's rule); ``fuzzy``: a key that is
    none of a class's names still goes to the class it fuzzy-matches best (dataset pools)."""
    owner = {name.casefold(): i for i, names in enumerate(classes) for name in names}
    taken: set[str] = set()
    out: list[list[str]] = []
    for index, names in enumerate(classes):
        mine: list[str] = []
        seen: set[str] = set()

        def add(candidate: str) -> None:
            candidate = candidate.strip()
            folded = candidate.casefold()
            if not candidate or folded in seen or folded in taken or owner.get(folded, index) != index:
                return
            mine.append(candidate)
            seen.add(folded)

        own = {normalize(n) for n in names}
        for key, prompts in pool.entries:
            by_name = bool(own & {normalize(k) for k in split_prompts(key)})
            if not by_name and not (fuzzy and match_class(key, classes) == index):
                continue
            if by_name:
                for name in names:
                    add(name)
            for prompt in prompts:
                for part in split_prompts(prompt):
                    add(part)
            break
        else:
            for name in names:
                add(name)
        if not mine:  # every name went to other classes: keep the class's own (the vocabulary decides)
            mine = list(names)
        taken |= {m.casefold() for m in mine}
        out.append(mine)
    return out


def expand_vocabulary(vocab: Any, pool: PromptPool, fuzzy: bool = False) -> Any:
    """``vocab`` with each class's pool prompts as extra names; the class labels stay the
    vocabulary's (its labels, or each class's first name)."""
    from resegzoo.vocabulary import Vocabulary

    classes = expand_classes([list(c) for c in vocab.classes], pool, fuzzy=fuzzy)
    return Vocabulary(classes, labels=list(vocab.class_names))


def pool_for(spec: Optional[str], dataset_lines: Optional[Sequence[Sequence[str]]] = None,
             dataset: str = "") -> tuple[Optional[PromptPool], bool]:
    """The pool ``text.prompt_pool`` names and whether it is a dataset's (paired with the
    classes and matched fuzzily, as ProC-SAM3 does): ``none`` or None: no pool; ``dataset``: the
    dataset's own lines when it has them, else the shipped ``remote-sensing`` union; a shipped
    name; or a file."""
    if spec is None or spec == NO_POOL:
        return None, False
    if spec == DATASET_POOL:
        if dataset_lines:
            return PromptPool.from_lines(dataset_lines, f"dataset {dataset}".strip()), True
        return load_pool(SHIPPED_POOLS[0]), False
    return load_pool(spec), False


def expand_for(classes: Sequence[Sequence[str]], spec: Optional[str],
               dataset_lines: Optional[Sequence[Sequence[str]]] = None, dataset: str = "") -> list[list[str]]:
    """``classes`` expanded with the pool ``spec`` names (see :func:`pool_for`); unchanged without one."""
    pool, from_dataset = pool_for(spec, dataset_lines, dataset)
    if pool is None:
        return [list(c) for c in classes]
    if from_dataset:
        return expand_classes(classes, dataset_pool(classes, [[k, *p] for k, p in pool.entries]), fuzzy=True)
    return expand_classes(classes, pool)
