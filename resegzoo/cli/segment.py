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

from resegzoo.cli.options import PRECISION_OPTION, THREADS_OPTION


#: the files written per input, after its stem
OUTPUT_SUFFIXES = (".labels.png", ".labels.tif", ".overlay.png", ".json")


def _expand_inputs(inputs: tuple[Path, ...]) -> list[Path]:
    from resegzoo.imageio import IMAGE_SUFFIXES

    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise click.UsageError(f"{item}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            files.extend(found)
        else:
            files.append(item)
    return files


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


def _is_tiled(info: Any, recipe: Any) -> bool:
    return bool(info.is_tiff and max(info.height, info.width) > recipe.inference.tile_size)


def _read_prepared(seg: Any, info: Any) -> tuple[Any, Any]:
    """An input's stretch and, unless it is processed tile by tile, its pixels prepared for the
    encoder (resized, first segments made). Runs in a background thread while the previous
    input is encoded."""
    from resegzoo import imageio

    stretch = imageio.plan_stretch(info)
    if _is_tiled(info, seg.recipe):
        return stretch, None
    return stretch, seg.prepare(imageio.to_uint8(imageio.read_bands(info), stretch))


def _segment_one(seg: Any, vocab: Any, info: Any, stem: str, out: Path,
                 read: tuple[Any, Any] | None = None) -> dict[str, Any]:
    """Run one input and write its three outputs; returns the sidecar record. ``read``: what
    :func:`_read_prepared` returned for it (None: read it now)."""
    import numpy as np
    from rasterio.windows import Window

    from resegzoo import imageio
    from resegzoo.prefetch import prefetched

    recipe = seg.recipe
    stretch, prepared = read if read is not None else _read_prepared(seg, info)
    if stretch is not None:
        _say(f"{info.path}: {info.dtype} data scaled to 8 bits by a {stretch.describe()}")
    background = recipe.inference.background_threshold is not None
    names = vocab.class_names + (["background"] if background else [])
    palette = imageio.make_palette(len(vocab), background=background)
    counts = np.zeros(len(names), dtype=np.int64)
    tile = recipe.inference.tile_size
    tiled = _is_tiled(info, recipe)
    label_path = out / f"{stem}.labels.{'tif' if info.is_tiff else 'png'}"
    overlay_path = out / f"{stem}.overlay.png"
    if not tiled:
        image = prepared.image
        labels = seg.segment(prepared, vocab, progress=True).labels
        counts += np.bincount(labels.ravel(), minlength=len(names))
        if info.is_tiff:
            with imageio.label_geotiff(label_path, info, palette) as dst:
                dst.write(labels.astype(np.uint8)[None])
        else:
            imageio.write_label_png(label_path, labels, palette)
        imageio.write_overlay(overlay_path, image, labels, palette, names)
    else:
        from tqdm.auto import tqdm

        boxes = list(imageio.tiles(info.height, info.width, tile, recipe.inference.tile_overlap))
        short = recipe.inference.short_side
        scale = None if short is None else short / min(info.height, info.width)  # the whole raster's

        def read_tile(box: Any) -> Any:  # the next tile is read and prepared while this one is encoded
            (ry0, rx0, ry1, rx1), _ = box
            data = imageio.read_bands(info, Window(rx0, ry0, rx1 - rx0, ry1 - ry0))
            return seg.prepare(imageio.to_uint8(data, stretch), scale=scale)

        with imageio.label_geotiff(label_path, info, palette) as dst:
            tiles = prefetched(read_tile, tqdm(boxes, desc="tiles", leave=False), recipe.inference.prefetch)
            for ((ry0, rx0, ry1, rx1), (cy0, cx0, cy1, cx1)), tile_ready in tiles:
                labels = seg.segment(tile_ready, vocab).labels
                core = labels[cy0 - ry0:cy1 - ry0, cx0 - rx0:cx1 - rx0]
                counts += np.bincount(core.ravel(), minlength=len(names))
                dst.write(core.astype(np.uint8)[None], window=Window(cx0, cy0, cx1 - cx0, cy1 - cy0))
        _tiled_overlay(info, label_path, stretch, overlay_path, palette, names)
    total = int(counts.sum())
    return {
        "input": str(info.path),
        "outputs": {"labels": label_path.name, "overlay": overlay_path.name},
        "size": [info.height, info.width],
        "classes": [list(c) for c in vocab.classes] + ([["background"]] if background else []),
        "class_names": names,
        "palette": [list(c) for c in palette],
        "pixel_fraction": {n: round(int(c) / total, 6) for n, c in zip(names, counts)},
        "bands": list(info.bands),
        "source_dtype": info.dtype,
        "stretch": None if stretch is None else {"method": "percentile", "percentiles": list(stretch.percentiles),
                                                 "low": stretch.low, "high": stretch.high},
        "crs": None if info.crs is None else info.crs.to_string(),
        "transform": None if not info.is_tiff or info.transform.is_identity else list(info.transform)[:6],
        "tiled": tiled,
        **seg.describe(),
    }


def _tiled_overlay(info: Any, label_path: Path, stretch: Any, overlay_path: Path, palette: Any, names: Any) -> None:
    """The overlay of a big raster, drawn from decimated reads of the image and the labels."""
    import rasterio

    from resegzoo import imageio

    scale = min(1.0, imageio.OVERVIEW_SIDE / max(info.height, info.width))
    shape = (max(1, round(info.height * scale)), max(1, round(info.width * scale)))
    image = imageio.to_uint8(imageio.read_bands(info, out_shape=shape), stretch)
    with rasterio.open(label_path) as src:
        labels = src.read(1, out_shape=shape)
    imageio.write_overlay(overlay_path, image, labels, palette, names)


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
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
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
@click.option("--arch", help="open_clip architecture of a bare checkpoint file, e.g. ViT-L-14-quickgelu.")
@click.option("--window", type=int, help="Sliding-window side in px (overrides the recipe; default: the model's).")
@click.option("--stride", type=int, help="Step between windows in px (overrides the recipe; default: half a window).")
@click.option("--short-side", type=int, help="Resize each image so its short side has this length first.")
@click.option("--tile-size", type=int, help="TIFFs larger than this per side are processed tile by tile "
              "(overrides the recipe; default 2048).")
@click.option("--templates", help="Prompt templates: reference, remote-sensing, imagenet, or a file with one "
              "template per line ({} = class name). Overrides the recipe; default: reference.")
@click.option("--background-threshold", type=float, help="Pixels whose top class probability is below this "
              "(0..1) get an extra last class 'background'. Default: off.")
@click.option("--sam-checkpoint", help="SAM weights for --masks sam: a .pth file or a zoo name (sam-vit-b, "
              "sam-vit-l, sam-vit-h; `resegzoo fetch NAME` downloads them). Implies --masks sam.")
@click.option("--overwrite", is_flag=True, help="Replace outputs already in --out instead of adding -2, -3 suffixes.")
@PRECISION_OPTION
@THREADS_OPTION
def segment(inputs: tuple[Path, ...], classes: str | None, vocab_file: Path | None, model: str | None,
            masks: str | None, recipe_file: Path | None, out: Path, device: str, bands: str | None,
            arch: str | None, window: int | None, stride: int | None, short_side: int | None,
            tile_size: int | None, templates: str | None, background_threshold: float | None,
            sam_checkpoint: str | None, overwrite: bool, precision: str | None, threads: int | None) -> None:
    """Segment IMAGE_OR_DIR... (PNG, JPEG, TIFF, GeoTIFF) into the given classes.

    Writes a label map, a colour overlay with a legend and a JSON sidecar per input into --out.
    16-bit and float imagery is scaled to 8 bits by a 2-98 percentile stretch (reported).
    """
    from tqdm.auto import tqdm

    from resegzoo import imageio
    from resegzoo.api import ModelLoadError, Segmenter, load_recipe, load_templates
    from resegzoo.registry import RegistryError
    from resegzoo.schema import SchemaError

    from resegzoo.runtime import set_threads

    set_threads(threads)
    vocab = _vocabulary(classes, vocab_file)
    if len(vocab) + 1 > 256:
        raise click.UsageError(f"{len(vocab)} classes: at most 255 fit an 8-bit label map")
    try:
        recipe = load_recipe(recipe_file, window=window, stride=stride, short_side=short_side, tile_size=tile_size,
                             templates=templates, background_threshold=background_threshold, precision=precision)
        load_templates(recipe.text.templates)  # a bad template set is a usage error, before any work
    except SchemaError as exc:
        raise click.UsageError(f"bad recipe: {exc}") from None
    recipe, masks = _sam_options(recipe, masks, sam_checkpoint, device)
    files = _expand_inputs(inputs)
    try:
        band_list = imageio.parse_bands(bands)
        infos = [imageio.inspect(f, band_list) for f in files]
    except imageio.ImageError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        seg = Segmenter.from_recipe(recipe, model=model, masks=masks, device=device, architecture=arch)
    except (ModelLoadError, RegistryError, SchemaError, ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    stems = _output_stems(files, out, overwrite)
    from resegzoo.prefetch import prefetched

    jobs = tqdm(list(zip(infos, stems)), desc="images", unit="img", disable=len(infos) < 2)
    # the next input is decoded and prepared in a background thread while this one is encoded
    for (info, stem), read in prefetched(lambda job: _read_prepared(seg, job[0]), jobs, recipe.inference.prefetch):
        record = _segment_one(seg, vocab, info, stem, out, read)
        imageio.write_json(out / f"{stem}.json", record)
        _say(f"{info.path} -> {out / record['outputs']['labels']}")


COMMANDS = [segment]
