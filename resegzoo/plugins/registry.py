"""Collects what plugins register into typed tables: models (every kind of weights), mask generators,
methods, weightings, datasets."""
from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass, field
from typing import Any, Generic, Iterator, TypeVar

from resegzoo.errors import EXIT_USAGE, ResegzooError
from resegzoo.plugins.manager import BUILTIN_PLUGINS, PluginManager, caught_warnings, get_plugin_manager

T = TypeVar("T")


class RegistryError(ResegzooError, LookupError):
    """An unknown name, or two plugins registering the same name."""

    exit_code = EXIT_USAGE


class UnknownNameError(RegistryError, KeyError):
    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


@dataclass
class Table(Generic[T]):
    """Named entries of one kind, remembering which plugin registered each."""

    kind: str
    entries: dict[str, T] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, entry: T, plugin: str) -> None:
        if name in self.entries:
            raise RegistryError(
                f"{self.kind} {name!r} is registered twice: by plugin {self.owners[name]!r} "
                f"and by plugin {plugin!r}; uninstall or disable one of them"
            )
        self.entries[name] = entry
        self.owners[name] = plugin

    def get(self, name: str) -> T:
        try:
            return self.entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self.entries), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            known = ", ".join(sorted(self.entries)) or "none"
            raise UnknownNameError(f"unknown {self.kind} {name!r}{hint} (known: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.entries))

    def __len__(self) -> int:
        return len(self.entries)


@dataclass
class Registry:
    pm: PluginManager
    #: every model record (``resegzoo.weights.records.ModelRecord``), all kinds in one namespace
    models: Table[Any]
    mask_generators: Table[Any]
    methods: Table[Any]
    weightings: Table[Any]
    datasets: Table[Any]

    @property
    def variants(self) -> Table[Any]:
        """Earlier releases' table of CLIP variants: the clip records of :attr:`models` as
        ``ClipVariant`` views (``record.clip_variant()``), their owners kept. New code reads :attr:`models`."""
        table: Table[Any] = Table("CLIP variant")
        for name in self.models:
            record = self.models.entries[name]
            if record.kind == "clip":
                table.add(name, record.clip_variant(), self.models.owners[name])
        return table

    def table(self, kind: str) -> Table[Any]:
        return {
            "models": self.models,
            "variants": self.variants,
            "masks": self.mask_generators,
            "methods": self.methods,
            "weightings": self.weightings,
            "datasets": self.datasets,
        }[kind]


#: table -> (its hooks, what an entry is called in messages)
_HOOKS = {
    # earlier releases' CLIP-only hook feeds the same table: a ClipVariant becomes a clip record
    "models": (("resegzoo_register_models", "resegzoo_register_variants"), "model"),
    "mask_generators": (("resegzoo_register_mask_generators",), "mask generator"),
    "methods": (("resegzoo_register_methods",), "method"),
    "weightings": (("resegzoo_register_weightings",), "weighting strategy"),
    "datasets": (("resegzoo_register_datasets",), "dataset"),
}


def _as_model_record(entry: Any) -> Any:
    """What a plugin registered through the models hooks, as the table keeps it: an object with
    ``as_record()`` (earlier releases' ClipVariant) becomes its model record."""
    as_record = getattr(entry, "as_record", None)
    entry = as_record() if callable(as_record) else entry
    if not all(isinstance(getattr(entry, attr, None), str) for attr in ("name", "kind")):
        raise TypeError(f"registered {type(entry).__name__}, not a resegzoo ModelRecord (resegzoo.weights.records)")
    return entry


#: hooks of earlier releases, still called, and the hook that replaces each
_OLD_HOOKS = {"resegzoo_register_variants": "resegzoo_register_models"}
#: how a table takes what plugins register (default: as it is)
_ADAPT = {"models": _as_model_record}


def _collect(pm: PluginManager, hook_names: tuple[str, ...], kind: str, adapt: Any = None) -> Table[Any]:
    table: Table[Any] = Table(kind)
    # Call each implementation on its own so a name clash can name both plugins and a plugin
    # that raises is reported without losing the others' entries. Built-ins go first (a stable
    # sort keeps registration order otherwise), so on a clash the built-in entry is the one kept.
    impls = [(hook_name, impl) for hook_name in hook_names for impl in getattr(pm.hook, hook_name).get_hookimpls()]
    impls.sort(key=lambda pair: pair[1].plugin_name not in BUILTIN_PLUGINS)
    for hook_name, impl in impls:
        staged: list[Any] = []
        try:
            with caught_warnings() as caught:
                if hook_name in _OLD_HOOKS:  # recorded for `resegzoo plugins` like the old module paths
                    warnings.warn(f"resegzoo.plugins.hookspecs.{hook_name} is deprecated: implement "
                                  f"{_OLD_HOOKS[hook_name]} (it takes the same ClipVariant records, and "
                                  "resegzoo.plugin.ModelRecord of any kind)", DeprecationWarning, stacklevel=2)
                impl.function(register=staged.append)
                staged = [adapt(entry) for entry in staged] if adapt is not None else staged
        except Exception as exc:
            if impl.plugin_name in BUILTIN_PLUGINS:
                raise  # a bug or a typo in resegzoo's own registry/: never hide it
            pm.mark_broken(impl.plugin_name, f"hook {hook_name}", exc, getattr(impl.plugin, "__name__", ""))
            continue
        finally:
            pm.note_deprecations(impl.plugin_name, caught)
        for entry in staged:
            owner = table.owners.get(entry.name)
            if owner is not None and not (owner in BUILTIN_PLUGINS and impl.plugin_name in BUILTIN_PLUGINS):
                # A clash must not take every command down: keep the first registration, report
                # the later one like a broken plugin (both named) and go on.
                clash = RegistryError(f"{kind} {entry.name!r} is also registered by plugin {owner!r}, whose "
                                      f"entry is kept; rename it in plugin {impl.plugin_name!r} or uninstall one "
                                      "of the two")
                pm.mark_broken(impl.plugin_name, f"hook {hook_name}", clash)
                continue
            table.add(entry.name, entry, impl.plugin_name)  # a clash between built-ins is resegzoo's bug: raises
    return table


def build_registry(pm: PluginManager | None = None) -> Registry:
    """Ask every plugin for its entries. A plugin entry whose name is taken is skipped and reported
    (``pm.report.broken``); the first registration, a built-in's before any plugin's, is kept."""
    pm = pm or get_plugin_manager()
    tables = {attr: _collect(pm, hooks, kind, _ADAPT.get(attr)) for attr, (hooks, kind) in _HOOKS.items()}
    return Registry(pm=pm, **tables)


_default: Registry | None = None


def get_registry(refresh: bool = False) -> Registry:
    """The process-wide registry, built on first use (never at import time)."""
    global _default
    if _default is None or refresh:
        _default = build_registry()
    return _default
