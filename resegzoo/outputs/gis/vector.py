"""Label raster -> one polygon per connected region, as a GeoPackage layer or RFC 7946 GeoJSON.

Big rasters are never read whole: the label raster is read in strips of rows. Each strip's
connected regions (4-connectivity, the same as ``rasterio.features.shapes``) get ids, the regions
on either side of a strip edge that touch with the same class are joined (union-find), and a
region's pieces are dissolved into one polygon as soon as no piece of it touches the strip being
read. The result is the same set of polygons as vectorising the whole raster at once: no seams.

Polygons are built on the pixel grid and mapped to the raster's CRS by its affine transform
(rotation included). Nodata pixels (label 255 and the raster's nodata value) never become features.
``simplify`` simplifies the whole polygon coverage at once (shapely's ``coverage_simplify``), so
neighbouring polygons keep sharing their edges: no gaps, no overlaps.
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from resegzoo.outputs.atomic import atomic_path
from resegzoo.outputs.gis import NODATA_LABEL, GisError, without_georeference_warnings

#: pixels read per strip when the caller does not choose (a 16k-wide raster: 256 rows, 4 MB)
STRIP_PIXELS = 4_000_000
LAYER_NAME = "regions"
FORMATS = {"gpkg": "GPKG", "geojson": "GeoJSON"}


@dataclasses.dataclass
class Regions:
    """Vectorised regions, in the raster's CRS: parallel arrays, one entry per feature."""

    geometries: np.ndarray  # shapely Polygons
    class_ids: np.ndarray  # int32
    class_names: list[str]  # the vocabulary; feature i is class_names[class_ids[i]]
    crs: Any  # rasterio CRS or None (PNG inputs: pixel coordinates)

    @property
    def areas(self) -> np.ndarray:
        import shapely

        return shapely.area(self.geometries)

    def __len__(self) -> int:
        return len(self.geometries)


