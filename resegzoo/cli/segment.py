"""``resegzoo segment``: segment images and GeoTIFFs into the classes you name.

Option parsing only: the flags become one :class:`resegzoo.api.SegmentOptions` (checked by the
checker :func:`resegzoo.api.segment_files` uses too), which :func:`resegzoo.api.run_segment` runs
(the batch: inputs, output names and claims, units with the sidecar last, skip-existing, the engines).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from resegzoo.cli.gis_options import GisOutputs, gis_options
from resegzoo.cli.options import PRECISION_OPTION, THREADS_OPTION, vocabulary_of
from resegzoo.cli.stac_options import stac_options, stac_search
from resegzoo.engines import engine_options



def _sam_options(recipe: Any, masks: str | None, sam_checkpoint: str | None, device: str) -> tuple[Any, str | None]:
    """Fold --sam-checkpoint and --device into the recipe's SAM settings (SAM runs where CLIP runs)."""
    import dataclasses

    if sam_checkpoint and masks not in (None, "sam"):
        raise click.UsageError(f"--sam-checkpoint goes with --masks sam, not --masks {masks}")
    name = "sam" if sam_checkpoint else (masks or recipe.masks.generator)
    if name not in ("sam", "sam2"):
        return recipe, masks
    settings = dict(recipe.masks.settings) if recipe.masks.generator == name else {}
    if sam_checkpoint:
        settings["checkpoint"] = sam_checkpoint
    settings.setdefault("device", device)
    return dataclasses.replace(recipe, masks=dataclasses.replace(recipe.masks, generator=name, settings=settings)), name


@click.command("segment")
@click.argument("inputs", nargs=-1)
@click.option("--classes", help='Classes, ";" between classes and "," between synonyms: '
              '"building; road, street; tree; water". The first name of a class is its label.')
@click.option("--vocab", "vocab_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A class file instead of --classes: .txt (one class per line, synonyms separated by "
                   "commas) or .yaml (a list of names or lists of synonyms).")
@click.option("--model", help="Model of the method's kind (clip: a CLIP; segearth-ov3: SAM 3): a zoo name "
              "(`resegzoo list models`; sam3 is gated: `resegzoo fetch sam3`), a checkpoint file, a folder "
              "(`resegzoo compose`'s, save_pretrained's), local-dir:DIR or hf-hub:ORG/REPO. Default: the recipe's.")
@click.option("--masks", help="Mask generator giving the segments that restrict attention: slic, "
              "felzenszwalb, sam, none, or a plugin's (`resegzoo list masks`). Default: the recipe's (slic).")
@click.option("--method", help="Segmentation method (`resegzoo list methods`): clip (the CLIP pipeline: ReSeg-CLIP "
              "and the peer CLIP methods) or a plugin's. Default: the recipe's `method:` (clip).")
@click.option("--recipe", "recipe_file", metavar="FILE|NAME",
              help="Segmentation recipe YAML, or the name of a shipped one (`resegzoo list recipes`, e.g. "
                   "method-segearth-ov3); see registry/recipes/segment-default.yaml for every key.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("segment-out"),
              show_default=True, help="Output folder (created if missing).")
@click.option("--device", default="cpu", show_default=True, help="Torch device, e.g. cpu or cuda:0.")
@click.option("--bands", help="Bands to use as R,G,B, counting from 1, e.g. 4,3,2 (one band: grey). "
              "Default: 1,2,3.")
@click.option("--nodata", help="Pixel value that means 'no data' in the input (e.g. 0, -9999, nan); overrides "
              "the file's own. Default: the file's nodata value, internal mask or alpha band, and NaN.")
@click.option("--probs", type=click.Choice(["uint8", "float16"]), help="Also write IMG.probs.tif: one band per "
              "class, its probability as uint8 (0..255 = 0..1, nodata in the mask) or float16 (nodata NaN).")
@click.option("--recursive", is_flag=True, help="Look for rasters in subfolders of folder inputs too, "
              "and let ** in glob patterns reach into subfolders.")
@click.option("--arch", help="open_clip architecture of a bare checkpoint file, e.g. ViT-L-14-quickgelu.")
@click.option("--window", type=int, help="Sliding-window side in px (overrides the recipe; default: the model's).")
@click.option("--stride", type=int, help="Step between windows in px (overrides the recipe; default: half a window).")
@click.option("--short-side", type=int, help="Resize each image so its short side has this length first.")
@click.option("--tile-size", type=int, help="Rasters are segmented in blocks of this many px per side, each "
              "with a margin of context so the seams vanish (overrides the recipe; default 2048).")
@click.option("--templates", help="Prompt templates: reference, remote-sensing, imagenet, or a file with one "
              "template per line ({} = class name). Overrides the recipe; default: reference.")
@click.option("--prompt-pool", metavar="NAME|FILE", help="Several prompts per class: remote-sensing (the shipped "
              "union of the benchmark datasets' pools) or a file with one class a line, its name then its prompts "
              "(\"road, street, asphalt road\"). Each class whose name is a key gets that key's prompts as synonyms; "
              "the sidecar lists them. Any method. Default: the recipe's text.prompt_pool (none).")
@click.option("--background-threshold", type=float, help="Pixels whose top class probability is below this "
              "(0..1) get an extra last class 'background'. Default: off.")
