"""What a finished unit records (its sidecar: the input, outputs, classes, raster facts, settings)
and shows (its overlay, the list of its files)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from resegzoo.batch.job import RasterPlan, RasterRun
from resegzoo.batch.unit import RasterJob
from resegzoo.outputs.gis.products import GisOutputs
from resegzoo.raster.names import path_record
from resegzoo.raster.opening import NODATA_LABEL


def raster_options(probs: str | None, nodata: float | None, stretch: Any = "file") -> dict[str, Any]:
    """The raster options a result depends on, as its sidecar stores them (strict JSON)."""
    import math

    return {"probs": probs, "nodata_option": None if nodata is None else ("nan" if math.isnan(nodata) else nodata),
            "stretch": stretch}


def stretch_record(choice: Any) -> Any:
    """A stretch choice (``batch``, ``file`` or a given Stretch) as sidecars record it."""
    return choice if isinstance(choice, str) else {"low": list(choice.low), "high": list(choice.high)}


def settings_record(seg: Any, vocab: Any, gis: GisOutputs) -> dict[str, Any]:
    """The part of a sidecar that skip_existing compares: classes, every model/recipe setting and
    the GIS outputs asked for (in JSON form, as a sidecar read back gives it)."""
    import json

    background = seg.recipe.inference.background_threshold is not None
    record = {"classes": [list(c) for c in vocab.classes] + ([["background"]] if background else []),
              **seg.describe(), "gis": dataclasses.asdict(gis)}
    return json.loads(json.dumps(record, default=str))


def overlay_note(seg: Any) -> str | None:
    """The warning drawn under an overlay's legend: labels of a random model are no result."""
    return "RANDOM WEIGHTS: not a result" if getattr(seg, "random_weights", False) else None


def unit_record(seg: Any, vocab: Any, job: RasterJob, run: RasterRun, options: Any) -> dict[str, Any]:
    """Draw the overlay of a segmented input; returns its sidecar record."""
    plan, raster = job.plan, job.plan.raster
    label_path, probs_path, overlay_path = job.destination, job.probs_destination, job.overlay
    assert overlay_path is not None
    draw_overlay(plan, label_path, overlay_path, note=overlay_note(seg))
    georef = raster.georef
    return {
        **path_record(raster.path),
        **({"origin": dict(raster.origin)} if raster.origin else {}),  # e.g. the STAC item and asset
        "outputs": {"labels": label_path.name, "overlay": overlay_path.name,
                    **({"probs": probs_path.name, "probs_format": options.probs} if probs_path else {})},
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
        "raster_options": raster_options(options.probs, raster.nodata, stretch_record(options.stretch)),
        "tiled": plan.tiled,
        "blocks": len(plan.blocks),
        "scale": plan.scale,
        "seconds": round(run.seconds, 3),
        **({"objects": objects_record(run.objects, options.gis)} if run.objects is not None else {}),
        **seg.describe(),
    }


def objects_record(store: Any, gis: GisOutputs) -> dict[str, Any]:
    """What a sidecar says of an input's objects: how many, per class, the area unit and filters, the rule."""
    from resegzoo.objects.merge import MERGE_IOU, NMS_IOU

    return {"count": len(store), "per_class": store.counts(), "area_unit": store.unit,
            "min_area": gis.min_object_area, "max_area": gis.max_object_area, "dropped_by_area": store.dropped,
            "nms_iou": NMS_IOU, "merge_iou": MERGE_IOU}


def draw_overlay(plan: RasterPlan, label_path: Path, overlay_path: Path, note: str | None = None) -> None:
    """The overlay drawn from decimated reads of the image and the labels (bounded memory)."""
    import rasterio

    from resegzoo.outputs import imageio
    from resegzoo.raster.georef import quiet_georef

    shape = plan.raster.overview_shape()
    image, _ = plan.raster.read_rgb(out_shape=shape)
    with quiet_georef(), rasterio.open(label_path) as src:
        labels = src.read(1, out_shape=shape)
    imageio.write_overlay(overlay_path, image, labels, plan.palette, list(plan.class_names), note=note)


def written(job: RasterJob, record: dict[str, Any], out: Path | None = None) -> str:
    """Every file of a finished unit: ``FOLDER/x.labels.tif, x.overlay.png, ..., x.json`` (the
    folder relative to ``out`` when given)."""
    assert job.sidecar is not None
    names = list(dict.fromkeys([name for kind, name in record["outputs"].items() if kind != "probs_format"]
                               + [job.sidecar.name]))
    folder = job.folder if out is None else job.folder.relative_to(out)
    return ", ".join([str(folder / names[0])] + names[1:])
