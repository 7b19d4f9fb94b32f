"""Which GIS products one segmented input gets (``--cog``, ``--vector`` ...), and the call that
makes them from its finished label raster (see :mod:`resegzoo.outputs.gis`)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional, Sequence

from resegzoo.errors import EXIT_USAGE
from resegzoo.outputs.gis import GisError

#: files the GIS products add per input, after its stem (the COG itself is ``STEM.labels.tif``)
GIS_SUFFIXES = (".labels.tif.aux.xml", ".labels.qml", ".regions.gpkg", ".regions.geojson", ".objects.gpkg",
                ".objects.geojson", ".objects.tif")


class GisOptionError(GisError):
    """GIS products asked for that cannot be made for these inputs (a usage error, before any work)."""

    exit_code = EXIT_USAGE


@dataclasses.dataclass(frozen=True)
class GisOutputs:
    cog: bool = False
    vector: bool = False
    vector_format: str = "gpkg"
    simplify: float = 0.0
    min_area: float = 0.0
    #: the method's objects, one polygon each (``--objects``): STEM.objects.gpkg, or the layer
    #: ``objects`` of STEM.regions.gpkg with ``vector``; STEM.objects.geojson in GeoJSON
    objects: bool = False
    #: the instance-id raster STEM.objects.tif (``--objects-raster``)
    objects_raster: bool = False
    #: objects kept: area (m² where georeferenced, else px) at least / at most this (None: no limit)
    min_object_area: float = 0.0
    max_object_area: Optional[float] = None

    @property
    def object_areas(self) -> tuple[float, Optional[float]]:
        return self.min_object_area, self.max_object_area

    def check(self, infos: Sequence[Any]) -> None:
        """Refuse, before any work, what cannot be written for these inputs."""
        if (self.objects_raster or self.min_object_area or self.max_object_area is not None) and not self.objects:
            raise GisOptionError("--objects-raster, --min-object-area and --max-object-area go with --objects")
        if self.max_object_area is not None and self.max_object_area < self.min_object_area:
            raise GisOptionError(f"--max-object-area ({self.max_object_area:g}) is below --min-object-area "
                                 f"({self.min_object_area:g}): no object could be kept")
        if self.objects and self.vector_format == "geojson":
            for info in infos:
                if info.crs is None:
                    raise GisOptionError(f"{info.path}: no CRS, but GeoJSON (RFC 7946) is longitude/latitude; "
                                         "use --vector-format gpkg for objects in pixel coordinates")
        if self.vector and self.vector_format == "geojson":
            for info in infos:
                if info.crs is None:
                    raise GisOptionError(f"{info.path}: no CRS, but GeoJSON (RFC 7946) is longitude/latitude; "
                                         "use --vector-format gpkg for polygons in pixel coordinates")

    def write(self, out: Path, stem: str, record: dict[str, Any], objects: Any = None) -> dict[str, str]:
        """Make the requested outputs from ``record``'s label raster (and ``objects``, the finished
        :class:`~resegzoo.objects.store.ObjectStore`); returns their file names by kind."""
        from resegzoo.outputs.gis.cog import write_cog
        from resegzoo.outputs.gis.objects import write_object_raster, write_objects, write_objects_layer
        from resegzoo.outputs.gis.style import write_qml
        from resegzoo.outputs.gis.vector import vectorize, write_regions

        labels = out / record["outputs"]["labels"]
        names = record["class_names"]
        palette = [tuple(rgb) for rgb in record["palette"]]
        written: dict[str, str] = {}
        if self.objects and objects is None:
            raise GisError("objects were asked for, but none were computed for this input")
        beside = None
        if self.objects and self.vector and self.vector_format == "gpkg":  # a layer beside the regions
            beside = lambda tmp: write_objects_layer(tmp, objects, labels, "gpkg", append_layer=True)  # noqa: E731
        if self.vector:
            regions = vectorize(labels, names, simplify=self.simplify, min_area=self.min_area)
            path = write_regions(out / f"{stem}.regions.{self.vector_format}", regions, self.vector_format, beside)
            written["vector"] = path.name
            if beside is not None:
                written["objects"] = path.name
        if self.objects and beside is None:
            written["objects"] = write_objects(out / f"{stem}.objects.{self.vector_format}", objects, labels,
                                               self.vector_format).name
        if self.objects_raster:
            written["objects_raster"] = write_object_raster(out / f"{stem}.objects.tif", objects, labels).name
        if self.cog:
            cog, attributes = write_cog(labels, out / f"{stem}.labels.tif", names, palette)
            written.update(cog=cog.name, attribute_table=attributes.name,
                           qgis_style=write_qml(out / f"{stem}.labels.qml", names, palette).name)
        return written
