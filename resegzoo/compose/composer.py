"""The composition pipeline: resolve inputs, check them, weigh them, average them, write the folder."""
from __future__ import annotations

import dataclasses
import os
import warnings
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resegzoo.compose.checks import check_compatible
from resegzoo.compose.distance import DistanceMeter, DistanceReport
from resegzoo.compose.inputs import CompositionError, ResolvedInput, resolve_inputs
from resegzoo.compose.merge import merge_tensors, output_dtype
from resegzoo.compose.output import (
    check_writable,
    metadata_strings,
    write_output_folder,
)
from resegzoo.compose.recipe import Recipe, without_local_paths
from resegzoo.weights.st_io import SafetensorsFile, StreamingWriter
from resegzoo.compose.weighting import WeightingContext, WeightingResult, check_weights
from resegzoo.outputs.claims import claimed_output
from resegzoo.compose.weighting.models import (
    OPENAI_MEAN,
    OPENAI_STD,
    load_scoring_model,
)


#: the claim file of a composed folder ``.NAME.compose-claim``, apart from segment's stem claims
COMPOSE_CLAIM_SUFFIX = ".compose-claim"


class DistanceWarning(UserWarning):
    """Inputs that look like different initialisations (their average is likely broken)."""


@dataclass
class ComposeResult:
    recipe: Recipe
    inputs: list[ResolvedInput]
    weighting: WeightingResult
    distances: DistanceReport
    #: the output folder, None for a dry run
    output: Path | None
    summary: dict[str, Any] = field(default_factory=dict)


def make_strategy(recipe: Recipe, registry: Any = None) -> Any:
    """The weighting strategy the recipe names, with its parameters validated."""
    from resegzoo.plugins.registry import get_registry

    spec = (registry or get_registry()).weightings.get(recipe.weighting.strategy)
    return spec.factory(**recipe.weighting.params)


def _effective_params(strategy: Any, recipe: Recipe) -> dict[str, Any]:
    if dataclasses.is_dataclass(strategy) and not isinstance(strategy, type):
        return dataclasses.asdict(strategy)
    return dict(recipe.weighting.params)


def _open_clip_config(inputs: list[ResolvedInput]) -> dict[str, Any]:
    first = inputs[0]
    preprocess = dict(first.preprocess_cfg) or {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD)}
    config: dict[str, Any] = {"model_cfg": first.model_config, "preprocess_cfg": preprocess}
    if first.architecture:
        config["architecture"] = first.architecture
    return config


def compose(
    recipe: Recipe,
    out: str | Path | None = None,
    *,
    force: bool = False,
    dry_run: bool = False,
    device: str = "cpu",
    progress: bool = True,
    registry: Any = None,
) -> ComposeResult:
    """Average the recipe's inputs into an open_clip model folder at ``out`` (or ``recipe.output``).

    ``dry_run``: resolve, check and score the inputs and measure their distances; write nothing.
    """
    chosen = out if out is not None else recipe.output
    target = Path(chosen) if chosen is not None else None
    if not dry_run:
        if target is None:
            raise CompositionError("no output folder: give --out DIR (or `output:` in the recipe)")
        check_writable(target, force)  # before minutes of work, not after
    # held until the folder is in place: a second run into the same --out fails now instead of
    # replacing this one's result when it finishes
    with nullcontext() if target is None or dry_run else claimed_output(target, "compose", COMPOSE_CLAIM_SUFFIX):
        if target is not None and not dry_run:
            check_writable(target, force)  # again, now that no other run can be writing it
        result = _compose(recipe, target, force, dry_run, device, progress, registry)
    return result


def _compose(recipe: Recipe, target: Path | None, force: bool, dry_run: bool, device: str, progress: bool,
             registry: Any) -> ComposeResult:
    from resegzoo import __version__

    strategy = make_strategy(recipe, registry)
    inputs = resolve_inputs(recipe, progress)
    labels = [i.label for i in inputs]
    with ExitStack() as stack:
        files = [stack.enter_context(SafetensorsFile(i.weights)) for i in inputs]
        keys = check_compatible(inputs, files)
        context = WeightingContext(labels, recipe.vocabulary, lambda i: load_scoring_model(inputs[i], device), device)
        result = strategy(context)
        if len(result.weights) != len(inputs):
            raise CompositionError(
                f"strategy {recipe.weighting.strategy!r} gave {len(result.weights)} weights for {len(inputs)} inputs"
            )
        check_weights(result.weights)
        # the parameters in effect, defaults included, in the published recipe (recipe.yaml) as in the
        # card and the metadata: all three say the same, and the recipe reproduces the model even
        # if a default changes later
        params = without_local_paths(_effective_params(strategy, recipe))
        published = recipe.published_dict([i.public_spec for i in inputs])
        published["weighting"] = dict(published["weighting"], params=params)
        summary: dict[str, Any] = {
            "resegzoo_version": __version__,
            "recipe": published,
            "architecture": inputs[0].architecture,
            "inputs": [i.describe() for i in inputs],
            "weighting": {"strategy": recipe.weighting.strategy, "params": params},
            "weights": list(result.weights),
            "scores": result.scores,
        }
        meter = DistanceMeter(labels, recipe.distance_warning)
        merge_args = {"files": files, "labels": labels, "keys": keys, "weights": result.weights,
                      "dtype_choice": recipe.dtype, "meter": meter, "progress": progress}
        if dry_run:
            merge_tensors(emit=None, **merge_args)
        else:
            layout = [(k, output_dtype(files[0].tensors[k].dtype, recipe.dtype), files[0].tensors[k].shape) for k in keys]

            def write_weights(path: Path) -> None:
                with path.open("wb") as fh:
                    writer = StreamingWriter(fh, layout, metadata_strings(summary))
                    merge_tensors(emit=writer.write_part, **merge_args)
                    writer.close()
                    fh.flush()
                    os.fsync(fh.fileno())
                summary["distances"] = meter.report().to_dict()

            def make_card() -> Any:
                from resegzoo.compose.card import build_card

                return build_card(summary)

            assert target is not None  # checked above for every non-dry run
            write_output_folder(target, force, write_weights, _open_clip_config(inputs), summary["recipe"], make_card)
    report = meter.report()
    summary["distances"] = report.to_dict()
    for message in report.warnings():
        warnings.warn(message, DistanceWarning, stacklevel=2)
    return ComposeResult(recipe, inputs, result, report, None if dry_run else target, summary)
