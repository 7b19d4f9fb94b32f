"""The CLIP method's text side: prompt templates and the text embeddings of a vocabulary under them.

A name's embedding is the normalised mean of its normalised embeddings under every template;
a class scores the maximum cosine over its names (METHOD.md section 3).
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from resegzoo.schema import MAX_YAML_BYTES, SchemaError, decode_utf8, read_user_file
from resegzoo.vocabulary import Vocabulary

if TYPE_CHECKING:
    import torch


#: ``sentence`` is the bare name ("{}"): for vocabularies whose names are whole prompts
TEMPLATE_SETS = ("reference", "remote-sensing", "imagenet", "sentence")


def load_templates(spec: str) -> tuple[str, ...]:
    """A shipped template set by name, or a text file with one template per line."""
    if spec in TEMPLATE_SETS:
        text = resources.files("resegzoo").joinpath("data", "templates", f"{spec}.txt").read_text("utf-8")
        where = f"template set {spec!r}"
    else:
        path = Path(spec)
        if not path.exists():
            raise SchemaError(f"templates: {spec!r} is neither a template set "
                              f"({', '.join(TEMPLATE_SETS)}) nor a file")
        text, where = decode_utf8(read_user_file(path, MAX_YAML_BYTES, "a template file"), path), str(path)
    templates = tuple(t.strip() for t in text.splitlines() if t.strip() and not t.lstrip().startswith("#"))
    bad = [t for t in templates if t.count("{}") != 1]
    if not templates or bad:
        raise SchemaError(f"{where}: every template needs exactly one '{{}}' for the class name"
                          + (f"; bad: {bad[0]!r}" if bad else "; none found"))
    return templates


@dataclass
class TextEmbeddings:
    """Name embeddings of one vocabulary under one template set."""

    names: torch.Tensor  # (N, C) one row per name, L2-normalised
    class_of_name: torch.Tensor  # (N,) class index of each row
    num_classes: int

    def class_scores(self, features: torch.Tensor) -> torch.Tensor:
        """features (..., C) normalised -> (..., K) cosine, max over each class's names."""
        cos = features @ self.names.to(features.device, features.dtype).T
        index = self.class_of_name.to(cos.device).expand_as(cos)
        out = cos.new_full((*cos.shape[:-1], self.num_classes), float("-inf"))
        return out.scatter_reduce(-1, index, cos, reduce="amax", include_self=True)

    def name_scores(self, features: torch.Tensor) -> torch.Tensor:
        """features (..., C) normalised -> (..., N) cosine with every name (synonyms separate)."""
        return features @ self.names.to(features.device, features.dtype).T

    def rows(self, features: torch.Tensor, per_name: bool) -> torch.Tensor:
        """:meth:`name_scores` when ``per_name``, else :meth:`class_scores`."""
        return self.name_scores(features) if per_name else self.class_scores(features)

    def names_to_classes(self, values: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Per-name values (N along ``dim``) -> per-class values (K): the max over each class's
        names (SegEarth-OV's name-level probabilities, reduced to classes)."""
        from resegzoo.methods.base import names_to_classes

        return names_to_classes(values, self.class_of_name, self.num_classes, dim)


def embed_vocabulary(encoder: Any, vocab: Vocabulary, templates: Sequence[str]) -> TextEmbeddings:
    import torch
    import torch.nn.functional as F

    names = [n for cls in vocab.classes for n in cls]
    class_of = [i for i, cls in enumerate(vocab.classes) for _ in cls]
    prompts = [t.replace("{}", n) for n in names for t in templates]
    with torch.no_grad():
        emb = F.normalize(torch.as_tensor(encoder.encode_text(prompts)).float(), dim=-1)
    emb = emb.reshape(len(names), len(templates), -1).mean(dim=1)
    return TextEmbeddings(F.normalize(emb, dim=-1), torch.tensor(class_of, device=emb.device), len(vocab))


#: bumped when what a stored embedding means changes (the averaging over templates, the dtype,
#: the entry's own digest and checksum: version 2)
TEXT_CACHE_VERSION = 2
#: how far from 1 a stored row's norm may be (they are stored L2-normalised, in float32)
UNIT_NORM_TOLERANCE = 1e-4


class TextCache:
    """Text embeddings computed once per (vocabulary, templates), not once per window; and, when
    ``key`` identifies the text tower, once per machine: stored in resegzoo's cache folder.

    ``key`` is what decides the text tower's output besides the prompts: the weights' content
    fingerprint (:func:`resegzoo.weights.fingerprint.weights_fingerprint`), the device type and
    the weights' dtype. The prompts enter the file name as the token ids the encoder's tokenizer
    gives them, so a different tokenizer, template or name is another file. Without a key (or an
    encoder without a ``tokenizer``, e.g. a plugin's own) embeddings live in memory only.

    A stored entry is used only if it is what this cache wrote for these names: it holds its own
    file's digest (so an entry of other names renamed to this one is not used) and a checksum of
    its rows (swapped or edited rows), one finite, unit-norm row per name, as wide as the
    encoder's embeddings (``embed_dim`` when the encoder says). Anything else is computed again
    and the entry replaced. A cache folder other users can write is not used (:meth:`store_on_disk`).
    """

    def __init__(self, encoder: Any, key: dict[str, Any] | None = None) -> None:
        self.encoder = encoder
        self.key = key
        self._cache: dict[tuple, TextEmbeddings] = {}
        self.computed = 0  # how many times the text tower ran (tests check it stays at 1)
        self.loaded = 0  # how many vocabularies came from the disk cache

    @staticmethod
    def folder() -> Path:
        """Where embeddings are stored: ``text-embeddings`` in resegzoo's cache folder."""
        from resegzoo.weights.cache import cache_dir

        return cache_dir() / "text-embeddings"

    def store_on_disk(self, key: dict[str, Any] | None) -> str | None:
        """Store embeddings under ``key`` from now on; returns a note (and keeps them in memory
        only) when the cache folder can be written by other users: what they put there is not read."""
        from resegzoo.outputs.reading import unsafe_folder
        from resegzoo.weights.cache import cache_dir

        problem = None if key is None else unsafe_folder(self.folder(), up_to=cache_dir())
        self.key = None if problem else key
        return None if problem is None else (f"text embeddings are not cached on disk: {problem}; make it "
                                             "writable by you alone (chmod go-w) to cache them")

    def get(self, vocab: Vocabulary, templates: Sequence[str]) -> TextEmbeddings:
        import torch

        key = (vocab.classes, tuple(templates))
        if key not in self._cache:
            path = self.stored_path(vocab, templates)
            width = getattr(self.encoder, "embed_dim", None)
            found = _load_stored(path, vocab, width) if path is not None else None
            if found is None:
                found = embed_vocabulary(self.encoder, vocab, templates)
                self.computed += 1
                if path is not None:
                    _store(path, found)
            else:
                self.loaded += 1
                device = torch.device(getattr(self.encoder, "device", "cpu"))
                found = TextEmbeddings(found.names.to(device), found.class_of_name.to(device), found.num_classes)
            self._cache[key] = found
        return self._cache[key]

    def stored_path(self, vocab: Vocabulary, templates: Sequence[str]) -> Path | None:
        """The cache file of this vocabulary's embeddings, or None when they are not stored."""
        import torch

        tokenizer = getattr(self.encoder, "tokenizer", None)
        if self.key is None or not callable(tokenizer):
            return None
        import hashlib
        import json

        names = [n for cls in vocab.classes for n in cls]
        tokens = torch.as_tensor(tokenizer([t.replace("{}", n) for n in names for t in templates]))
        digest = hashlib.sha256(json.dumps({
            "version": TEXT_CACHE_VERSION, "text_tower": self.key, "names": names, "templates": list(templates),
            "tokens": [list(tokens.shape), hashlib.sha256(tokens.cpu().numpy().tobytes()).hexdigest()],
        }, sort_keys=True).encode("utf-8")).hexdigest()
        return self.folder() / f"{digest}.safetensors"


def _checksum(digest: str, names: torch.Tensor) -> torch.Tensor:
    """sha256 of an entry's digest (its file name: the names, templates and text tower) and its
    rows, as 32 uint8: binds the rows to the names they were computed for, in their order."""
    import hashlib

    import torch

    data = hashlib.sha256(digest.encode("ascii") + names.detach().float().cpu().contiguous().numpy().tobytes())
    return torch.frombuffer(bytearray(data.digest()), dtype=torch.uint8)


def _load_stored(path: Path, vocab: Vocabulary, width: int | None = None) -> TextEmbeddings | None:
    """The stored embeddings (safetensors: no pickle), or None when there are none or the entry
    is unreadable or not what was stored for these names (see :class:`TextCache`): a damaged or
    foreign entry is recomputed and replaced."""
    import warnings

    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load

    from resegzoo.outputs.reading import read_bytes

    class_of = [i for i, cls in enumerate(vocab.classes) for _ in cls]
    try:
        # through the safe reader: a FIFO, a link or a huge file there is not read (8192 floats a
        # name is more than any text tower gives)
        stored = load(read_bytes(path, len(class_of) * 8192 * 4 + (1 << 20)))
        names, checksum = stored["names"], stored["checksum"]
    except FileNotFoundError:
        return None
    except (OSError, SafetensorError, KeyError) as exc:
        warnings.warn(f"cached text embeddings {path} are unreadable ({exc}); computing them again", stacklevel=3)
        return None
    problem = _entry_problem(names, checksum, path.stem, len(class_of), width)
    if problem is not None:
        warnings.warn(f"cached text embeddings {path} {problem}; computing them again", stacklevel=3)
        return None
    return TextEmbeddings(names, torch.tensor(class_of), len(vocab))


def _entry_problem(names: torch.Tensor, checksum: torch.Tensor, digest: str, rows: int,
                   width: int | None) -> str | None:
    """Why stored rows are not this entry's (None: they are)."""
    import torch

    if names.ndim != 2 or names.shape[0] != rows or names.dtype != torch.float32:
        return f"hold {tuple(names.shape)} {names.dtype}, not {rows} float32 rows: they do not fit the vocabulary"
    if width is not None and names.shape[1] != width:
        return f"are {names.shape[1]} wide, not {width} as the model's embeddings"
    if not bool(torch.isfinite(names).all()):
        return "hold values that are not finite (NaN or Inf)"
    norms = names.norm(dim=1)
    if not bool(((norms - 1).abs() <= UNIT_NORM_TOLERANCE).all()):
        return f"hold rows that are not unit vectors (norms {norms.min():.4g} to {norms.max():.4g})"
    if checksum.dtype != torch.uint8 or not torch.equal(checksum, _checksum(digest, names)):
        return "do not match their checksum: not the rows stored for these names (swapped, edited or another entry's)"
    return None


def _store(path: Path, emb: TextEmbeddings) -> None:
    from safetensors.torch import save_file

    from resegzoo.outputs.atomic import atomic_path

    names = emb.names.detach().float().cpu().contiguous()
    with atomic_path(path, durable=True) as tmp:
        save_file({"names": names, "checksum": _checksum(path.stem, names)}, str(tmp))
