"""``resegzoo segment``: segment images and GeoTIFFs into the classes you name.

For each input IMG it writes into --out: ``IMG.labels.png`` (palette PNG; ``IMG.labels.tif`` for a
TIFF input, with its CRS and transform), ``IMG.overlay.png`` (colours + legend) and ``IMG.json``
(classes, palette, settings, model). Existing outputs are never overwritten: a name that is
taken (by an earlier input with the same stem or a file already in --out) gets a ``-2``, ``-3``
... suffix, unless --overwrite is given.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from resegzoo.cli.gis_options import GIS_SUFFIXES, GisOutputs, gis_options
from resegzoo.engines import engine_options
from resegzoo.raster.reader import NODATA_LABEL


#: the files written per input, after its stem
OUTPUT_SUFFIXES = (".labels.png", ".labels.tif", ".probs.tif", ".overlay.png", ".json") + GIS_SUFFIXES
GLOB_CHARS = "*?["


def _expand_inputs(inputs: tuple[str, ...], recursive: bool) -> list[Path]:
    """Files, folders (every raster GDAL opens in them; below them with --recursive) and glob
    patterns (``**`` reaches into subfolders with --recursive), in the order given, each once."""
    import glob

    from resegzoo.raster.reader import find_rasters, is_raster

    files: list[Path] = []
    for item in inputs:
        if any(c in item for c in GLOB_CHARS) and not Path(item).exists():
            matches = [Path(m) for m in sorted(glob.glob(item, recursive=recursive))]
            found = [m for m in matches if m.is_file() and is_raster(m)]
            for folder in (m for m in matches if m.is_dir()):
                found.extend(find_rasters(folder, recursive))
            if not found:
                raise click.UsageError(f"{item}: no rasters match this pattern")
            files.extend(found)
        elif Path(item).is_dir():
            found = find_rasters(item, recursive)
            if not found:
                hint = "" if recursive else " (add --recursive to look in subfolders)"
                raise click.UsageError(f"{item}: no rasters GDAL can open in this folder{hint}")
            files.extend(found)
        elif Path(item).exists():
            files.append(Path(item))
        else:
            raise click.UsageError(f"{item}: no such file or folder")
    unique: dict[Path, None] = {}
    for f in files:
        unique.setdefault(f, None)
    return list(unique)


def _output_stems(files: list[Path], out: Path, overwrite: bool) -> list[str]:
    """A distinct output stem per input; taken stems get -2, -3, ... (never overwrite)."""
    used: set[str] = set()
    stems = []
    for f in files:
        base, n = f.stem, 1
        stem = base
        while stem.lower() in used or (not overwrite and any((out / f"{stem}{suffix}").exists()
                                                              for suffix in OUTPUT_SUFFIXES)):
            n += 1
            stem = f"{base}-{n}"
        used.add(stem.lower())
        stems.append(stem)
    return stems


def _say(message: str) -> None:
    """Print a line without breaking the progress bars."""
    from tqdm.auto import tqdm

    tqdm.write(message)


def _vocabulary(classes: str | None, vocab_file: Path | None) -> Any:
    from resegzoo.api import Vocabulary, VocabularyError
    from resegzoo.schema import SchemaError

    if (classes is None) == (vocab_file is None):
        raise click.UsageError('give the classes with exactly one of --classes "a; b, synonym; c" or --vocab FILE')
    try:
        return Vocabulary.parse(classes) if classes is not None else Vocabulary.from_file(vocab_file)  # type: ignore[arg-type]
    except (VocabularyError, SchemaError) as exc:
        raise click.UsageError(str(exc)) from None


def _segment_one(seg: Any, vocab: Any, raster: Any, stem: str, out: Path, probs: str | None) -> dict[str, Any]:
    """Run one input through :func:`resegzoo.raster.job.segment_raster`, draw its overlay;
    returns the sidecar record."""
    from resegzoo.raster.job import segment_raster

    job = _plan_one(seg, vocab, raster, stem, out, probs)
    run = segment_raster(seg, vocab, job.plan, job.destination, probs_destination=job.probs_destination)
    return _finish_one(seg, vocab, job, run, probs)


def _plan_one(seg: Any, vocab: Any, raster: Any, stem: str, out: Path, probs: str | None) -> Any:
    """Plan one input (blocks, stretch, grid) and name its outputs: a RasterJob any engine runs."""
    from resegzoo.engines.ray_segment import RasterJob
    from resegzoo.raster.job import RasterOptions, plan_raster

    plan = plan_raster(raster, seg, RasterOptions(probs=probs, progress=True), vocab)  # type: ignore[arg-type]
    if raster.stretch is not None:
        _say(f"{raster.path}: {raster.dtype} data scaled to 8 bits by a {raster.stretch.describe()}")
    label_path = out / f"{stem}.labels.{'tif' if plan.label_driver == 'GTiff' else 'png'}"
    probs_path = None if probs is None else out / f"{stem}.probs.tif"
    return RasterJob(plan, label_path, probs_path, overlay=out / f"{stem}.overlay.png", sidecar=out / f"{stem}.json")


def _finish_one(seg: Any, vocab: Any, job: Any, run: Any, probs: str | None) -> dict[str, Any]:
    """Draw the overlay of a segmented input; returns its sidecar record."""
    plan, raster = job.plan, job.plan.raster
    label_path, probs_path, overlay_path = job.destination, job.probs_destination, job.overlay
    _overlay(plan, label_path, overlay_path)
    georef = raster.georef
    return {
        "input": str(raster.path),
        "outputs": {"labels": label_path.name, "overlay": overlay_path.name,
                    **({"probs": probs_path.name, "probs_format": probs} if probs_path else {})},
        "size": [raster.height, raster.width],
        "classes": [list(c) for c in vocab.classes] + ([["background"]] if len(plan.class_names) > len(vocab) else []),
        "class_names": list(plan.class_names),
        "palette": [list(c) for c in plan.palette],
        "pixel_fraction": run.pixel_fraction(),
        "nodata": {"label": NODATA_LABEL, "pixels": run.nodata_pixels,
                   "fraction": round(run.nodata_pixels / (raster.height * raster.width), 6),
                   "source": raster.describe()["nodata"], "from": raster.describe()["nodata_from"],
                   "windows_skipped": run.windows_skipped},
        "bands": list(raster.bands),
        "source_dtype": raster.dtype,
        "driver": raster.driver,
        "palette_expanded": raster.palette is not None,
        "stretch": None if raster.stretch is None else raster.stretch.to_dict(),
        "crs": georef.crs_string,
        "transform": None if georef.transform is None else list(georef.transform),
        "gcps": len(georef.gcps),
        "rpcs": bool(georef.rpcs),
        "tiled": plan.tiled,
        "blocks": len(plan.blocks),
        "scale": plan.scale,
        "seconds": round(run.seconds, 3),
        **seg.describe(),
    }


def _overlay(plan: Any, label_path: Path, overlay_path: Path) -> None:
    """The overlay drawn from decimated reads of the image and the labels (bounded memory)."""
    import rasterio

    from resegzoo import imageio
    from resegzoo.raster.reader import quiet_georef

    shape = plan.raster.overview_shape()
    image, _ = plan.raster.read_rgb(out_shape=shape)
    with quiet_georef(), rasterio.open(label_path) as src:
        labels = src.read(1, out_shape=shape)
    imageio.write_overlay(overlay_path, image, labels, plan.palette, list(plan.class_names))


def _summary(rows: list[dict[str, Any]]) -> str:
    """The table printed after a batch: one row per image and the total."""
    lines = [f"{'image':<32} {'pixels':>12} {'nodata':>7} {'classes':>7} {'seconds':>8}"]
    for r in rows:
        lines.append(f"{Path(r['input']).name[:32]:<32} {r['size'][0] * r['size'][1]:>12,} "
                     f"{r['nodata']['fraction']:>7.1%} {sum(1 for v in r['pixel_fraction'].values() if v > 0):>7} "
                     f"{r['seconds']:>8.2f}")
    total_px = sum(r["size"][0] * r["size"][1] for r in rows)
    classes = {n for r in rows for n, v in r["pixel_fraction"].items() if v > 0}
    lines.append(f"{f'total: {len(rows)} images':<32} {total_px:>12,} {'':>7} {len(classes):>7} "
                 f"{sum(r['seconds'] for r in rows):>8.2f}")
    return "\n".join(lines)


def _sam_options(recipe: Any, masks: str | None, sam_checkpoint: str | None, device: str) -> tuple[Any, str | None]:
    """Fold --sam-checkpoint and --device into the recipe's SAM settings (SAM runs where CLIP runs)."""
    import dataclasses

    if sam_checkpoint and masks not in (None, "sam"):
        raise click.UsageError(f"--sam-checkpoint goes with --masks sam, not --masks {masks}")
    name = "sam" if sam_checkpoint else (masks or recipe.masks.generator)
    if name != "sam":
        return recipe, masks
    settings = dict(recipe.masks.settings) if recipe.masks.generator == "sam" else {}
    if sam_checkpoint:
        settings["checkpoint"] = sam_checkpoint
    settings.setdefault("device", device)
    return dataclasses.replace(recipe, masks=dataclasses.replace(recipe.masks, generator="sam", settings=settings)), "sam"


@click.command("segment")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--classes", help='Classes, ";" between classes and "," between synonyms: '
              '"building; road, street; tree; water". The first name of a class is its label.')
@click.option("--vocab", "vocab_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A class file instead of --classes: .txt (one class per line, synonyms separated by "
                   "commas) or .yaml (a list of names or lists of synonyms).")
@click.option("--model", help="CLIP model: a registry name (`resegzoo list variants`), a checkpoint file, "
              "a folder written by `resegzoo compose`, local-dir:DIR or hf-hub:ORG/REPO. Default: the recipe's.")
@click.option("--masks", help="Mask generator giving the segments that restrict attention: slic, "
              "felzenszwalb, sam, none, or a plugin's (`resegzoo list masks`). Default: the recipe's (slic).")
@click.option("--recipe", "recipe_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Segmentation recipe YAML (see registry/recipes/segment-default.yaml for every key).")
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
@click.option("--background-threshold", type=float, help="Pixels whose top class probability is below this "
              "(0..1) get an extra last class 'background'. Default: off.")
@click.option("--sam-checkpoint", help="SAM weights for --masks sam: a .pth file or a zoo name (sam-vit-b, "
              "sam-vit-l, sam-vit-h; `resegzoo fetch NAME` downloads them). Implies --masks sam.")
