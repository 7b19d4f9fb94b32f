"""The GIS-output flags of ``resegzoo segment`` (--cog, --vector, ...) and the call that makes the
outputs from a finished label raster (see :mod:`resegzoo.outputs.gis`)."""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Callable, Sequence

import click

#: files the GIS flags add per input, after its stem (the COG itself is ``STEM.labels.tif``)
GIS_SUFFIXES = (".labels.tif.aux.xml", ".labels.qml", ".regions.gpkg", ".regions.geojson")


@dataclasses.dataclass(frozen=True)
class GisOutputs:
    cog: bool = False
    vector: bool = False
    vector_format: str = "gpkg"
    simplify: float = 0.0
    min_area: float = 0.0

    def check(self, infos: Sequence[Any]) -> None:
        """Refuse, before any work, what cannot be written for these inputs."""
        if self.vector and self.vector_format == "geojson":
            for info in infos:
                if info.crs is None:
                    raise click.UsageError(f"{info.path}: no CRS, but GeoJSON (RFC 7946) is longitude/latitude; "
                                           "use --vector-format gpkg for polygons in pixel coordinates")

    def write(self, out: Path, stem: str, record: dict[str, Any]) -> dict[str, str]:
        """Make the requested outputs from ``record``'s label raster; returns their file names by kind."""
        from resegzoo.outputs.gis.cog import write_cog
        from resegzoo.outputs.gis.style import write_qml
        from resegzoo.outputs.gis.vector import vectorize, write_regions

        labels = out / record["outputs"]["labels"]
        names = record["class_names"]
        palette = [tuple(rgb) for rgb in record["palette"]]
        written: dict[str, str] = {}
        if self.vector:
            regions = vectorize(labels, names, simplify=self.simplify, min_area=self.min_area)
            path = write_regions(out / f"{stem}.regions.{self.vector_format}", regions, self.vector_format)
            written["vector"] = path.name
        if self.cog:
            cog, attributes = write_cog(labels, out / f"{stem}.labels.tif", names, palette)
            written.update(cog=cog.name, attribute_table=attributes.name,
                           qgis_style=write_qml(out / f"{stem}.labels.qml", names, palette).name)
        return written


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
