"""An example resegzoo plugin: copy this package to start your own.

It registers, through resegzoo's hooks (``resegzoo.plugin`` holds everything a plugin imports; see
resegzoo's docs/plugins.md):

* the CLIP variant ``example-tiny``: a tiny random open_clip model (a few MB) whose weights are
  generated from a fixed seed and saved into resegzoo's cache the first time they are needed, so it
  works offline. It is useless for real segmentation but makes the quick start run in seconds.
* the mask generator ``example-grid``: square segments of a regular grid at several scales.

Hook implementations only *register* things; nothing heavy happens at import time.
"""
from __future__ import annotations

from resegzoo.plugin import hookimpl
from resegzoo_example.grid import GridMaskGenerator
from resegzoo_example.tiny import TINY_VARIANT_NAME, tiny_variant

__all__ = ["GridMaskGenerator", "TINY_VARIANT_NAME", "resegzoo_register_mask_generators",
           "resegzoo_register_variants"]


@hookimpl
def resegzoo_register_variants(register):
    register(tiny_variant())


@hookimpl
def resegzoo_register_mask_generators(register):
    from resegzoo.plugin import MaskGeneratorSpec

    register(MaskGeneratorSpec(
        name="example-grid",
        factory=GridMaskGenerator,
        description="square grid segments at several scales (example plugin; no weights)",
    ))
