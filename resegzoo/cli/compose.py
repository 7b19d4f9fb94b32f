"""``resegzoo compose``: average CLIP variants into one model folder (METHOD.md section 4)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def _load_recipe_argument(recipe_arg: str):
    from resegzoo.compose import load_recipe
    from resegzoo.schema import SchemaError
    from resegzoo.segmenter.recipe import resolve_recipe, shipped_recipes

    try:
        path = resolve_recipe(recipe_arg)
    except SchemaError:
        known = ", ".join(shipped_recipes()) or "none"
        raise click.UsageError(f"{recipe_arg!r} is neither a recipe file nor a built-in recipe (built-in: {known})") \
            from None
    return load_recipe(path)


def _parse_weights(text: str) -> list[float]:
    try:
        return [float(x) for x in text.replace(";", ",").split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r}: give numbers separated by commas, e.g. 0.5,0.3,0.2", param_hint="--weights") from None


def _recipe_from_flags(models: tuple[str, ...], weighting: str, weights: str | None, tau: float | None,
                       images: tuple[str, ...], architecture: str | None, classes: str | None):
    from resegzoo.compose import recipe_from_mapping

    if len(models) < 1:
        raise click.UsageError("give a recipe (file or built-in name) or at least one --model")
    params: dict[str, Any] = {}
    if weights is not None:
        if weighting != "manual":
            raise click.UsageError("--weights is for --weighting manual")
        params["weights"] = _parse_weights(weights)
    elif weighting == "manual":
        raise click.UsageError("--weighting manual needs --weights, e.g. --weights 0.5,0.5")
    if tau is not None:
        params["tau"] = tau
    if images:
        params["images"] = list(images)
    data: dict[str, Any] = {"inputs": list(models), "weighting": {"strategy": weighting, "params": params}}
    if architecture:
        data["architecture"] = architecture
    if classes:
        data["vocabulary"] = {"classes": [c.strip() for c in classes.split(";") if c.strip()]}
    return recipe_from_mapping(data, where="command line")


def _table(result) -> str:
    names = list(result.weighting.scores)
    header = ["model", "weight", *names, "sha256"]
    rows = [
        [item.label, f"{w:.4f}", *[f"{result.weighting.scores[n][i]:.4f}" for n in names], item.sha256[:12]]
        for i, (item, w) in enumerate(zip(result.inputs, result.weighting.weights))
    ]
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    fmt = lambda r: "  ".join(str(v).ljust(wd) for v, wd in zip(r, widths))
    lines = [fmt(header), fmt(["-" * wd for wd in widths]), *map(fmt, rows)]
    if result.distances.pairs:
        lines.append("")
        lines.append("relative L2 distance between inputs:")
        lines += [f"  {a} / {b}: {d:.4f}" for (a, b), d in result.distances.pairs.items()]
        lines.append("farthest blocks:")
        lines += [f"  {blk}  {a} / {b}: {d:.4f}" for blk, a, b, d in result.distances.farthest_blocks(5)]
    return "\n".join(lines)


@click.command("compose")
@click.argument("recipe", required=False)
@click.option("--model", "models", multiple=True, metavar="SPEC",
              help="An input model (repeat for each): registry name, checkpoint file, folder, local-dir:DIR or "
                   "hf-hub:ORG/REPO. Use instead of a RECIPE.")
@click.option("--weighting", default="uniform", show_default=True,
              help="Weighting strategy with --model: uniform, manual, prompt-quality, image-agreement "
                   "(`resegzoo list weightings`).")
@click.option("--weights", metavar="W1,W2,..", help="Weights for --weighting manual, one per --model; normalised to sum 1.")
@click.option("--tau", type=float, help="Softmax temperature for prompt-quality / image-agreement (default 0.05).")
@click.option("--images", multiple=True, type=click.Path(exists=True),
              help="Unlabelled image file or folder for --weighting image-agreement (repeatable).")
@click.option("--classes", help='Vocabulary the prompt-based strategies score with, e.g. "building; road; tree".')
@click.option("--architecture", metavar="NAME",
              help="open_clip architecture of bare checkpoint files, e.g. ViT-L-14-quickgelu.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (open_clip layout). Overrides the recipe's `output`.")
@click.option("--dtype", type=click.Choice(["same", "fp32", "fp16", "bf16"]),
              help="dtype of the averaged floating tensors (default: the recipe's, else same as the inputs).")
@click.option("--force", is_flag=True, help="Replace an existing output folder (only once the new one is complete).")
@click.option("--dry-run", is_flag=True, help="Only resolve, check and score the inputs and measure their distances; write nothing.")
@click.option("--device", default="cpu", show_default=True, help="Device for scoring models (cpu, cuda).")
def compose_command(recipe: str | None, models: tuple[str, ...], weighting: str, weights: str | None,
                    tau: float | None, images: tuple[str, ...], classes: str | None, architecture: str | None,
                    out: Path | None, dtype: str | None, force: bool, dry_run: bool, device: str) -> None:
    """Average CLIP models of one architecture into one open_clip model folder.

    RECIPE is a recipe YAML file or a built-in recipe name (reseg-clip-l14: RemoteCLIP + GeoRSCLIP +
    SkyCLIP ViT-L-14, prompt-quality weighting). Without a recipe, give the inputs with --model.

    \b
    Examples:
      resegzoo compose reseg-clip-l14 --out reseg-clip-l14/
      resegzoo compose --model a.pt --model b.pt --architecture ViT-B-16 --out soup/
      resegzoo compose --model a/ --model b/ --weighting manual --weights 0.7,0.3 --out soup/
    """
    import warnings

    from resegzoo.compose import CompositionError, DistanceWarning, compose
    from resegzoo.weights.zoo import FetchError
    from resegzoo.runtime.preflight import check_device, check_output_folder
    from resegzoo.plugins.registry import RegistryError
    from resegzoo.schema import SchemaError

    try:
        if recipe is not None:
            if models:
                raise click.UsageError("give either a RECIPE or --model options, not both")
            the_recipe = _load_recipe_argument(recipe)
            if architecture:
                the_recipe.architecture = architecture
        else:
            the_recipe = _recipe_from_flags(models, weighting, weights, tau, images, architecture, classes)
        if dtype is not None:
            the_recipe.dtype = dtype
        check_device(device)
        target = out if out is not None else the_recipe.output
        if target is not None and not dry_run:
            check_output_folder(Path(target).parent)  # before any model loads
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DistanceWarning)  # printed below, once, in plain words
            result = compose(the_recipe, out, force=force, dry_run=dry_run, device=device)
    except (CompositionError, SchemaError, RegistryError, FetchError, ValueError, FileNotFoundError) as exc:
        from resegzoo.cli import user_error

        raise user_error(exc) from exc
    click.echo(_table(result))
    for message in result.distances.warnings():
        click.secho(f"warning: {message}", fg="yellow", err=True)
    if dry_run:
        click.echo("dry run: inputs checked and scored, nothing written")
    else:
        click.echo(f"wrote {result.output} (load it with --model {result.output} or open_clip 'local-dir:{result.output}')")


COMMANDS = [compose_command]
