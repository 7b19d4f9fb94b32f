"""The GIS-output flags of ``resegzoo segment`` (--cog, --vector, ...), given to the command as one
:class:`~resegzoo.outputs.gis.products.GisOutputs` (which makes the products)."""
from __future__ import annotations

import functools
from typing import Any, Callable

import click

from resegzoo.outputs.gis.products import GIS_SUFFIXES, GisOutputs

__all__ = ["GIS_SUFFIXES", "GisOutputs", "gis_options"]


def gis_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the GIS flags to a click command, which receives them as one ``gis: GisOutputs``."""

    @functools.wraps(command)
    def wrapper(*args: Any, cog: bool, vector: bool, vector_format: str | None, simplify: float | None,
                min_area: float | None, objects: bool, objects_raster: bool, min_object_area: float | None,
                max_object_area: float | None, **kwargs: Any) -> Any:
        if not vector and (simplify is not None or min_area is not None):
            raise click.UsageError("--simplify and --min-area go with --vector")
        if not (vector or objects) and vector_format:
            raise click.UsageError("--vector-format goes with --vector or --objects")
        if not objects and (objects_raster or min_object_area is not None or max_object_area is not None):
            raise click.UsageError("--objects-raster, --min-object-area and --max-object-area go with --objects")
        gis = GisOutputs(cog=cog, vector=vector, vector_format=vector_format or "gpkg",
                         simplify=simplify or 0.0, min_area=min_area or 0.0, objects=objects,
                         objects_raster=objects_raster, min_object_area=min_object_area or 0.0,
                         max_object_area=max_object_area)
        return command(*args, gis=gis, **kwargs)

    options = [
        click.option("--cog", is_flag=True, help="Write the label raster as a Cloud-Optimized GeoTIFF "
                     "(STEM.labels.tif: tiled, deflate, mode overviews, colour table, class names in "
                     "STEM.labels.tif.aux.xml) and a QGIS style STEM.labels.qml. PNG inputs: a COG in pixel "
                     "coordinates beside the PNG."),
        click.option("--vector", is_flag=True, help="Write one polygon per connected region with its class, "
                     "class_id and area: STEM.regions.gpkg in the raster's CRS (pixel coordinates for PNG)."),
        click.option("--vector-format", type=click.Choice(["gpkg", "geojson"]),
                     help="gpkg (default) or geojson (RFC 7946, EPSG:4326; needs a georeferenced input)."),
        click.option("--simplify", type=click.FloatRange(min=0), metavar="TOL",
                     help="Simplify the polygons by TOL (CRS units) keeping shared edges shared. Default 0: "
                          "exact pixel edges."),
        click.option("--min-area", type=click.FloatRange(min=0), metavar="AREA",
                     help="Leave out regions smaller than AREA (CRS units squared; pixels for PNG), measured as written (after --simplify)."),
        click.option("--objects", is_flag=True, help="Also write the objects the method finds (segearth-ov3, "
                     "proc-sam3: SAM 3's instances), each whole across windows and blocks: one polygon per object "
                     "with class, name (the prompt), score, presence, area (m² where georeferenced, else px) and "
                     "object_id, in STEM.objects.gpkg (with --vector: the layer 'objects' of STEM.regions.gpkg; "
                     "--vector-format geojson: STEM.objects.geojson). Counts per class go in the sidecar."),
        click.option("--objects-raster", is_flag=True, help="With --objects: also STEM.objects.tif, a uint32 COG of "
                     "object ids (0: no object; 4294967295 where the input has no data)."),
        click.option("--min-object-area", type=click.FloatRange(min=0), metavar="AREA",
                     help="With --objects: leave out objects smaller than AREA (m² where georeferenced, else px)."),
        click.option("--max-object-area", type=click.FloatRange(min=0), metavar="AREA",
                     help="With --objects: leave out objects larger than AREA (m² where georeferenced, else px)."),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper
