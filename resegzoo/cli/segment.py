"""``resegzoo segment``: segment images and GeoTIFFs into the classes you name.

For each input IMG it writes into --out: ``IMG.labels.png`` (palette PNG; ``IMG.labels.tif`` for a
TIFF input, with its CRS and transform), ``IMG.overlay.png`` (colours + legend) and ``IMG.json``
(classes, palette, settings, model). Existing outputs are never overwritten: a name that is
taken (by an earlier input with the same stem, a file already in --out, or another run writing
into --out right now) gets a ``-2``, ``-3`` ... suffix, unless --overwrite is given.

Each input's outputs are a unit: the sidecar is written last and is the commit marker. Names are
claimed (``resegzoo.claims``) before any is written, so two runs into one folder never replace
each other's files; an interrupted input's partial files are removed, and a killed run's stale
claim lets the next run take its names back. --skip-existing skips inputs whose sidecar holds a
result of the same settings (a killed batch resumes); --continue-on-error reports bad inputs at
the end instead of stopping.
"""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import click

from resegzoo.cli.gis_options import GIS_SUFFIXES, GisOutputs, gis_options
from resegzoo.cli.options import PRECISION_OPTION, THREADS_OPTION

#: the files written per input, after its stem
OUTPUT_SUFFIXES = (".labels.png", ".labels.tif", ".overlay.png", ".json") + GIS_SUFFIXES


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


def _sidecar_matches(sidecar: Path, info: Any, expected: dict[str, Any]) -> bool:
    """Whether ``sidecar`` is a finished result of this input with these settings."""
    import json

    try:
        record = json.loads(sidecar.read_text())
        same_input = Path(record["input"]).resolve() == Path(info.path).resolve()
    except (OSError, ValueError, KeyError, TypeError):
        return False  # unreadable or not ours: not a result to keep
    same_raster = record.get("size") == [info.height, info.width] and record.get("bands") == list(info.bands)
    return same_input and same_raster and all(record.get(key) == value for key, value in expected.items())


def _output_stems(infos: list[Any], out: Path, claims: Any, overwrite: bool,
                  skip_expected: dict[str, Any] | None) -> list[str | None]:
    """Claim a distinct output stem per input; taken stems get -2, -3, ... (never overwrite).

    A stem is taken when this run or another live run claims it, or (without --overwrite) when
    any of its files exists. A stale claim (its run was killed) frees the stem: its files are
    unfinished. With ``skip_expected`` (--skip-existing), an input whose finished result with
    these settings is found under one of its stems gets None: nothing to do.
    """
    from resegzoo.claims import folder_lock

    used: set[str] = set()
    stems: list[str | None] = []
    with folder_lock(out):
        for info in infos:
            base = Path(info.path).stem
            chosen, done = None, False
            for n in itertools.count(1):
                stem = base if n == 1 else f"{base}-{n}"
                state = claims.state(stem)
                if state == "stale" and (out / f"{stem}.json").is_file():
                    claims.clear(stem)  # killed after its sidecar: the unit is finished, only the claim is left
                    state = "none"
                if stem.lower() in used or state in ("mine", "live"):
                    continue
                exists = any((out / f"{stem}{suffix}").exists() for suffix in OUTPUT_SUFFIXES)
                if state == "none" and skip_expected is not None and _sidecar_matches(
                        out / f"{stem}.json", info, skip_expected):
                    done = True
                    break
                if chosen is None and (state == "stale" or overwrite or not exists):
                    chosen = stem
                # with --skip-existing, look on to the first unused stem for a finished result
                if not exists or (chosen is not None and skip_expected is None):
                    break
            if done:
                stems.append(None)
                continue
            assert chosen is not None  # the walk ends at a stem with no files, which is usable
            claims.take(chosen)
            used.add(chosen.lower())
            stems.append(chosen)
    return stems


def _settings_record(seg: Any, vocab: Any, gis: GisOutputs) -> dict[str, Any]:
    """The part of a sidecar that --skip-existing compares: classes, every model/recipe setting and
    the GIS outputs asked for (in JSON form, as a sidecar read back gives it)."""
    import json

    background = seg.recipe.inference.background_threshold is not None
    record = {"classes": [list(c) for c in vocab.classes] + ([["background"]] if background else []),
              **seg.describe(), "gis": dataclasses.asdict(gis)}
    return json.loads(json.dumps(record, default=str))


def _remove_outputs(out: Path, stem: str) -> None:
    """Delete whatever exists of one stem's outputs (an unfinished or replaced unit)."""
    for suffix in OUTPUT_SUFFIXES:
        (out / f"{stem}{suffix}").unlink(missing_ok=True)


