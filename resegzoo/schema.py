"""Strict loading of YAML/JSON mappings into typed dataclasses.

Every record and recipe in resegzoo goes through :func:`from_mapping`, so an unknown key, a missing
key or a wrong type is always an error that names the file and the key.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from resegzoo.errors import EXIT_USAGE, ResegzooError

T = TypeVar("T")


class SchemaError(ResegzooError, ValueError):
    """A mapping does not fit the record it should describe."""

    exit_code = EXIT_USAGE


def _check_type(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            try:
                return _check_type(value, arg, where)
            except SchemaError:
                continue  # try the next member of the union; the error below names the whole type
        raise SchemaError(f"{where}: {value!r} is not {_type_name(tp)}")
    if tp is type(None):
        if value is not None:
            raise SchemaError(f"{where}: expected nothing (null), got {value!r}")
        return None
    if origin is typing.Literal:
        if value not in args:
            raise SchemaError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise SchemaError(f"{where}: expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        items = [_check_type(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin in (dict, typing.Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise SchemaError(f"{where}: expected a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {_check_type(k, kt, where): _check_type(v, vt, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, where)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):  # no setting means anything by .inf or .nan
            raise SchemaError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(f"{where}: expected an integer, got {value!r}")
        return value
    if isinstance(tp, type):
        if not isinstance(value, tp):
            raise SchemaError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    return value


_TYPE_WORDS = {int: "a whole number", float: "a number", str: "text", bool: "true or false", type(None): "null",
               dict: "a mapping", list: "a list"}


def _type_name(tp: Any) -> str:
    """A type as a message says it: ``a number or null`` for Optional[float]."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(_type_name(arg) for arg in typing.get_args(tp)))
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(tp)))
    if typing.get_origin(tp) in (list, tuple, typing.Sequence):
        return "a list"
    if typing.get_origin(tp) in (dict, typing.Mapping):
        return "a mapping"
    return _TYPE_WORDS.get(tp) or getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def from_mapping(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown, missing or mistyped keys raise SchemaError."""
    where = where or cls.__name__
    if not isinstance(data, Mapping):
        raise SchemaError(f"{where}: expected a mapping of keys to values, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), list(fields), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SchemaError(f"{where}: unknown key {key!r}{hint}; allowed keys: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _check_type(data[name], hints[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SchemaError(f"{where}: missing required key {name!r}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{where}: {exc}") from exc


# -- sizes that size an allocation ------------------------------------------------------------
#
# A setting that decides how much memory is allocated (a window side, a resize target, a block
# side, a batch, a number of levels), or a number that overflows past some size (a logit scale),
# carries its limit in its field's metadata: ``limit(N)`` for
# a number (each item, for a list), ``limit(N, items=M)`` also bounds a list's length. The record's
# ``__post_init__`` calls :func:`check_limits`, so a recipe file, an override and a record built in
# Python are refused alike, in one line naming the key and the limit, before any work.

#: the largest window side, and so the largest input side of a model (SAM 3's image_size is its
#: window): CLIP uses 224-448 px, SAM 3 1008 px
MAX_IMAGE_SIDE = 4096

#: the metadata key of a field's limit, and of its list length's limit
LIMIT, ITEMS_LIMIT = "resegzoo_at_most", "resegzoo_at_most_items"


def limit(at_most: int | None = None, items: int | None = None) -> dict[str, int]:
    """Field metadata bounding a size: the value (each item of a list) and the list's length."""
    out = {}
    if at_most is not None:
        out[LIMIT] = at_most
    if items is not None:
        out[ITEMS_LIMIT] = items
    return out


def check_limits(record: Any, prefix: str = "") -> None:
    """ValueError naming ``prefix + key`` and its limit for the first field of the dataclass
    ``record`` above the limit its metadata gives (see :func:`limit`)."""
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if value is None:
            continue
        most_items = f.metadata.get(ITEMS_LIMIT)
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if most_items is not None and isinstance(value, (list, tuple)) and len(value) > most_items:
            raise ValueError(f"{prefix}{f.name} has {len(value):,} items; the limit is {most_items:,}")
        most = f.metadata.get(LIMIT)
        if most is None:
            continue
        for v in values:
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v > most:
                shown = f"{v:,}" if isinstance(v, int) else f"{v:g}"
                raise ValueError(f"{prefix}{f.name} is {shown}, above the limit of {most:,}")


#: the most a YAML file may hold: its size, its nesting, and its nodes once every alias is expanded
#: (aliases share objects when loaded, but anything that walks the data -- a vocabulary's names,
#: a recipe's settings -- pays for every expansion: a few hundred bytes of nested aliases are billions)
MAX_YAML_BYTES = 8 * 1024 * 1024
MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 200_000


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with bounded nesting and bounded alias expansion: it counts the nodes
    each node stands for with its aliases expanded, while composing, before anything is built.

    Numbers in exponent form without a dot (``1e308``, ``5e-3``) are numbers, as YAML 1.2 and JSON
    read them (PyYAML's YAML 1.1 rules made them strings)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._expanded: dict[int, int] = {}  # id(node) -> nodes it stands for, aliases expanded

    def _refuse(self, problem: str) -> None:
        mark = self.peek_event().start_mark
        raise SchemaError(f"{problem} (line {mark.line + 1}, column {mark.column + 1})")

    def compose_node(self, parent: Any, index: Any) -> Any:
        alias = self.check_event(yaml.AliasEvent)
        if not alias:
            self._depth += 1
            if self._depth > MAX_YAML_DEPTH:
                self._refuse(f"nested deeper than {MAX_YAML_DEPTH} levels")
        try:
            node = super().compose_node(parent, index)
        finally:
            if not alias:
                self._depth -= 1
        if alias:
            if id(node) not in self._expanded:  # an alias to a node that is still being composed
                raise SchemaError("an alias refers to a node that contains it (a recursive alias)")
            return node
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        size = 1 + sum(self._expanded[id(c)] for c in children)
        if size > MAX_YAML_NODES:
            raise SchemaError(f"expands to more than {MAX_YAML_NODES:,} values (aliases of aliases?)")
        self._expanded[id(node)] = size
        return node


# YAML 1.2 / JSON floats in exponent form without a dot (PyYAML's YAML 1.1 resolver wants one)
_BoundedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))


