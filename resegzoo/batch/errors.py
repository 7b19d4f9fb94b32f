"""The batch layer's input error (its own module: inputs.py and stac.py both raise it)."""
from __future__ import annotations

from resegzoo.errors import EXIT_USAGE, ResegzooError


class BatchInputError(ResegzooError):
    """An input argument that names no raster (no such file, an empty folder, a pattern that
    matches nothing, a STAC document without a usable asset): a usage error, before any work."""

    exit_code = EXIT_USAGE
