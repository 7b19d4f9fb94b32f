"""The raster layer's one error: an input that is not a usable image."""
from __future__ import annotations

from resegzoo.errors import ResegzooError


class ImageError(ResegzooError, ValueError):
    """An input that is not a usable image; the message names the file and the problem."""
