"""Georeferencing as plain data: read once from the input, checked, copied onto every output."""
from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass
from typing import Any, Iterator

from resegzoo.raster.errors import ImageError


@contextlib.contextmanager
def quiet_georef() -> Iterator[None]:
    """Plain PNG/JPEG (and label maps of them) have no georeferencing; rasterio would warn about
    it on every open."""
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


@dataclass(frozen=True)
class Georeference:
    """Where the pixels are on Earth, as plain data: an affine transform (rotation included) with
    a CRS, or GCPs with their CRS, and/or RPCs. Copied unchanged onto every output raster."""

    crs_wkt: str | None = None
    transform: tuple[float, ...] | None = None  # (a, b, c, d, e, f); None = none/identity
    gcps: tuple[tuple[float, float, float, float, float, str], ...] = ()  # (row, col, x, y, z, id)
    gcps_crs_wkt: str | None = None
    rpcs: tuple[tuple[str, str], ...] = ()  # GDAL RPC metadata items

    @property
    def is_georeferenced(self) -> bool:
        return self.crs_wkt is not None or self.transform is not None or bool(self.gcps) or bool(self.rpcs)

    @property
    def crs_string(self) -> str | None:
        from rasterio.crs import CRS

        wkt = self.crs_wkt or self.gcps_crs_wkt
        return None if wkt is None else CRS.from_wkt(wkt).to_string()

    def profile(self) -> dict[str, Any]:
        """Creation keywords for rasterio.open(..., 'w')."""
        from affine import Affine
        from rasterio.crs import CRS

        out: dict[str, Any] = {}
        if self.crs_wkt is not None:
            out["crs"] = CRS.from_wkt(self.crs_wkt)
        if self.transform is not None:
            out["transform"] = Affine(*self.transform)
        return out

    def apply(self, dst: Any) -> None:
        """Set the GCPs and RPCs of an open output dataset (the profile carries CRS and transform)."""
        from rasterio.control import GroundControlPoint
        from rasterio.crs import CRS
        from rasterio.rpc import RPC

        if self.gcps:
            points = [GroundControlPoint(row=r, col=c, x=x, y=y, z=z, id=i) for r, c, x, y, z, i in self.gcps]
            dst.gcps = (points, CRS.from_wkt(self.gcps_crs_wkt) if self.gcps_crs_wkt else None)
        if self.rpcs:
            dst.rpcs = RPC.from_gdal(dict(self.rpcs))

    @classmethod
    def of(cls, src: Any) -> "Georeference":
        gcps, gcps_crs = src.gcps
        transform = None if (src.transform.is_identity or gcps) else tuple(src.transform)[:6]
        rpcs = () if src.rpcs is None else tuple(sorted((k, str(v)) for k, v in src.rpcs.to_gdal().items()))
        return cls(crs_wkt=None if src.crs is None else src.crs.to_wkt(), transform=transform,
                   gcps=tuple((g.row, g.col, g.x, g.y, g.z or 0.0, str(g.id)) for g in gcps),
                   gcps_crs_wkt=None if gcps_crs is None else gcps_crs.to_wkt(), rpcs=rpcs)


def check_georeference(path: str, georef: Georeference) -> None:
    """A transform or GCPs with NaN or Inf place no pixel anywhere: every output's georeferencing,
    the sidecar (strict JSON) and the vectors would be broken; refuse before any work."""
    if georef.transform is not None and not all(math.isfinite(v) for v in georef.transform):
        raise ImageError(f"{path}: the geotransform {list(georef.transform)} is not finite (NaN or Inf)")
    if georef.transform is not None and georef.transform[0] * georef.transform[4] - \
            georef.transform[1] * georef.transform[3] == 0:
        raise ImageError(f"{path}: the geotransform {list(georef.transform)} is degenerate (pixel size 0)")
    bad = next((g for g in georef.gcps if not all(math.isfinite(v) for v in g[:5])), None)
    if bad is not None:
        raise ImageError(f"{path}: a ground control point is not finite: {list(bad[:5])}")

