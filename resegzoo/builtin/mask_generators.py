"""Built-in mask generators (filled by the segmenter work)."""
from __future__ import annotations

from resegzoo.hookspecs import hookimpl


@hookimpl
def resegzoo_register_mask_generators(register):
    return None
