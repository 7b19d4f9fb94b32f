"""GIS products made from a finished label raster, whatever produced it.

- :mod:`~resegzoo.gis.cog`: the labels as a Cloud-Optimized GeoTIFF with colour table, class names
  (GDAL category names and a raster attribute table) and a QGIS style;
- :mod:`~resegzoo.gis.style`: the QGIS ``.qml`` style (paletted renderer, class names and colours);
- :mod:`~resegzoo.gis.vector`: one polygon per connected region, vectorised strip by strip with
  regions merged across strip edges, written as a GeoPackage or RFC 7946 GeoJSON.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

from resegzoo.errors import ResegzooError

#: the label value of pixels that are not classified (nodata); never a class, never a feature
NODATA_LABEL = 255


class GisError(ResegzooError):
    """A GIS output that cannot be made from this input (the message says why and what to do)."""


@contextlib.contextmanager
def without_georeference_warnings() -> Iterator[None]:
    """Label rasters of PNG inputs have no CRS: that is expected here, not worth a warning."""
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield
