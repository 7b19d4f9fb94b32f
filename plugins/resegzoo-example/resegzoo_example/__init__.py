"""An example resegzoo plugin: copy this package to start your own.

It registers, through resegzoo's hooks (``resegzoo.plugin`` holds everything a plugin imports; see
resegzoo's docs/plugins.md):

* the CLIP model ``example-tiny`` (a ``ModelRecord`` of kind ``clip``): a tiny random open_clip
  model (a few MB) whose weights are generated from a fixed seed and saved into resegzoo's cache the
  first time they are needed, so it works offline. It is useless for real segmentation but makes the quick start run in seconds.
* the mask generator ``example-grid``: square segments of a regular grid at several scales.

Hook implementations only *register* things; nothing heavy happens at import time.
"""
from __future__ import annotations

from resegzoo.plugin import hookimpl
from resegzoo_example.grid import GridMaskGenerator
from resegzoo_example.tiny import TINY_VARIANT_NAME, tiny_record

__all__ = ["GridMaskGenerator", "TINY_VARIANT_NAME", "resegzoo_register_mask_generators",
           "resegzoo_register_models"]


@hookimpl
def resegzoo_register_models(register):
    register(tiny_record())


@hookimpl
def resegzoo_register_mask_generators(register):
    from resegzoo.plugin import MaskGeneratorSpec

    register(MaskGeneratorSpec(
        name="example-grid",
        factory=GridMaskGenerator,
        description="square grid segments at several scales (example plugin; no weights)",
    ))
