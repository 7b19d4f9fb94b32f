"""How to build a segmenter, checked once: the recipe, the model, the mask generator, the device.

:meth:`SegmenterSpec.check` runs every check that needs no model (the method against the model and
the mask generator, :func:`resegzoo.methods.base.check_method`; the device,
:func:`resegzoo.runtime.preflight.check_device`) and returns the spec the rest of a run hands
around: the API builds its segmenter from it, eval runs carry it, Ray actors receive it and build
their own copy (:meth:`resegzoo.segmenter.core.Segmenter.from_spec`), none of them checking again.
:meth:`SegmenterSpec.resolve` resolves the model spec once, after the checks and before any model
loads; the resolved model travels in the spec.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SegmenterSpec:
    """The arguments of ``Segmenter.from_recipe`` as one picklable record.

    ``model`` is the model spec as the user gave it (a zoo name, ``hf-hub:``, ``local-dir:``, a
    folder or a file), for messages and sidecars; ``resolved`` is that spec resolved once by the
    model route (``resegzoo.weights.zoo.ResolvedModel``: kind, source, files, fingerprint;
    :meth:`resolve`), which the process and every Ray actor build from: nothing reads the spec
    string again. ``settings`` is the recipe's ``method.settings`` parsed by the check: a spec
    made by hand (``settings`` None) is checked when it is built, one made by :meth:`check` is not."""

    #: the recipe as the check settled it (its ``method``, and ``masks: none`` for a method that reads none)
    recipe: Any
    model: str | None
    masks: str | None
    device: str = "cpu"
    #: open_clip architecture of a bare checkpoint file (``--arch``)
    architecture: str | None = None
    settings: Any = None
    #: the model resolved once (None: not yet, or a method without a model)
    resolved: Any = None

    @classmethod
    def check(cls, recipe: Any = None, model: str | None = None, masks: str | None = None,
              method: str | None = None, device: str = "cpu", architecture: str | None = None,
              resolved: Any = None) -> "SegmenterSpec":
        """Check, before any model loads and without fetching anything, that the method
        (``method`` or the recipe's) runs with ``model`` and ``masks`` (or the recipe's) on
        ``device``; MethodError or DeviceError otherwise. ``resolved``: the model resolved before
        (its kind is checked against the method's)."""
        from resegzoo.methods.base import MethodError, check_method
        from resegzoo.runtime.preflight import check_device
        from resegzoo.segmenter.recipe import SegmentRecipe

        choice = check_method(recipe if recipe is not None else SegmentRecipe(), method=method,
                              model=resolved.spec if resolved is not None else model, masks=masks)
        if resolved is not None and resolved.kind != choice.spec.model:
            raise MethodError(f"model {resolved.spec!r} was resolved as a {resolved.kind} model; method "
                              f"{choice.spec.name!r} needs a {choice.spec.model} model")
        check_device(device)
        return cls(choice.recipe, choice.model, choice.masks, device, architecture, settings=choice.settings,
                   resolved=resolved)

    @property
    def checked(self) -> bool:
        return self.settings is not None

    def resolve(self) -> "SegmenterSpec":
        """This spec with its model resolved, once, as the kind the method needs
        (:func:`resegzoo.methods.base.resolve_method_model`: the route's resolve and fetch, the
        content fingerprint); itself when resolved already or without a model. A model of another
        kind, unknown or missing is a MethodError in one line, before any model loads."""
        if self.resolved is not None or not self.model:
            return self
        from resegzoo.methods.base import method_spec, resolve_method_model

        resolved = resolve_method_model(method_spec(self.recipe.method.name), self.model, self.architecture)
        return dataclasses.replace(self, resolved=resolved)

    def on_device(self, device: str) -> "SegmenterSpec":
        """The same setup on another device (a Ray actor given a GPU)."""
        return dataclasses.replace(self, device=device)
