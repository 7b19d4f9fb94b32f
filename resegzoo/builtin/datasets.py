"""Built-in evaluation datasets (filled by the evaluation work)."""
from __future__ import annotations

from resegzoo.hookspecs import hookimpl


@hookimpl
def resegzoo_register_datasets(register):
    return None
