"""``resegzoo segment``: segment images and GeoTIFFs into the classes you name.

For each input IMG (anything GDAL opens) it writes into --out: ``IMG.labels.tif`` (GeoTIFF on the
input's grid with its georeferencing, nodata 255; ``IMG.labels.png``, a palette PNG, for a plain
picture), ``IMG.overlay.png`` (colours + legend) and ``IMG.json`` (classes, palette, nodata,
settings, model); --probs adds ``IMG.probs.tif``. Rasters are segmented block by block
(:func:`resegzoo.batch.job.segment_raster`). Existing outputs are never overwritten: a name that is
taken (by an earlier input with the same stem, a file already in --out, or another run writing
into --out right now) gets a ``-2``, ``-3`` ... suffix, unless --overwrite is given.

Each input's outputs are a unit: the sidecar is written last and is the commit marker. Names are
claimed (``resegzoo.outputs.claims``) before any is written, so two runs into one folder never replace
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
    from resegzoo.outputs.claims import folder_lock

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


def _raster_options(probs: str | None, nodata: float | None) -> dict[str, Any]:
    """The raster options a result depends on, as its sidecar stores them (strict JSON)."""
    import math

    return {"probs": probs, "nodata_option": None if nodata is None else ("nan" if math.isnan(nodata) else nodata)}


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
                 continue_on_error: bool, gis: GisOutputs, probs: str | None = None,
                 records: list[dict[str, Any]] | None = None) -> list[tuple[Path, str]]:
    """Segment each (input, claimed stem) and write its outputs as a unit, the sidecar last.

    An input that fails (or is interrupted) leaves none of its files. With ``continue_on_error``
    its failure is returned and the rest proceed; otherwise the error propagates. Finished
    sidecar records are appended to ``records`` (the summary table).
    """
    from tqdm.auto import tqdm

    from resegzoo.outputs import imageio

    failures: list[tuple[Path, str]] = []
    for info, stem in tqdm(todo, desc="images", unit="img", disable=len(todo) < 2):
        _remove_outputs(out, stem)  # a stale run's leftovers, or what --overwrite replaces
        try:
            record = _segment_one(seg, vocab, info, stem, out, probs)
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
        if records is not None:
            records.append(record)
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


def _segment_one(seg: Any, vocab: Any, raster: Any, stem: str, out: Path, probs: str | None) -> dict[str, Any]:
    """Run one input through :func:`resegzoo.batch.job.segment_raster`, draw its overlay;
    returns the sidecar record."""
    from resegzoo.batch.job import segment_raster

    job = _plan_one(seg, vocab, raster, stem, out, probs)
    run = segment_raster(seg, vocab, job.plan, job.destination, probs_destination=job.probs_destination)
    return _finish_one(seg, vocab, job, run, probs)


def _plan_one(seg: Any, vocab: Any, raster: Any, stem: str, out: Path, probs: str | None) -> Any:
    """Plan one input (blocks, stretch, grid) and name its outputs: a RasterJob any engine runs."""
    from resegzoo.engines.ray_segment import RasterJob
    from resegzoo.batch.job import RasterOptions, plan_raster

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
    _overlay(plan, label_path, overlay_path, note=_overlay_note(seg))
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
        "raster_options": _raster_options(probs, raster.nodata),
        "tiled": plan.tiled,
        "blocks": len(plan.blocks),
        "scale": plan.scale,
        "seconds": round(run.seconds, 3),
        **seg.describe(),
    }


def _overlay(plan: Any, label_path: Path, overlay_path: Path, note: str | None = None) -> None:
    """The overlay drawn from decimated reads of the image and the labels (bounded memory)."""
    import rasterio

    from resegzoo.outputs import imageio
    from resegzoo.raster.reader import quiet_georef

    shape = plan.raster.overview_shape()
    image, _ = plan.raster.read_rgb(out_shape=shape)
    with quiet_georef(), rasterio.open(label_path) as src:
        labels = src.read(1, out_shape=shape)
    imageio.write_overlay(overlay_path, image, labels, plan.palette, list(plan.class_names), note=note)


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
    if name not in ("sam", "sam2"):
        return recipe, masks
    settings = dict(recipe.masks.settings) if recipe.masks.generator == name else {}
    if sam_checkpoint:
        settings["checkpoint"] = sam_checkpoint
    settings.setdefault("device", device)
    return dataclasses.replace(recipe, masks=dataclasses.replace(recipe.masks, generator=name, settings=settings)), name


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
@click.option("--skip-existing", is_flag=True, help="Skip inputs whose sidecar in --out already holds their result "
              "with the same settings (rerun a killed batch to resume it).")
@click.option("--continue-on-error", is_flag=True, help="On an input that cannot be read or segmented, go on with "
              "the rest; the failures are listed at the end and the exit status is 1.")
@click.option("--trust-vrt", is_flag=True, help="Let VRTs (and other files that point at other files) read what "
              "they reference: raw bands over any file, network (/vsicurl/, http, WMS) and archive (/vsizip/, ...) "
              "sources. Without it a VRT may only reference local raster files.")
@gis_options
@PRECISION_OPTION
@THREADS_OPTION
@engine_options
def segment(inputs: tuple[str, ...], classes: str | None, vocab_file: Path | None, model: str | None,
            masks: str | None, recipe_file: Path | None, out: Path, device: str, bands: str | None,
            nodata: str | None, probs: str | None, recursive: bool, arch: str | None, window: int | None, stride: int | None, short_side: int | None,
            tile_size: int | None, templates: str | None, background_threshold: float | None,
            sam_checkpoint: str | None, overwrite: bool, skip_existing: bool, continue_on_error: bool,
            trust_vrt: bool, gis: GisOutputs, precision: str | None, threads: int | None, engine: Any) -> None:
    """Segment IMAGE_OR_DIR_OR_GLOB... (anything GDAL opens: GeoTIFF, COG, VRT, JP2, PNG, JPEG,
    ...) into the given classes.

    Writes a label map (GeoTIFF on the input's grid with its georeferencing; a palette PNG for a
    plain picture), a colour overlay with a legend and a JSON sidecar per input into --out.
    Nodata pixels (nodata value, mask, alpha, NaN) get label 255 and are not counted.
    16-bit and float imagery is scaled to 8 bits by a 2-98 percentile stretch of the valid
    pixels (reported). Large rasters are segmented block by block in bounded memory.
    """
    from resegzoo.api import ModelLoadError, Segmenter, load_recipe, load_templates
    from resegzoo.outputs.claims import Claims
    from resegzoo.raster import reader
    from resegzoo.runtime.preflight import check_device, check_output_folder
    from resegzoo.plugins.registry import RegistryError
    from resegzoo.schema import SchemaError

    from resegzoo.runtime.precision import set_threads

    set_threads(threads)
    vocab = _vocabulary(classes, vocab_file)
    if len(vocab) + 1 > NODATA_LABEL:
        raise click.UsageError(f"{len(vocab)} classes: at most {NODATA_LABEL - 1} fit an 8-bit label map "
                               f"(with background; {NODATA_LABEL} is nodata)")
    try:
        recipe = load_recipe(recipe_file, window=window, stride=stride, short_side=short_side, tile_size=tile_size,
                             templates=templates, background_threshold=background_threshold, precision=precision)
        load_templates(recipe.text.templates)  # a bad template set is a usage error, before any work
    except SchemaError as exc:
        raise click.UsageError(f"bad recipe: {exc}") from None
    recipe, masks = _sam_options(recipe, masks, sam_checkpoint, device)
    files = _expand_inputs(inputs, recursive)
    try:
        band_list = reader.parse_bands(bands)
        nodata_value = reader.parse_nodata(nodata)
    except reader.ImageError as exc:
        raise click.UsageError(str(exc)) from None
    failures: list[tuple[Path, str]] = []
    infos = []
    for f in files:
        try:
            infos.append(reader.open_raster(f, band_list, nodata_value, trust_vrt=trust_vrt))
        except reader.ImageError as exc:
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
    expected = {**_settings_record(seg, vocab, gis), "raster_options": _raster_options(probs, nodata_value)} \
        if skip_existing else None
    claims = Claims(out)
    try:
        stems = _output_stems(infos, out, claims, overwrite, expected)
        for info, stem in zip(infos, stems):
            if stem is None:
                _say(f"{info.path}: skipped, its result with these settings is already in {out}")
        todo = [(info, stem) for info, stem in zip(infos, stems) if stem is not None]
        records: list[dict[str, Any]] = []
        if engine.is_local:
            failures += _write_units(seg, vocab, todo, out, claims, continue_on_error, gis, probs, records)
        else:
            from resegzoo.engines.ray_segment import SegmenterSpec, segment_on_ray

            def finish(job: Any, run: Any) -> dict[str, Any]:  # one input's unit, as _write_units writes it
                from resegzoo.outputs import imageio

                stem = job.sidecar.name.removesuffix(".json")
                record = _finish_one(seg, vocab, job, run, probs)
                record["outputs"].update(gis.write(out, stem, record))
                record["gis"] = dataclasses.asdict(gis)
                imageio.write_json(job.sidecar, record)  # last: the commit marker of the unit
                claims.release(stem)
                records.append(record)
                _say(f"{job.plan.path} -> {job.destination}")
                return record

            for _, stem in todo:
                _remove_outputs(out, stem)  # a stale run's leftovers, or what --overwrite replaces
            jobs = [_plan_one(seg, vocab, info, stem, out, probs) for info, stem in todo]
            failures += segment_on_ray(engine, SegmenterSpec(recipe, model, masks, device, arch), seg, vocab, jobs,
                                       out, finish, say=_say)
    finally:
        claims.release_all()
    if records:
        _say(_summary(records))
    if failures:
        for path, message in failures:
            click.echo(f"failed: {path}: {message}", err=True)
        raise click.ClickException(f"{len(failures)} of {len(files)} input(s) failed (listed above); "
                                   "the others were written")


COMMANDS = [segment]