class _Groups:
    """Union-find over region pieces, keeping each group's members at its root."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.members: dict[int, list[int]] = {}

    def add(self, piece: int) -> None:
        self.parent[piece] = piece
        self.members[piece] = [piece]

    def find(self, piece: int) -> int:
        root = piece
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[piece] != root:  # path compression
            self.parent[piece], piece = root, self.parent[piece]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if len(self.members[ra]) < len(self.members[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.members[ra].extend(self.members.pop(rb))

    def close(self, root: int) -> list[int]:
        """Forget a finished group; returns its pieces."""
        pieces = self.members.pop(root)
        for piece in pieces:
            del self.parent[piece]
        return pieces


def _polygon(geojson: dict[str, Any]) -> Any:
    """A GeoJSON-like polygon from ``rasterio.features.shapes`` as shapely, built from arrays
    (twice as fast as ``shapely.geometry.shape``, which walks the coordinates in Python)."""
    import shapely

    rings = [shapely.linearrings(np.asarray(ring, dtype=float)) for ring in geojson["coordinates"]]
    return shapely.polygons(rings[0], holes=rings[1:] or None)


def _strip_rows(src: Any, strip_rows: int | None) -> int:
    if strip_rows is not None:
        return max(1, strip_rows)
    block_h = src.block_shapes[0][0] if src.block_shapes else 1
    rows = max(1, STRIP_PIXELS // max(1, src.width))
    return max(block_h, rows - rows % block_h)  # whole blocks per read


def pixel_regions(labels_path: str | Path, strip_rows: int | None = None) -> Iterator[tuple[int, Any]]:
    """(class id, polygon in pixel coordinates) for every 4-connected region of equal label.

    Reads the raster ``strip_rows`` rows at a time (default: about STRIP_PIXELS pixels)."""
    import rasterio
    import shapely
    from affine import Affine
    from rasterio.features import shapes
    from rasterio.windows import Window
    from skimage.measure import label as connected_components

    groups = _Groups()
    pieces: dict[int, Any] = {}
    piece_class: dict[int, int] = {}
    with without_georeference_warnings(), rasterio.open(labels_path) as src:
        if src.count != 1:
            raise GisError(f"{labels_path}: a label raster has one band, not {src.count}")
        invalid = {NODATA_LABEL} | ({int(src.nodata)} if src.nodata is not None else set())
        rows = _strip_rows(src, strip_rows)
        next_id = 1
        above_ids = above_labels = None  # the previous strip's last row: global piece ids, labels
        for y0 in range(0, src.height, rows):
            block = src.read(1, window=Window(0, y0, src.width, min(rows, src.height - y0)))
            valid = ~np.isin(block, list(invalid))
            # component ids, unique per strip; +1 so that class 0 is not taken for background
            local = connected_components(np.where(valid, block.astype(np.int64) + 1, 0), background=0, connectivity=1)
            count = int(local.max())
            ids = np.where(local > 0, local + (next_id - 1), 0)
            classes = np.zeros(count + 1, dtype=np.int64)
            classes[local[valid]] = block[valid]
            for geom, value in shapes(local.astype(np.int32), mask=local > 0, connectivity=4,
                                      transform=Affine.translation(0, y0)):
                piece = int(value) + next_id - 1
                pieces[piece] = _polygon(geom)
                piece_class[piece] = int(classes[int(value)])
                groups.add(piece)
            next_id += count
            if above_ids is not None:  # join regions that continue across the strip edge
                joined = (above_ids > 0) & (ids[0] > 0) & (above_labels == block[0])
                for a, b in np.unique(np.stack([above_ids[joined], ids[0][joined]], axis=1), axis=0):
                    groups.union(int(a), int(b))
            above_ids, above_labels = ids[-1], block[-1]
            last_strip = y0 + rows >= src.height
            still_open = set() if last_strip else {groups.find(int(p)) for p in np.unique(ids[-1]) if p > 0}
            for root in [r for r in groups.members if r not in still_open]:
                members = groups.close(root)
                geoms = [pieces.pop(p) for p in members]
                cls = piece_class[members[0]]
                for p in members:
                    del piece_class[p]
                merged = geoms[0] if len(geoms) == 1 else shapely.union_all(geoms)
                # pieces of a group share edges, so the union is one polygon; parts, if ever, stay features
                for part in getattr(merged, "geoms", [merged]):
                    yield cls, part


def vectorize(labels_path: str | Path, class_names: Sequence[str], simplify: float = 0.0, min_area: float = 0.0,
              strip_rows: int | None = None) -> Regions:
    """Regions of a label raster in its CRS: ``simplify`` (CRS units, 0 = exact pixel edges) simplifies
    the coverage topology-preservingly, then ``min_area`` (CRS units²) drops regions whose simplified
    area, the ``area`` written, is smaller."""
    import rasterio
    import shapely

    if simplify < 0 or min_area < 0:
        raise GisError(f"--simplify and --min-area must be >= 0 (got {simplify} and {min_area})")
    with without_georeference_warnings(), rasterio.open(labels_path) as src:
        transform, crs = src.transform, src.crs
    ids, geoms = [], []
    for cls, polygon in pixel_regions(labels_path, strip_rows):
        if cls >= len(class_names):
            raise GisError(f"{labels_path}: label {cls} but only {len(class_names)} class names")
        ids.append(cls)
        geoms.append(polygon)
    geometries = np.array(geoms, dtype=object) if geoms else np.empty(0, dtype=object)
    if simplify > 0:  # every pixel corner a vertex, so neighbours' shared edges match exactly
        geometries = shapely.segmentize(geometries, 1.0)
    geometries = pixels_to_crs(geometries, transform)
    class_ids = np.array(ids, dtype=np.int32)
    if simplify > 0 and len(geometries):  # before the area threshold: it applies to what is written
        geometries = shapely.coverage_simplify(geometries, simplify)
    if min_area > 0:
        keep = shapely.area(geometries) >= min_area
        geometries, class_ids = geometries[keep], class_ids[keep]
    return Regions(geometries, class_ids, list(class_names), crs)


def pixels_to_crs(geometries: np.ndarray, transform: Any) -> np.ndarray:
    """Geometries on the pixel grid in the raster's CRS by its affine ``transform`` (rotation
    included; an identity transform, PNG inputs, keeps pixel coordinates)."""
    import shapely

    if transform.is_identity or not len(geometries):
        return geometries
    a, b, c, d, e, f = transform[:6]
    return shapely.transform(geometries, lambda xy: np.column_stack(
        [a * xy[:, 0] + b * xy[:, 1] + c, d * xy[:, 0] + e * xy[:, 1] + f]))


def check_format(vector_format: str, crs: Any) -> None:
    """GisError for a format that is not offered, or GeoJSON (longitude/latitude) without a CRS."""
    if vector_format not in FORMATS:
        raise GisError(f"vector format {vector_format!r}: choose one of {', '.join(FORMATS)}")
    if vector_format == "geojson" and crs is None:
        raise GisError("GeoJSON (RFC 7946) is in longitude/latitude, but this raster has no CRS (a PNG input?); "
                       "use --vector-format gpkg for polygons in pixel coordinates")


def write_layer(path: Path, layer: str, geometries: np.ndarray, fields: dict[str, np.ndarray], crs: Any,
                vector_format: str, geometry_type: str = "Polygon", append: bool = False) -> None:
    """One layer of polygons and their ``fields`` into ``path`` (a temporary the caller renames into
    place): a GeoPackage layer in the raster's CRS, or RFC 7946 GeoJSON (GDAL reprojects to EPSG:4326);
    ``append``: more features of a layer already written, or another layer beside it (GeoPackage)."""
    import pyogrio.raw
    import shapely

    options = {"RFC7946": "YES"} if vector_format == "geojson" else {}
    # GeoPackage 1.2, not GDAL >= 3.7's default 1.4: GDAL 3.6 (Debian 12's QGIS) opens 1.4 with a
    # warning, and the layer uses nothing newer than 1.2
    dataset_options = {"VERSION": "1.2"} if vector_format == "gpkg" and not path.exists() else {}
    with warnings.catch_warnings():
        # no CRS (PNG inputs) is documented: pixel coordinates, not worth pyogrio's warning
        warnings.filterwarnings("ignore", message="'crs' was not provided", category=UserWarning)
        pyogrio.raw.write(str(path), shapely.to_wkb(geometries), list(fields.values()), list(fields),
                          layer=layer, driver=FORMATS[vector_format], geometry_type=geometry_type,
                          crs=None if crs is None else crs.to_wkt(), encoding="UTF-8", layer_options=options,
                          dataset_options=dataset_options, append=append)


def write_regions(path: str | Path, regions: Regions, vector_format: str = "gpkg",
                  beside: Callable[[Path], None] | None = None,
                  columns: dict[str, np.ndarray] | None = None) -> Path:
    """Write the regions with columns ``class`` (name), ``class_id`` and ``area`` (CRS units²), and
    the ``columns`` given (name -> one value per region, e.g. a change polygon's classes and scores).

    ``gpkg``: a GeoPackage layer 'regions' in the raster's CRS. ``geojson``: RFC 7946 GeoJSON, which
    GDAL reprojects to EPSG:4326 (lon/lat); needs a georeferenced raster. ``beside(tmp)`` adds more
    layers to the GeoPackage before it is renamed into place (the objects' layer)."""
    check_format(vector_format, regions.crs)
    names = np.array([regions.class_names[k] for k in regions.class_ids], dtype=object)
    with atomic_path(path) as tmp:
        tmp.unlink()  # GDAL creates the file itself (an empty file is not a GeoPackage)
        extra = dict(columns or {})
        write_layer(tmp, LAYER_NAME, regions.geometries,
                    {"class": names, "class_id": regions.class_ids, "area": regions.areas, **extra},
                    regions.crs, vector_format)
        if beside is not None:
            beside(tmp)
    return Path(path)
