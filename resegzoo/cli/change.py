"""``resegzoo change BEFORE AFTER``: open-vocabulary change detection between two dates."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from resegzoo.cli.options import PRECISION_OPTION, THREADS_OPTION, vocabulary_of
from resegzoo.engines import engine_options

PRESET_NAMES = ("levir-cd", "whu-cd", "s2looking")
RESAMPLING_NAMES = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode")


@click.command("change")
@click.argument("before")
@click.argument("after")
@click.option("--classes", help='Classes, ";" between classes and "," between synonyms: "building; tree; water". '
              "A class labelled background (or named by --background-class) is background, like pixels below "
              "--background-threshold; the rest are compared.")
@click.option("--vocab", "vocab_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A class file instead of --classes (.txt: one class per line; .yaml).")
@click.option("--method", help="A method with probabilities and image features (`resegzoo list methods --json`: "
              "outputs [features]): segearth-ov3 or proc-sam3. Default: the recipe's (method-segearth-ov3).")
@click.option("--model", help="The method's model: sam3 (gated: `resegzoo fetch sam3`), local-dir:DIR "
              "(save_pretrained's folder) or hf-hub:ORG/REPO. Default: the recipe's.")
@click.option("--recipe", "recipe_file", metavar="FILE|NAME", help="Segmentation recipe YAML or a shipped "
              "recipe's name. Default: method-segearth-ov3 (SAM 3's 1008 px windows at stride 504).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("change-out"),
              show_default=True, help="Output folder (created if missing).")
@click.option("--device", default="cpu", show_default=True, help="Torch device, e.g. cpu or cuda:0.")
@click.option("--preset", type=click.Choice(PRESET_NAMES), help="SegEarth-OV3's change settings for that "
              "dataset (levir-cd, whu-cd: background threshold 0.4, coverage 0.3; s2looking: 0.6, 0.1). "
              "Default: levir-cd's.")
@click.option("--background-threshold", type=float, help="A pixel whose best class score is below this (0..1) is "
              "background at that date (SegEarth-OV3's prob_thd). Overrides the preset.")
@click.option("--coverage", type=float, help="An object changed where less than this share of it (0..1) lies in "
              "the other date's objects, grown by 2 px. Overrides the preset.")
@click.option("--min-area", type=int, help="Objects smaller than this many pixels never count as changed "
              "(default 0).")
@click.option("--background-class", "background_classes", multiple=True, metavar="LABEL",
              help="A class (by label) that is background; repeat for several. Default: background.")
@click.option("--resampling", type=click.Choice(RESAMPLING_NAMES), default="bilinear", show_default=True,
              help="How AFTER is resampled onto BEFORE's grid when their grids differ (GDAL's warper).")
@click.option("--bands", help="Bands to use as R,G,B for both dates, counting from 1, e.g. 4,3,2.")
@click.option("--nodata", help="Pixel value that means 'no data' in both inputs; overrides the files' own.")
@click.option("--trust-vrt", is_flag=True, help="Let VRTs read what they reference (network, archives, raw bands).")
@click.option("--tile-size", type=int, help="Blocks of this many px per side (overrides the recipe; default 2048).")
@click.option("--window", type=int, help="Sliding-window side in px (overrides the recipe; default: the model's).")
@click.option("--vector-format", type=click.Choice(["gpkg", "geojson"]), default="gpkg", show_default=True,
              help="Format of the change polygons.")
@click.option("--overwrite", is_flag=True, help="Replace a result already in --out.")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors and warnings.")
@PRECISION_OPTION
@THREADS_OPTION
@engine_options
def change(before: str, after: str, classes: str | None, vocab_file: Path | None, method: str | None,
           model: str | None, recipe_file: str | None, out: Path, device: str, preset: str | None,
           background_threshold: float | None, coverage: float | None, min_area: int | None,
           background_classes: tuple[str, ...], resampling: str, bands: str | None, nodata: str | None,
           trust_vrt: bool, tile_size: int | None, window: int | None, vector_format: str, overwrite: bool,
           quiet: bool, precision: str | None, threads: int | None, engine: Any) -> None:
    """What changed between BEFORE and AFTER, two rasters of one place (anything GDAL opens), for the
    given classes: SegEarth-OV3's training-free rule on SAM 3 (docs/change.md).

    AFTER is read onto BEFORE's grid (any CRS, resolution or extent; they must overlap). Rasters of
    any size are processed block by block; objects crossing blocks are followed across them and the
    thresholds are taken over the whole raster. Writes into --out: change.tif (COG: 0 unchanged,
    1 changed, 255 nodata at either date), change.from.tif and change.to.tif (what each changed
    pixel was and became), change.gpkg (polygons: class before and after, area, the scores that
    decided), change.overlay.png (both dates, changes outlined) and change.json (settings, counts).
    An interrupted run continues from its finished blocks when run again.

    \b
    Example:
      resegzoo change 2019.tif 2023.tif --classes "building; tree; water" --model sam3 --out changes
    """
    from resegzoo.api import detect_change
    from resegzoo.change.run import DEFAULT_RECIPE
    from resegzoo.runtime.precision import set_threads
    from resegzoo.schema import SchemaError
    from resegzoo.segmenter.recipe import load_recipe, resolve_recipe

    set_threads(threads)
    vocab = vocabulary_of(classes, vocab_file)
    try:
        recipe = load_recipe(resolve_recipe(recipe_file or DEFAULT_RECIPE), tile_size=tile_size, window=window,
                             precision=precision)
    except SchemaError as exc:
        raise click.UsageError(f"bad recipe: {exc}") from None
    say = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    run = detect_change(before, after, vocab, out, recipe=recipe, model=model, method=method, device=device,
                        preset=preset, background_threshold=background_threshold, coverage=coverage,
                        min_area=min_area, background_classes=background_classes or None, resampling=resampling,
                        bands=bands, nodata=nodata, trust_vrt=trust_vrt, vector_format=vector_format,
                        overwrite=overwrite, engine=engine, say=say, progress=not quiet)
    if quiet or run.skipped:
        return
    pixels = run.record["pixels"]
    click.echo(f"{pixels['changed']:,} of {pixels['valid']:,} valid pixels changed "
               f"({100 * pixels['changed_fraction']:.2f}%), {run.record['polygons']} polygon(s)")
    for item in run.record["transitions"][:10]:
        click.echo(f"  {item['before']} -> {item['after']}: {item['pixels']:,} px")
    click.echo("wrote " + ", ".join(str(p) for p in run.files))



COMMANDS = [change]
