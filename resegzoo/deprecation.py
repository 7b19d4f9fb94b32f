"""Old import paths kept working after a move: each use warns (DeprecationWarning naming the new path).

Public interfaces are contracts (module paths a plugin or a script imports included), so a module
or a name that moves leaves an alias behind:

* a whole module: the old file holds only ``alias_module(__name__, "resegzoo.new.path")``; importing
  the old path warns once and gives the new module itself (the same object, so monkeypatching
  through the old path still patches what runs);
* names that left a module that stays: ``__getattr__ = moved_names(__name__, {"name": "resegzoo.new"})``
  at the module's end; reading such a name warns and gives the object from its new module.
"""
from __future__ import annotations

import importlib
import sys
import warnings
from typing import Any, Callable, Mapping


def alias_module(old: str, new: str) -> None:
    """Make module ``old`` (call this from its own body) the module ``new``, after a warning."""
    warnings.warn(f"{old} moved to {new}; import it from there (the old path will be removed)",
                  DeprecationWarning, stacklevel=3)
    sys.modules[old] = importlib.import_module(new)


def moved_names(module: str, moved: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for names that moved away: ``moved[name]`` is the module holding it now."""

    def __getattr__(name: str) -> Any:
        if name not in moved:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(f"{module}.{name} moved to {moved[name]}.{name}; import it from there (the old path "
                      "will be removed)", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(moved[name]), name)

    return __getattr__
