"""THE raster reader: every image resegzoo reads (segment, eval, image-agreement) comes through here.

Anything GDAL opens is an image (GeoTIFF, COG, VRT, JP2, PNG/JPEG with or without world files,
...): what rasterio reports decides, never the file suffix. :func:`open_raster` reads the header
once and decides everything per raster (bands, palette expansion, nodata, the 8-bit stretch,
georeferencing) into a picklable :class:`Raster`; :meth:`Raster.read` then reads any window as
``(3, h, w)`` uint8 plus a boolean valid mask.

This module is the reader's documented face (the names below are its contract); each job lives
in its own module, which the library imports directly:

- :mod:`resegzoo.raster.opening`: :class:`Raster`, :func:`open_raster`, :func:`read_image`,
  :func:`fill_invalid`, :data:`NODATA_LABEL` (bands, palette, valid pixels, windowed reads)
- :mod:`resegzoo.raster.discovery`: :func:`is_raster`, :func:`find_rasters` (which files are images)
- :mod:`resegzoo.raster.sandbox`: :func:`check_sources`, :func:`gdal_env` (what an untrusted VRT
  may reach; GDAL with the network off)
- :mod:`resegzoo.raster.options`: :func:`parse_bands`, :func:`parse_nodata`, :func:`parse_stretch`
  (the user's option text -> values)
- :mod:`resegzoo.raster.stretch`: :class:`Stretch` and its estimates (per file, shared by a batch)
- :mod:`resegzoo.raster.georef`: :class:`Georeference` (plain data, copied onto outputs)
- :mod:`resegzoo.raster.names`: :func:`gdal_name` (names that are not UTF-8), :func:`is_remote`
- :mod:`resegzoo.raster.errors`: :class:`ImageError`
"""
from __future__ import annotations

from resegzoo.raster.discovery import SIDECAR_SUFFIXES, find_rasters, is_raster
from resegzoo.raster.errors import ImageError
from resegzoo.raster.georef import Georeference, quiet_georef
from resegzoo.raster.georef import check_georeference as _check_georeference
from resegzoo.raster.names import gdal_name
from resegzoo.raster.names import is_remote as _is_remote
from resegzoo.raster.opening import (NODATA_LABEL, Raster, _check_png_stream, _choose_bands, _gdal_errors,
                                     _palette_of, fill_invalid, open_raster, read_image)
from resegzoo.raster.options import parse_bands, parse_nodata, parse_stretch
from resegzoo.raster.sandbox import (_HEADER_BYTES, _SERVICE_MARKERS, MAX_VRT_DEPTH, UNTRUSTED_GDAL_OPTIONS,
                                     _check_sources, _header, _source_problem, check_sources, gdal_env,
                                     reaches_other_files)
from resegzoo.raster.stretch import (OVERVIEW_SIDE, STRETCH_SAMPLE, STRETCH_SCOPES, Stretch, _rounded,
                                     estimate_stretch, needs_stretch, shared_stretch, with_stretch)

__all__ = [
    "NODATA_LABEL", "OVERVIEW_SIDE", "SIDECAR_SUFFIXES", "MAX_VRT_DEPTH", "UNTRUSTED_GDAL_OPTIONS",
    "STRETCH_SAMPLE", "STRETCH_SCOPES", "ImageError", "Raster", "Stretch", "Georeference",
    "open_raster", "read_image", "fill_invalid", "is_raster", "find_rasters", "check_sources",
    "reaches_other_files", "gdal_env", "gdal_name", "quiet_georef", "parse_bands", "parse_nodata",
    "parse_stretch", "needs_stretch", "estimate_stretch", "shared_stretch", "with_stretch",
]
# the private helpers stay reachable under their old names for code that reached into the module
_PRIVATE = (_check_georeference, _is_remote, _check_png_stream, _choose_bands, _gdal_errors, _palette_of,
            _HEADER_BYTES, _SERVICE_MARKERS, _check_sources, _header, _source_problem, _rounded)
