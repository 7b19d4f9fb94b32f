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
                min_area: float | None, **kwargs: Any) -> Any:
        if not vector and (vector_format or simplify is not None or min_area is not None):
            raise click.UsageError("--vector-format, --simplify and --min-area go with --vector")
        gis = GisOutputs(cog=cog, vector=vector, vector_format=vector_format or "gpkg",
                         simplify=simplify or 0.0, min_area=min_area or 0.0)
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
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper
