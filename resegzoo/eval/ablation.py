"""Ablations: several recipes, models, mask generators and methods over one dataset, one table.

``resegzoo eval --recipe a.yml --recipe b.yml --model m1 --model m2`` evaluates every combination
(recipes x models x masks x methods); each combination is one run (its own resumable folder) and one row.
Rows are labelled by what varies between them, so the table reads like the paper's ablation.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from resegzoo.eval.datasets import DatasetInfo
from resegzoo.eval.runner import RunSpec
from resegzoo.errors import same_kind
from resegzoo.plugins.registry import RegistryError
from resegzoo.schema import SchemaError
from resegzoo.segmenter.recipe import resolve_recipe  # here too: its older home (resegzoo segment imports it)


def _fill_in(defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` with the keys it lacks taken from ``defaults`` (nested mappings merged)."""
    out = dict(defaults)
    for key, value in given.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _fill_in(out[key], value)
        else:
            out[key] = value
    return out


def load_eval_recipe(path: Path, dataset_settings: Mapping[str, Any]) -> Any:
    """The recipe at ``path``, with the dataset's settings filling in what the file does not set.

    A setting the recipe file states (even as null) wins over the dataset's.
    """
    from resegzoo.segmenter.recipe import load_recipe
    from resegzoo.segmenter.recipe import read_recipe_data

    recipe = load_recipe(path)  # validates the file on its own, so errors name it
    if not dataset_settings:
        return recipe
    data = read_recipe_data(path)  # with its `base:` recipe merged in
    try:
        return load_recipe(None, **_fill_in(dataset_settings, data))
    except SchemaError as exc:
        raise SchemaError(f"{path} with the dataset's recipe_settings: {exc}") from exc


def _with_prompt_pool(info: DatasetInfo, classes: list[list[str]], recipe: Any, source: str) -> list[list[str]]:
    """The classes with the recipe's ``text.prompt_pool`` merged in (``dataset``: the dataset's own)."""
    from resegzoo.prompt_pools import PromptPoolError, expand_for

    try:
        return expand_for(classes, recipe.text.prompt_pool, info.prompt_pool, info.name)
    except PromptPoolError as exc:
        raise SchemaError(f"recipe {source}: text.prompt_pool: {exc}") from None


def _check_parts(choice: Any) -> None:
    """What a run needs besides its method (whose own checks, templates included, ran in
    check_method), checked with every other run before any model loads, so the one bad recipe of
    several is named at once: its mask generator's name."""
    from resegzoo.plugins.registry import get_registry

    get_registry().mask_generators.get(choice.masks)


def _label(parts: list[str], varying: list[bool]) -> str:
    chosen = [p for p, v in zip(parts, varying) if v]
    return " / ".join(chosen) if chosen else parts[1]


def plan_runs(info: DatasetInfo, recipes: Sequence[str], models: Sequence[Optional[str]],
              masks: Sequence[Optional[str]], dataset_settings: bool = True,
              methods: Sequence[Optional[str]] = (), device: str = "cpu") -> list[RunSpec]:
    """One RunSpec per combination of recipe x model x masks x method.

    ``recipes`` are paths or shipped names (empty: the dataset's default recipe). The dataset's
    ``recipe_settings`` (e.g. its background threshold) fill in what a recipe does not set,
    unless ``dataset_settings`` is False; a method with its own ``method_settings`` on the
    dataset gets those settings and its prompt names instead. A model, masks or method of None means the recipe's
    own. Each combination is checked (:func:`resegzoo.methods.base.check_method`) before any
    model loads: a method given a mask generator it does not read is an error here. Each model is
    resolved once (:func:`resegzoo.methods.base.resolve_method_model`: fetched, fingerprinted) for
    every run that uses it; a model of another kind than its method's is a MethodError here. Each run's
    segmenter is built on ``device`` (checked by the caller) without checking again.
    """
    from resegzoo.methods.base import MethodError, check_method, resolve_method_model

    from resegzoo.segmenter.recipe import load_recipe

    recipe_names = list(recipes) or [info.recipe]
    paths = [(name, resolve_recipe(name)) for name in recipe_names]
    own_methods = {name: load_recipe(path).method.name for name, path in paths}  # validates each file
    model_list = list(models) or [None]
    masks_list = list(masks) or [None]
    method_list = list(methods) or [None]
    varying = [len(recipe_names) > 1, len(model_list) > 1, len(masks_list) > 1, len(method_list) > 1]
    specs, labels = [], set()
    resolved: dict[tuple[str, str | None], Any] = {}  # each model spec resolved once, for every run
    for (source, path), model, mask, method in itertools.product(paths, model_list, masks_list, method_list):
        # a method with its own protocol on this dataset (method_settings) gets its own prompt
        # names and settings; the others the dataset's
        classes, settings = info.for_method(method or own_methods[source])
        recipe = load_eval_recipe(path, settings if dataset_settings else {})
        classes = _with_prompt_pool(info, classes, recipe, source)
        try:
            choice = check_method(recipe, method=method, model=model, masks=mask)
            _check_parts(choice)
        except (MethodError, SchemaError, RegistryError) as exc:  # a missing download stays a failure (exit 1)
            raise same_kind(SchemaError(f"recipe {source}: {exc}"), exc) from None
        label = _label([Path(source).stem, choice.model or "-", choice.masks, choice.recipe.method.name], varying)
        if label in labels:
            raise SchemaError(f"two runs would both be called {label!r}; give each --recipe/--model/--masks/--method "
                              "once")
        labels.add(label)
        key = (choice.model or "", choice.spec.model)
        if key not in resolved:  # before any model loads: a model of another kind is one line here
            resolved[key] = resolve_method_model(choice.spec, choice.model)
        specs.append(RunSpec(label=label, recipe=choice.recipe, model=choice.model or "", masks=choice.masks,
                             recipe_source=source, classes=None if classes == info.classes else classes,
                             resolved=resolved[key], device=device, method_settings=choice.settings))
    return specs
