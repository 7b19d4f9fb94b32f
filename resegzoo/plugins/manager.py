"""The plugin manager: built-in features and third-party entry points, loaded the same way."""
from __future__ import annotations

import importlib
import os
import warnings
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from resegzoo.plugins import hookspecs

ENTRY_POINT_GROUP = "resegzoo"
#: Set to 1 to load only the built-in plugins (no third-party entry points).
DISABLE_ENV = "RESEGZOO_DISABLE_PLUGIN_AUTOLOAD"

#: Built-in features, registered exactly like third-party plugins.
BUILTIN_PLUGINS = (
    "resegzoo.builtin.commands",
    "resegzoo.builtin.models",
    "resegzoo.builtin.mask_generators",
    "resegzoo.builtin.methods",
    "resegzoo.builtin.weightings",
    "resegzoo.builtin.datasets",
)


@dataclass
class BrokenPlugin:
    name: str
    origin: str
    error: str


@dataclass
class PluginReport:
    """What happened while loading plugins; kept beside the manager for ``resegzoo plugins``."""

    broken: list[BrokenPlugin] = field(default_factory=list)
    distributions: dict[str, tuple[str, str]] = field(default_factory=dict)  # plugin -> (dist, version)


class PluginManager(pluggy.PluginManager):
    report: PluginReport

    def mark_broken(self, name: str, origin: str, exc: BaseException) -> None:
        msg = f"{type(exc).__name__}: {exc}"
        self.report.broken.append(BrokenPlugin(name, origin, msg))
        warnings.warn(f"resegzoo plugin {name!r} ({origin}) failed and was skipped: {msg}", stacklevel=3)


def _env_disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def get_plugin_manager(load_entrypoints: bool | None = None) -> PluginManager:
    """A fresh plugin manager with the built-ins and (unless disabled) third-party plugins."""
    pm = PluginManager("resegzoo")
    pm.report = PluginReport()
    pm.add_hookspecs(hookspecs)
    for modname in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(modname), name=modname)
    if load_entrypoints is None:
        load_entrypoints = not _env_disabled()
    if load_entrypoints:
        _load_entrypoints(pm)
    return pm


def _load_entrypoints(pm: PluginManager) -> None:
    # pluggy's load_setuptools_entrypoints stops at the first plugin that raises; we want the
    # rest to keep working, so load each entry point ourselves and record failures.
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.is_blocked(ep.name):
            continue
        dist = getattr(ep, "dist", None)
        origin = f"entry point {ep.value}" + (f" of {dist.name}" if dist else "")
        if pm.get_plugin(ep.name) is not None:
            # Two distributions chose the same plugin name: keep the first, report the other.
            first = pm.report.distributions.get(ep.name, ("resegzoo", ""))[0]
            taken = RuntimeError(f"plugin name {ep.name!r} is already used by {first}; rename one entry point")
            pm.mark_broken(f"{ep.name} ({dist.name if dist else ep.value})", origin, taken)
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # a broken third-party plugin must not take resegzoo down
            pm.mark_broken(ep.name, origin, exc)
            continue
        if dist is not None:
            pm.report.distributions[ep.name] = (dist.name, dist.version)
