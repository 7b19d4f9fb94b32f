"""The plugin manager: built-in features and third-party entry points, loaded the same way."""
from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
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
    #: why, on one line: the exception's type and the first line of its message
    error: str
    #: where in the plugin's own code it failed ("file, line N"), when the traceback passes through it
    where: str = ""


@dataclass
class PluginReport:
    """What happened while loading plugins; kept beside the manager for ``resegzoo plugins``."""

    broken: list[BrokenPlugin] = field(default_factory=list)
    distributions: dict[str, tuple[str, str]] = field(default_factory=dict)  # plugin -> (dist, version)
    #: plugin -> the deprecation warnings resegzoo gave it while it loaded and registered (old module paths)
    deprecated: dict[str, list[str]] = field(default_factory=dict)


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (a message of several lines is cut to its first)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    more = " ..." if len(text.splitlines()) > 1 else ""
    return f"{type(exc).__name__}: {first}{more}" if first else type(exc).__name__


def plugin_frame(exc: BaseException, module: str) -> str:
    """The innermost place of ``exc``'s traceback in the plugin's own code (modules named ``module`` or
    below it), as ``file, line N``; a syntax error in it: the file and line it names. Empty if none."""
    top = module.split(".")[0]
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return f"{exc.filename}, line {exc.lineno}"
    where = ""
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__", "")
        if name == top or name.startswith(top + "."):
            where = f"{tb.tb_frame.f_code.co_filename}, line {tb.tb_lineno}"
        tb = tb.tb_next
    return where


class PluginManager(pluggy.PluginManager):
    report: PluginReport

    def mark_broken(self, name: str, origin: str, exc: BaseException, module: str = "") -> None:
        msg = one_line(exc)
        where = plugin_frame(exc, module) if module else ""
        self.report.broken.append(BrokenPlugin(name, origin, msg, where))
        at = f" (at {where})" if where else ""
        warnings.warn(f"resegzoo plugin {name!r} ({origin}) failed and was skipped: {msg}{at}", stacklevel=3)

    def note_deprecations(self, name: str, caught: list[warnings.WarningMessage]) -> None:
        """Keep the warnings resegzoo gave plugin ``name`` for ``resegzoo plugins``, and pass every caught
        warning on as if it had not been caught (the filters in force decide whether it shows)."""
        for w in caught:
            if issubclass(w.category, DeprecationWarning) and str(w.message).startswith("resegzoo."):
                notes = self.report.deprecated.setdefault(name, [])
                note = f"{w.message} ({w.filename}, line {w.lineno})"
                if note not in notes:
                    notes.append(note)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


@contextmanager
def caught_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record every warning raised inside (DeprecationWarnings too, which Python hides by default);
    hand them to :meth:`PluginManager.note_deprecations` afterwards."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


#: entry-point module -> the deprecation notes its first import gave (a module is imported once per process)
_IMPORT_DEPRECATIONS: dict[str, list[str]] = {}


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
        if dist is not None:
            pm.report.distributions[ep.name] = (dist.name, dist.version)
        module = ep.value.split(":")[0].strip()
        fresh = module not in sys.modules
        try:
            with caught_warnings() as caught:
                plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # a broken third-party plugin must not take resegzoo down
            pm.mark_broken(ep.name, origin, exc, module)
            continue
        finally:
            pm.note_deprecations(ep.name, caught)
        # A module imported before (another manager in this process) warns no more: keep what it got then.
        if fresh:
            _IMPORT_DEPRECATIONS[module] = list(pm.report.deprecated.get(ep.name, []))
        else:
            for note in _IMPORT_DEPRECATIONS.get(module, []):
                pm.report.deprecated.setdefault(ep.name, []).append(note)