@click.option("--overwrite", is_flag=True, help="Replace outputs already in --out instead of adding -2, -3 suffixes.")
@gis_options
@engine_options
def segment(inputs: tuple[str, ...], classes: str | None, vocab_file: Path | None, model: str | None,
            masks: str | None, recipe_file: Path | None, out: Path, device: str, bands: str | None,
            nodata: str | None, probs: str | None, recursive: bool, arch: str | None, window: int | None, stride: int | None, short_side: int | None,
            tile_size: int | None, templates: str | None, background_threshold: float | None,
            sam_checkpoint: str | None, overwrite: bool, gis: GisOutputs, engine: Any) -> None:
    """Segment IMAGE_OR_DIR_OR_GLOB... (anything GDAL opens: GeoTIFF, COG, VRT, JP2, PNG, JPEG,
    ...) into the given classes.

    Writes a label map (GeoTIFF on the input's grid with its georeferencing; a palette PNG for a
    plain picture), a colour overlay with a legend and a JSON sidecar per input into --out.
    Nodata pixels (nodata value, mask, alpha, NaN) get label 255 and are not counted.
    16-bit and float imagery is scaled to 8 bits by a 2-98 percentile stretch of the valid
    pixels (reported). Large rasters are segmented block by block in bounded memory.
    """
    from tqdm.auto import tqdm

    from resegzoo import imageio
    from resegzoo.raster import reader
    from resegzoo.api import ModelLoadError, Segmenter, load_recipe, load_templates
    from resegzoo.registry import RegistryError
    from resegzoo.schema import SchemaError

    vocab = _vocabulary(classes, vocab_file)
    if len(vocab) + 1 > NODATA_LABEL:
        raise click.UsageError(f"{len(vocab)} classes: at most {NODATA_LABEL - 1} fit an 8-bit label map "
                               f"(with background; {NODATA_LABEL} is nodata)")
    try:
        recipe = load_recipe(recipe_file, window=window, stride=stride, short_side=short_side, tile_size=tile_size,
                             templates=templates, background_threshold=background_threshold)
        load_templates(recipe.text.templates)  # a bad template set is a usage error, before any work
    except SchemaError as exc:
        raise click.UsageError(f"bad recipe: {exc}") from None
    recipe, masks = _sam_options(recipe, masks, sam_checkpoint, device)
    files = _expand_inputs(inputs, recursive)
    try:
        band_list = reader.parse_bands(bands)
        nodata_value = reader.parse_nodata(nodata)
        rasters = [reader.open_raster(f, band_list, nodata_value) for f in files]
    except reader.ImageError as exc:
        raise click.UsageError(str(exc)) from None
    gis.check(rasters)
    try:
        seg = Segmenter.from_recipe(recipe, model=model, masks=masks, device=device, architecture=arch)
    except (ModelLoadError, RegistryError, SchemaError, ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    stems = _output_stems(files, out, overwrite)
    if not engine.is_local:
        from resegzoo.engines.ray_segment import SegmenterSpec, segment_on_ray

        def finish(job: Any, run: Any) -> dict[str, Any]:
            record = _finish_one(seg, vocab, job, run, probs)
            record["outputs"].update(gis.write(out, job.sidecar.name.removesuffix(".json"), record))
            imageio.write_json(job.sidecar, record)
            _say(f"{job.plan.path} -> {job.destination}")
            return record

        jobs = [_plan_one(seg, vocab, raster, stem, out, probs) for raster, stem in zip(rasters, stems)]
        _say(_summary(segment_on_ray(engine, SegmenterSpec(recipe, model, masks, device, arch), seg, vocab, jobs,
                                     out, finish, say=_say)))
        return
    rows = []
    for raster, stem in tqdm(list(zip(rasters, stems)), desc="images", unit="img", disable=len(rasters) < 2):
        record = _segment_one(seg, vocab, raster, stem, out, probs)
        record["outputs"].update(gis.write(out, stem, record))
        imageio.write_json(out / f"{stem}.json", record)
        rows.append(record)
        _say(f"{raster.path} -> {out / record['outputs']['labels']}")
    _say(_summary(rows))


COMMANDS = [segment]
