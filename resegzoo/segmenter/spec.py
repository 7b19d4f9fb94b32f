"""How to build a segmenter, checked once: the recipe, the model, the mask generator, the device.

:meth:`SegmenterSpec.check` runs every check that needs no model (the method against the model and
the mask generator, :func:`resegzoo.methods.base.check_method`; the device,
:func:`resegzoo.runtime.preflight.check_device`) and returns the spec the rest of a run hands
around: the API builds its segmenter from it, eval runs carry it, Ray actors receive it and build
their own copy (:meth:`resegzoo.segmenter.core.Segmenter.from_spec`), none of them checking again.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SegmenterSpec:
    """The arguments of ``Segmenter.from_recipe`` as one picklable record.

    ``model`` is the model spec as the user gave it (a zoo name, ``hf-hub:``, ``local-dir:``, a
    folder or a file); the model route's resolved model takes its place once it carries one.
    ``settings`` is the recipe's ``method.settings`` parsed by the check: a spec made by hand
    (``settings`` None) is checked when it is built, one made by :meth:`check` is not."""

    #: the recipe as the check settled it (its ``method``, and ``masks: none`` for a method that reads none)
    recipe: Any
    model: str | None
    masks: str | None
    device: str = "cpu"
    #: open_clip architecture of a bare checkpoint file (``--arch``)
    architecture: str | None = None
    settings: Any = None

    @classmethod
    def check(cls, recipe: Any = None, model: str | None = None, masks: str | None = None,
              method: str | None = None, device: str = "cpu", architecture: str | None = None) -> "SegmenterSpec":
        """Check, before any model loads, that the method (``method`` or the recipe's) runs with
        ``model`` and ``masks`` (or the recipe's) on ``device``; MethodError or DeviceError otherwise."""
        from resegzoo.methods.base import check_method
        from resegzoo.runtime.preflight import check_device
        from resegzoo.segmenter.recipe import SegmentRecipe

        choice = check_method(recipe if recipe is not None else SegmentRecipe(), method=method, model=model,
                              masks=masks)
        check_device(device)
        return cls(choice.recipe, choice.model, choice.masks, device, architecture, settings=choice.settings)

    @property
    def checked(self) -> bool:
        return self.settings is not None

    def on_device(self, device: str) -> "SegmenterSpec":
        """The same setup on another device (a Ray actor given a GPU)."""
        return dataclasses.replace(self, device=device)
