"""Which GIS products one segmented input gets (``--cog``, ``--vector`` ...), and the call that
makes them from its finished label raster (see :mod:`resegzoo.outputs.gis`)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

from resegzoo.errors import EXIT_USAGE
from resegzoo.outputs.gis import GisError

#: files the GIS products add per input, after its stem (the COG itself is ``STEM.labels.tif``)
GIS_SUFFIXES = (".labels.tif.aux.xml", ".labels.qml", ".regions.gpkg", ".regions.geojson")


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

    def check(self, infos: Sequence[Any]) -> None:
        """Refuse, before any work, what cannot be written for these inputs."""
        if self.vector and self.vector_format == "geojson":
            for info in infos:
                if info.crs is None:
                    raise GisOptionError(f"{info.path}: no CRS, but GeoJSON (RFC 7946) is longitude/latitude; "
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
