"""Built-in weighting strategies for model composition (filled by the composition work)."""
from __future__ import annotations

from resegzoo.hookspecs import hookimpl


@hookimpl
def resegzoo_register_weightings(register):
    return None
