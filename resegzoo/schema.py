"""Strict loading of YAML/JSON mappings into typed dataclasses.

Every record and recipe in resegzoo goes through :func:`from_mapping`, so an unknown key, a missing
key or a wrong type is always an error that names the file and the key.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from resegzoo.errors import ResegzooError

T = TypeVar("T")


class SchemaError(ResegzooError, ValueError):
    """A mapping does not fit the record it should describe."""


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
        raise SchemaError(f"{where}: {value!r} is not of type {_type_name(tp)}")
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


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


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


def load_yaml(path: str | Path) -> Any:
    """Read one YAML document, turning parse errors into SchemaError that names the file."""
    path = Path(path)
    try:
        with path.open("r", encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError:
        raise SchemaError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise SchemaError(f"{path}: not valid YAML: {exc}") from exc
