"""Collects what plugins register into typed tables: variants, mask generators, methods, weightings, datasets."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Generic, Iterator, TypeVar

from resegzoo.errors import ResegzooError
from resegzoo.plugins.manager import BUILTIN_PLUGINS, PluginManager, caught_warnings, get_plugin_manager

T = TypeVar("T")


class RegistryError(ResegzooError, LookupError):
    """An unknown name, or two plugins registering the same name."""


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
    variants: Table[Any]
    mask_generators: Table[Any]
    methods: Table[Any]
    weightings: Table[Any]
    datasets: Table[Any]

    def table(self, kind: str) -> Table[Any]:
        return {
            "variants": self.variants,
            "masks": self.mask_generators,
            "methods": self.methods,
            "weightings": self.weightings,
            "datasets": self.datasets,
        }[kind]


_HOOKS = {
    "variants": ("resegzoo_register_variants", "CLIP variant"),
    "mask_generators": ("resegzoo_register_mask_generators", "mask generator"),
    "methods": ("resegzoo_register_methods", "method"),
    "weightings": ("resegzoo_register_weightings", "weighting strategy"),
    "datasets": ("resegzoo_register_datasets", "dataset"),
}


def _collect(pm: PluginManager, hook_name: str, kind: str) -> Table[Any]:
    table: Table[Any] = Table(kind)
    # Call each implementation on its own so a name clash can name both plugins and a plugin
    # that raises is reported without losing the others' entries. Built-ins go first (a stable
    # sort keeps registration order otherwise), so on a clash the built-in entry is the one kept.
    impls = sorted(getattr(pm.hook, hook_name).get_hookimpls(), key=lambda i: i.plugin_name not in BUILTIN_PLUGINS)
    for impl in impls:
        staged: list[Any] = []
        try:
            with caught_warnings() as caught:
                impl.function(register=staged.append)
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
    tables = {attr: _collect(pm, hook, kind) for attr, (hook, kind) in _HOOKS.items()}
    return Registry(pm=pm, **tables)


_default: Registry | None = None


def get_registry(refresh: bool = False) -> Registry:
    """The process-wide registry, built on first use (never at import time)."""
    global _default
    if _default is None or refresh:
        _default = build_registry()
    return _default
