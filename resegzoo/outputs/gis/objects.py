"""A raster's objects as GIS files: one (multi)polygon per object with its class, name, score,
presence, area and id (a GeoPackage layer ``objects`` or RFC 7946 GeoJSON), and the instance-id
raster (a uint32 COG: the object id per pixel, 0 = none, :data:`OBJECT_NODATA` where the input has
no data). Both read the finished objects a chunk or a strip at a time
(:class:`resegzoo.objects.store.ObjectStore`), so memory stays bounded on any raster.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from resegzoo.outputs.atomic import atomic_path
from resegzoo.outputs.gis import NODATA_LABEL, without_georeference_warnings
from resegzoo.outputs.gis.vector import _polygon, check_format, pixels_to_crs, write_layer

LAYER_NAME = "objects"
#: the instance-id raster's value where the input has no data (0 is "no object")
OBJECT_NODATA = 2 ** 32 - 1
#: objects vectorised and written per chunk
CHUNK = 4096
#: the id raster's COG creation options (ids are not averaged: nearest-neighbour overviews)
ID_COG_OPTIONS = {"COMPRESS": "DEFLATE", "PREDICTOR": "2", "BLOCKSIZE": "512", "OVERVIEW_RESAMPLING": "NEAREST",
                  "BIGTIFF": "IF_SAFER"}


def object_polygons(objects: Any) -> np.ndarray:
    """Each object's mask as one MultiPolygon on the pixel grid (exact pixel edges; 4-connected parts)."""
    import shapely
    from affine import Affine
    from rasterio.features import shapes

    out = []
    for (y0, x0, _, _), mask in zip(objects.boxes, objects.masks):
        parts = [_polygon(geom) for geom, _ in shapes(mask.astype(np.uint8), mask=mask, connectivity=4,
                                                       transform=Affine.translation(int(x0), int(y0)))]
        out.append(shapely.multipolygons(parts))
    return np.array(out, dtype=object) if out else np.empty(0, dtype=object)


def write_objects_layer(path: Path, store: Any, labels_path: str | Path, vector_format: str = "gpkg",
                        append_layer: bool = False) -> None:
    """The objects of ``store`` (finished) as the layer ``objects`` of ``path`` (a temporary the caller
    renames; ``append_layer``: beside the layers already in it), in the label raster's CRS."""
    import rasterio

    with without_georeference_warnings(), rasterio.open(labels_path) as src:
        transform, crs = src.transform, src.crs
    check_format(vector_format, crs)
    names = store.class_names
    first = True
    for ids, objects, areas in _chunks(store, vector_format):
        geometries = pixels_to_crs(object_polygons(objects), transform)
        fields = {"object_id": ids, "class": np.array([names[k] for k in objects.class_ids], dtype=object),
                  "class_id": objects.class_ids.astype(np.int32), "name": np.array(objects.names, dtype=object),
                  "score": objects.scores.astype(np.float64), "presence": objects.presence.astype(np.float64),
                  "area": areas.astype(np.float64)}
        write_layer(path, LAYER_NAME, geometries, fields, crs, vector_format, geometry_type="MultiPolygon",
                    append=append_layer or not first)
        first = False


def _chunks(store: Any, vector_format: str) -> Any:
    """The store's chunks; GeoJSON is written at once (GDAL appends to a GeoPackage layer, not to
    RFC 7946 GeoJSON), and an empty store still gives one empty chunk (an empty layer is written)."""
    from resegzoo.objects.instances import Objects

    size = CHUNK if vector_format == "gpkg" else max(1, len(store))
    given = False
    for chunk in store.chunks(size):
        given = True
        yield chunk
    if not given:
        yield np.zeros(0, np.int64), Objects.empty(), np.zeros(0, np.float64)


def write_objects(path: str | Path, store: Any, labels_path: str | Path, vector_format: str = "gpkg") -> Path:
    """The objects as their own file (``STEM.objects.gpkg`` / ``.geojson``), written atomically."""
    with atomic_path(path) as tmp:
        tmp.unlink()  # GDAL creates the file itself
        write_objects_layer(tmp, store, labels_path, vector_format)
    return Path(path)


def write_object_raster(path: str | Path, store: Any, labels_path: str | Path, strip_rows: int = 1024) -> Path:
    """The instance-id raster on the label raster's grid: a uint32 COG, each pixel its object's id
    (where objects overlap, the better score), 0 where none, OBJECT_NODATA where the labels are nodata."""
    import rasterio
    import rasterio.shutil
    from rasterio.windows import Window

    path = Path(path)
    with without_georeference_warnings(), rasterio.open(labels_path) as src, \
            tempfile.TemporaryDirectory(prefix="resegzoo-objects-", dir=path.parent) as work:
        profile = {"driver": "GTiff", "height": src.height, "width": src.width, "count": 1, "dtype": "uint32",
                   "nodata": OBJECT_NODATA, "tiled": True, "blockxsize": 512, "blockysize": 512,
                   "compress": "deflate", "BIGTIFF": "IF_SAFER", "crs": src.crs, "transform": src.transform}
        plain = Path(work) / "ids.tif"
        with rasterio.open(plain, "w", **profile) as dst:
            if src.gcps[0]:
                dst.gcps = src.gcps
            dst.set_band_description(1, "object ids (0: none; the objects layer's object_id)")
            for y0 in range(0, src.height, strip_rows):
                rows = min(strip_rows, src.height - y0)
                window = Window(0, y0, src.width, rows)
                ids = store.paint((y0, 0, y0 + rows, src.width))
                ids[src.read(1, window=window) == NODATA_LABEL] = OBJECT_NODATA
                dst.write(ids[None], window=window)
        with atomic_path(path) as tmp:
            rasterio.shutil.copy(str(plain), str(tmp), driver="COG", **ID_COG_OPTIONS)
            aux = tmp.with_name(tmp.name + ".aux.xml")
            if aux.exists():  # statistics GDAL may leave: nothing a reader needs
                os.unlink(aux)
    return path
