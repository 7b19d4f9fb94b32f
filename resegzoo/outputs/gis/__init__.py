"""GIS products made from a finished label raster, whatever produced it.

- :mod:`~resegzoo.outputs.gis.cog`: the labels as a Cloud-Optimized GeoTIFF with colour table, class names
  (GDAL category names and a raster attribute table) and a QGIS style;
- :mod:`~resegzoo.outputs.gis.style`: the QGIS ``.qml`` style (paletted renderer, class names and colours);
- :mod:`~resegzoo.outputs.gis.vector`: one polygon per connected region, vectorised strip by strip with
  regions merged across strip edges, written as a GeoPackage or RFC 7946 GeoJSON.
"""
from __future__ import annotations

from resegzoo.errors import ResegzooError
#: NODATA_LABEL: the label value of pixels that are not classified; never a class, never a feature.
#: without_georeference_warnings: label rasters of PNG inputs have no CRS, expected here.
from resegzoo.raster.georef import quiet_georef as without_georeference_warnings
from resegzoo.raster.opening import NODATA_LABEL


class GisError(ResegzooError):
    """A GIS output that cannot be made from this input (the message says why and what to do)."""
