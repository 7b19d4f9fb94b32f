"""``resegzoo eval``: mIoU of one or several settings on a benchmark dataset, resumable."""
from __future__ import annotations

import click

from resegzoo.cli import user_error
from resegzoo.cli.options import PRECISION_OPTION, THREADS_OPTION
from resegzoo.errors import EXIT_INTERRUPTED
from resegzoo.engines import engine_options


@click.command("eval")
@click.option("--dataset", "dataset_name", required=True, metavar="NAME",
              help="Dataset name (see `resegzoo list datasets`): openearthmap, loveda, isaid, potsdam, vaihingen, "
                   "uavid, udd5, vdd, or generic for a folder with a classes.yaml (docs/datasets.md); change "
                   "detection: levir-cd, whu-cd, s2looking, change-generic (docs/change.md).")
@click.option("--root", required=True, type=click.Path(file_okay=False, path_type=str),
              help="The dataset's folder, in its authors' release layout or mmsegmentation's converted layout.")
@click.option("--split", default=None, metavar="SPLIT",
              help="Split to evaluate (default: the dataset's evaluation split, e.g. val; test for UAVid and VDD).")
@click.option("--classes", "classes_file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="generic and change-generic datasets only: the classes YAML (default: ROOT/classes.yaml).")
@click.option("--recipe", "recipes", multiple=True, metavar="FILE|NAME",
              help="Segmentation recipe (YAML path, or a shipped name such as eval-default). Repeat to compare "
                   "several recipes in one table. Default: the dataset's evaluation recipe (eval-default: the peers' "
                   "protocol, fit into 448 x 448, 224 px windows, stride 112).")
@click.option("--model", "models", multiple=True, metavar="SPEC",
              help="Model of the method's kind (CLIP, SAM 3, ...): zoo name (`resegzoo list models`), checkpoint "
                   "path, local-dir:DIR or hf-hub:ORG/REPO. Repeat to compare models. Default: the recipe's `model:`.")
@click.option("--masks", "masks", multiple=True, metavar="NAME",
              help="Mask generator (see `resegzoo list masks`). Repeat to compare. Default: the recipe's.")
@click.option("--method", "methods", multiple=True, metavar="NAME",
              help="Segmentation method (see `resegzoo list methods`): clip (the CLIP pipeline) or a plugin's. "
                   "Repeat to compare. Default: the recipe's `method:` (clip).")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="Evaluate only the first N images (in sorted order) of the split.")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False, path_type=str),
              help="Output folder (default: ./eval-DATASET-SPLIT). Holds results.md, results.json, per_class.csv "
                   "and runs/<run>/ with per-image results and overlays. Rerunning the same command resumes.")
@click.option("--device", default="cpu", show_default=True, help="Torch device, e.g. cuda or cuda:1.")
@click.option("--overlays", type=click.IntRange(min=0), default=4, show_default=True,
              help="Save image | prediction | ground-truth overlays for this many images per run.")
@click.option("--dataset-settings/--no-dataset-settings", default=True, show_default=True,
              help="Let the dataset's own settings (e.g. the background threshold peers use for it) fill in "
                   "what a recipe does not set; a setting the recipe states always wins.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@PRECISION_OPTION
@THREADS_OPTION
@engine_options
def eval_command(dataset_name, root, split, classes_file, recipes, models, masks, methods, limit, out_dir, device,
                 overlays, dataset_settings, quiet, precision, threads, engine):
    """Evaluate segmentation settings on DATASET at ROOT and write a table of mIoU, accuracy and F1.

    Every finished image is stored at once, so an interrupted run (crash, Ctrl-C) continues where
    it stopped when the same command is run again. Results of different settings go to different
    run folders and are never mixed. With several --recipe/--model/--masks/--method, every
    combination is evaluated and the table has one row per combination (an ablation).

    \b
    Example:
      resegzoo eval --dataset vaihingen --root data/vaihingen --model remoteclip-vit-l-14 --masks sam
    """
    from pathlib import Path

    from resegzoo.api import ModelLoadError, Segmenter
    from resegzoo.engines import open_engine
    from resegzoo.eval.ablation import plan_runs
    from resegzoo.eval.datasets import DatasetError
    from resegzoo.eval.report import markdown, write_reports
    from resegzoo.eval.change import eval_run_class
    from resegzoo.runtime.preflight import check_device, check_output_folder
    from resegzoo.plugins.registry import RegistryError, get_registry
    from resegzoo.schema import SchemaError

    from resegzoo.runtime.precision import set_threads

    set_threads(threads)
    from resegzoo.methods.base import MethodError

    user_errors = (DatasetError, SchemaError, ModelLoadError, RegistryError, MethodError)
    try:
        spec = get_registry().datasets.get(dataset_name)
    except RegistryError as exc:
        raise click.UsageError(str(exc)) from None
    options = {}
    if classes_file is not None:
        if dataset_name not in ("generic", "change-generic"):
            raise click.UsageError("--classes is for --dataset generic and change-generic only; built-in datasets "
                                   "bring their classes")
        options["classes"] = classes_file
    check_device(device)  # once, before any run is planned
    try:
        dataset = spec.factory(root, split=split, **options)
        runs = plan_runs(dataset.info, recipes, models, masks, dataset_settings=dataset_settings, methods=methods,
                         device=device)
        if precision is not None:  # part of each run's settings: another precision, another run folder
            runs = [with_precision(run, precision) for run in runs]
    except user_errors as exc:
        raise user_error(exc) from None
    out = Path(out_dir or f"eval-{dataset.info.name}-{dataset.split or 'all'}")
    check_output_folder(out)  # before any model loads: a bad --out must not cost the computing

    def make_segmenter(run):
        try:
            segmenter = Segmenter.from_spec(run.segmenter)  # checked by plan_runs: built, not checked again
        except (ValueError, *user_errors) as exc:
            raise user_error(exc, f"run {run.label!r} (recipe {run.recipe_source}): ") from None
        for note in segmenter.notes + segmenter.cache_notes:
            click.secho(f"note: run {run.label!r}: {note}", fg="yellow", err=True)
        return segmenter

    results = []
    current = None
    try:
        with open_engine(engine.logging_into(out)) as evaluate:
            for run in runs:
                current = eval_run_class(dataset)(dataset, run, out)
                results.append(current.run(make_segmenter, limit=limit, overlays=overlays, progress=not quiet,
                                           engine=evaluate, say=lambda line: click.echo(line, err=True)))
            for line in evaluate.report():
                click.echo(line, err=True)
    except KeyboardInterrupt:
        if current is not None:
            done = len(list(current.confusion_dir.glob("*.npy")))
            click.echo(f"\ninterrupted: {done} finished image(s) of run {current.spec.label!r} are kept in "
                       f"{current.run_dir}; run the same command again to continue", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except user_errors as exc:
        raise user_error(exc) from None
    paths = write_reports(out, dataset, results)
    click.echo(markdown(dataset, results))
    click.echo(f"wrote {paths['markdown']}, {paths['json']}, {paths['csv']}")


def with_precision(run, precision: str):
    """``run`` with its recipe's inference.precision set to ``precision``."""
    import dataclasses

    inference = dataclasses.replace(run.recipe.inference, precision=precision)
    return dataclasses.replace(run, recipe=dataclasses.replace(run.recipe, inference=inference))


COMMANDS = [eval_command]