def _write_units(seg: Any, vocab: Any, todo: list[tuple[Any, str]], out: Path, claims: Any,
                 continue_on_error: bool, gis: GisOutputs) -> list[tuple[Path, str]]:
    """Segment each (input, claimed stem) and write its outputs as a unit, the sidecar last.

    An input that fails (or is interrupted) leaves none of its files. With ``continue_on_error``
    its failure is returned and the rest proceed; otherwise the error propagates.
    """
    from tqdm.auto import tqdm

    from resegzoo import imageio
    from resegzoo.prefetch import prefetched

    def read(job: tuple[Any, str]) -> Any:
        try:
            return _read_prepared(seg, job[0])
        except Exception as exc:  # raised again at its input's turn, where failures are handled
            return exc

    failures: list[tuple[Path, str]] = []
    jobs = tqdm(todo, desc="images", unit="img", disable=len(todo) < 2)
    # the next input is decoded and prepared in a background thread while this one is encoded
    for (info, stem), ready in prefetched(read, jobs, seg.recipe.inference.prefetch):
        _remove_outputs(out, stem)  # a stale run's leftovers, or what --overwrite replaces
        try:
            if isinstance(ready, Exception):
                raise ready
            record = _segment_one(seg, vocab, info, stem, out, ready)
            record["outputs"].update(gis.write(out, stem, record))
            record["gis"] = dataclasses.asdict(gis)
            imageio.write_json(out / f"{stem}.json", record)  # last: the commit marker of the unit
        except BaseException as exc:
            _remove_outputs(out, stem)  # never leave half a unit behind
            claims.release(stem)
            if not continue_on_error or not isinstance(exc, Exception):  # Ctrl-C always stops
                raise
            failures.append((info.path, f"{type(exc).__name__}: {exc}"))
            _say(f"{info.path}: FAILED ({type(exc).__name__}: {exc}); going on with the rest")
            continue
        claims.release(stem)
        _say(f"{info.path} -> {out / record['outputs']['labels']}")
    return failures


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


def _overlay_note(seg: Any) -> str | None:
    """The warning drawn under an overlay's legend: labels of a random model are no result."""
    return "RANDOM WEIGHTS: not a result" if getattr(seg, "random_weights", False) else None


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
    palette = imageio.make_palette(names)
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
        imageio.write_overlay(overlay_path, image, labels, palette, names, note=_overlay_note(seg))
    else:
        from tqdm.auto import tqdm

        boxes = list(imageio.tiles(info.height, info.width, tile, recipe.inference.tile_overlap))
        from resegzoo.segmenter.core import work_scale

        scale = work_scale(info.height, info.width, recipe.inference)  # the whole raster's

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
        _tiled_overlay(info, label_path, stretch, overlay_path, palette, names, note=_overlay_note(seg))
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


def _tiled_overlay(info: Any, label_path: Path, stretch: Any, overlay_path: Path, palette: Any, names: Any,
                   note: str | None = None) -> None:
    """The overlay of a big raster, drawn from decimated reads of the image and the labels."""
    import rasterio

    from resegzoo import imageio

    scale = min(1.0, imageio.OVERVIEW_SIDE / max(info.height, info.width))
    shape = (max(1, round(info.height * scale)), max(1, round(info.width * scale)))
    image = imageio.to_uint8(imageio.read_bands(info, out_shape=shape), stretch)
    with rasterio.open(label_path) as src:
        labels = src.read(1, out_shape=shape)
    imageio.write_overlay(overlay_path, image, labels, palette, names, note=note)


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
@click.option("--skip-existing", is_flag=True, help="Skip inputs whose sidecar in --out already holds their result "
              "with the same settings (rerun a killed batch to resume it).")
@click.option("--continue-on-error", is_flag=True, help="On an input that cannot be read or segmented, go on with "
              "the rest; the failures are listed at the end and the exit status is 1.")
@gis_options
@PRECISION_OPTION
@THREADS_OPTION
def segment(inputs: tuple[Path, ...], classes: str | None, vocab_file: Path | None, model: str | None,
            masks: str | None, recipe_file: Path | None, out: Path, device: str, bands: str | None,
            arch: str | None, window: int | None, stride: int | None, short_side: int | None,
            tile_size: int | None, templates: str | None, background_threshold: float | None,
            sam_checkpoint: str | None, overwrite: bool, skip_existing: bool, continue_on_error: bool,
            gis: GisOutputs, precision: str | None, threads: int | None) -> None:
    """Segment IMAGE_OR_DIR... (PNG, JPEG, TIFF, GeoTIFF) into the given classes.

    Writes a label map, a colour overlay with a legend and a JSON sidecar per input into --out.
    16-bit and float imagery is scaled to 8 bits by a 2-98 percentile stretch (reported).
    """
    from resegzoo import imageio
    from resegzoo.api import ModelLoadError, Segmenter, load_recipe, load_templates
    from resegzoo.claims import Claims
    from resegzoo.preflight import check_device, check_output_folder
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
    except imageio.ImageError as exc:
        raise click.UsageError(str(exc)) from None
    failures: list[tuple[Path, str]] = []
    infos = []
    for f in files:
        try:
            infos.append(imageio.inspect(f, band_list))
        except imageio.ImageError as exc:
            if not continue_on_error:
                raise click.UsageError(str(exc)) from None
            failures.append((f, str(exc)))
    gis.check(infos)
    check_device(device)
    check_output_folder(out)  # before the model loads: a bad --out must not cost the computing
    try:
        seg = Segmenter.from_recipe(recipe, model=model, masks=masks, device=device, architecture=arch)
    except (ModelLoadError, RegistryError, SchemaError, ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None
    for note in seg.notes:
        click.secho(f"note: {note}", fg="yellow", err=True)
    out.mkdir(parents=True, exist_ok=True)
    expected = _settings_record(seg, vocab, gis) if skip_existing else None
    claims = Claims(out)
    try:
        stems = _output_stems(infos, out, claims, overwrite, expected)
        for info, stem in zip(infos, stems):
            if stem is None:
                _say(f"{info.path}: skipped, its result with these settings is already in {out}")
        todo = [(info, stem) for info, stem in zip(infos, stems) if stem is not None]
        failures += _write_units(seg, vocab, todo, out, claims, continue_on_error, gis)
    finally:
        claims.release_all()
    if failures:
        for path, message in failures:
            click.echo(f"failed: {path}: {message}", err=True)
        raise click.ClickException(f"{len(failures)} of {len(files)} input(s) failed (listed above); "
                                   "the others were written")


COMMANDS = [segment]