def load_yaml(path: str | Path) -> Any:
    """Read one YAML document, turning parse errors into SchemaError that names the file.

    Every YAML resegzoo reads comes through here: UTF-8 only, at most :data:`MAX_YAML_BYTES`,
    nesting and alias expansion bounded (:class:`_BoundedLoader`); no Python tags (safe loader)."""
    path = Path(path)
    text = decode_utf8(read_user_file(path, MAX_YAML_BYTES, "a YAML file"), path)
    loader = _BoundedLoader(text)
    loader.name = str(path)  # PyYAML's marks name the stream: the file, not "<unicode string>"
    try:
        return loader.get_single_data()
    except SchemaError as exc:
        raise SchemaError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())  # PyYAML's message spans lines (problem, then the mark)
        raise SchemaError(f"{path}: not valid YAML: {detail}") from None
    finally:
        loader.dispose()


#: the largest JSON file resegzoo reads that it did not write (a model's config: a few kB)
MAX_JSON_BYTES = 16 * 1024 * 1024


def load_json(path: str | Path, what: str = "a JSON file", limit: int = MAX_JSON_BYTES) -> Any:
    """A JSON file the user (or a model folder) brings, read whole only when it is a regular file
    of at most ``limit`` bytes, as UTF-8: anything else is a SchemaError naming the file and why
    (a 3 GB config.json is one line, not a MemoryError)."""
    import json

    path = Path(path)
    text = decode_utf8(read_user_file(path, limit, what), path)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SchemaError(f"{path}: not a readable JSON file ({exc})") from None


def read_user_file(path: str | Path, limit: int, what: str) -> bytes:
    """The bytes of a file the user names (a recipe, a vocabulary, templates): a regular file (a
    link to one is fine) of at most ``limit`` bytes, opened without blocking, so a FIFO, a device or
    a folder is a one-line SchemaError instead of a read that never ends (``what``: ``a YAML file``)."""
    import os
    import stat

    from resegzoo.errors import file_kind

    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise SchemaError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SchemaError(f"{path}: is a folder, not {what}") from None
    except OSError as exc:
        raise SchemaError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise SchemaError(f"{path}: is {file_kind(mode)}, not {what}; give a regular file")
        with os.fdopen(os.dup(fd), "rb") as fh:
            raw = fh.read(limit + 1)
    finally:
        os.close(fd)
    if len(raw) > limit:
        raise SchemaError(f"{path}: larger than {limit // (1024 * 1024)} MB; not {what} resegzoo reads")
    return raw


def decode_utf8(raw: bytes, path: str | Path) -> str:
    """``raw`` as UTF-8 text (a BOM allowed), or a SchemaError naming the file and the offset."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SchemaError(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                          "save it as UTF-8") from None