@click.option("--sam-checkpoint", help="SAM weights for --masks sam: a .pth file or a zoo name (sam-vit-b, "
              "sam-vit-l, sam-vit-h; `resegzoo fetch NAME` downloads them). Implies --masks sam.")
@click.option("--overwrite", is_flag=True, help="Replace outputs already in --out instead of adding -2, -3 suffixes.")
@click.option("--skip-existing", is_flag=True, help="Skip inputs whose sidecar in --out already holds their result "
              "with the same settings; an interrupted raster continues from its finished blocks (rerun an "
              "interrupted batch with it to resume; either engine).")
@click.option("--continue-on-error", is_flag=True, help="On an input that cannot be read or segmented, go on with "
              "the rest; the failures are listed at the end and the exit status is 1.")
@click.option("--trust-vrt", is_flag=True, help="Let VRTs (and other files that point at other files) read what "
              "they reference: raw bands over any file, network (/vsicurl/, http, WMS) and archive (/vsizip/, ...) "
              "sources. Without it a VRT may only reference local raster files.")
@click.option("--stretch", default="batch", show_default=True, metavar="HOW",
              help="How data that is not 8-bit becomes 0..255: batch (one 2-98 percentile stretch over the valid "
                   "pixels of every input: tiles of one scene match), file (one per input), or given values: "
                   "LOW:HIGH for every band or L1:H1,L2:H2,L3:H3 per band (e.g. 0:3000).")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors and warnings: no progress, no per-input "
              "lines, no summary table.")
@gis_options
@stac_options
@PRECISION_OPTION
@THREADS_OPTION
@engine_options
def segment(inputs: tuple[str, ...], classes: str | None, vocab_file: Path | None, model: str | None,
            masks: str | None, method: str | None, recipe_file: str | Path | None, out: Path, device: str, bands: str | None,
            nodata: str | None, probs: str | None, recursive: bool, arch: str | None, window: int | None, stride: int | None, short_side: int | None,
            tile_size: int | None, templates: str | None, prompt_pool: str | None, background_threshold: float | None,
            sam_checkpoint: str | None, overwrite: bool, skip_existing: bool, continue_on_error: bool,
            trust_vrt: bool, stretch: str, quiet: bool, gis: GisOutputs, stac_url: str | None,
            collections: tuple[str, ...], bbox: str | None, stac_datetime: str | None, max_items: int | None,
            asset: str | None, precision: str | None, threads: int | None, engine: Any) -> None:
    """Segment IMAGE_OR_DIR_OR_GLOB... (anything GDAL opens: GeoTIFF, COG, VRT, JP2, PNG, JPEG,
    ...) into the given classes. Inputs may be URLs (https://, s3://, gs://, az://, /vsis3/...; a
    prefix ending in / is listed like a folder) and STAC items (.json); --stac searches a STAC API.

    Writes a label map (GeoTIFF on the input's grid with its georeferencing; a palette PNG for a
    plain picture), a colour overlay with a legend and a JSON sidecar per input into --out.
    Nodata pixels (nodata value, mask, alpha, NaN) get label 255 and are not counted.
    16-bit and float imagery is scaled to 8 bits by a 2-98 percentile stretch of the valid
    pixels of all inputs (--stretch; reported). Large rasters are segmented block by block in bounded memory.
    """
    from resegzoo.api import BatchInputError, BatchProgress, SegmentOptions, load_recipe, run_segment
    from resegzoo.raster.names import shown
    from resegzoo.runtime.precision import set_threads
    from resegzoo.schema import SchemaError
    from resegzoo.segmenter.recipe import resolve_recipe

    set_threads(threads)
    search = stac_search(stac_url, collections, bbox, stac_datetime, max_items)
    if not inputs and search is None:
        raise click.UsageError("give the inputs: files, folders, glob patterns, URLs or STAC items (or --stac URL)")
    vocab = vocabulary_of(classes, vocab_file)
    try:
        recipe = load_recipe(None if recipe_file is None else resolve_recipe(recipe_file), window=window,
                             stride=stride, short_side=short_side, tile_size=tile_size, templates=templates,
                             prompt_pool=prompt_pool, background_threshold=background_threshold, precision=precision)
    except SchemaError as exc:
        raise click.UsageError(f"bad recipe: {exc}") from None
    recipe, masks = _sam_options(recipe, masks, sam_checkpoint, device)
    try:
        # the one checker of segment_files: every option is checked here, before any model loads
        options = SegmentOptions.check(inputs, vocab, out, recipe=recipe, model=model, masks=masks, method=method,
                                       device=device, architecture=arch, bands=bands, nodata=nodata, probs=probs,
                                       recursive=recursive, overwrite=overwrite, skip_existing=skip_existing,
                                       continue_on_error=continue_on_error, trust_vrt=trust_vrt, stretch=stretch,
                                       gis=gis, engine=engine, stac=search, asset=asset)
        result = run_segment(options, BatchProgress(quiet=quiet))
    except BatchInputError as exc:
        raise click.UsageError(shown(str(exc))) from None
    if result.records and not quiet:
        click.echo(result.summary())
    if result.failures:
        for path, message in result.failures:
            click.echo(shown(f"failed: {path}: {message}"), err=True)
        raise click.ClickException(f"{len(result.failures)} of {result.inputs} input(s) failed (listed above); "
                                   "the others were written")


COMMANDS = [segment]
