"""Reading one raster on another's grid (GDAL's warper, through rasterio's WarpedVRT): the second
date of a change pair is read onto the first's pixels, whatever its CRS, resolution or extent.

:func:`onto_grid` decides it once (the overlap checked, a note for the user) and returns the second
raster with a :class:`Warp`; :class:`~resegzoo.raster.opening.Raster` then reads every window through
:func:`warped`, so the one raster reader reads both dates (bands, palette, nodata, stretch alike).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Any, Iterator

from resegzoo.raster.errors import ImageError

#: GDAL's resampling kernels the user may choose for the warp (rasterio's Resampling names)
RESAMPLINGS = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode")


@dataclass(frozen=True)
class Warp:
    """The grid a raster is read on: CRS (WKT), affine transform, size, and the resampling kernel."""

    crs_wkt: str
    transform: tuple[float, ...]
    width: int
    height: int
    resampling: str = "bilinear"


@contextlib.contextmanager
def warped(src: Any, warp: Warp | None) -> Iterator[Any]:
    """``src`` as read on ``warp``'s grid (itself when ``warp`` is None). Pixels the source does not
    cover are masked: by the source's nodata where it has one, else by an added alpha band."""
    if warp is None:
        yield src
        return
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    has_nodata = any(v is not None for v in src.nodatavals)
    has_mask = any(flag.name in ("per_dataset", "alpha") for flags in src.mask_flag_enums for flag in flags)
    with WarpedVRT(src, crs=CRS.from_wkt(warp.crs_wkt), transform=Affine(*warp.transform), width=warp.width,
                   height=warp.height, resampling=Resampling[warp.resampling],
                   add_alpha=not has_nodata and not has_mask) as vrt:
        yield vrt


def _bounds(raster: Any) -> tuple[float, float, float, float]:
    from affine import Affine
    from rasterio.transform import array_bounds

    return array_bounds(raster.height, raster.width, Affine(*raster.georef.transform))


def onto_grid(after: Any, before: Any, resampling: str = "bilinear") -> tuple[Any, str | None]:
    """``after`` read on ``before``'s grid, and a note saying how (None: it is on that grid already,
    read as it is). Rasters without georeferencing must be the same size (pixel by pixel); a
    georeferenced pair must overlap (ImageError in one line otherwise); CRSs may differ."""
    from rasterio.crs import CRS
    from rasterio.warp import transform_bounds

    if resampling not in RESAMPLINGS:
        raise ImageError(f"resampling {resampling!r}: choose one of {', '.join(RESAMPLINGS)}")
    ga, gb = before.georef, after.georef
    located_a = ga.transform is not None and ga.crs_wkt is not None
    located_b = (gb.transform is not None and gb.crs_wkt is not None) or bool(gb.gcps)
    if not ga.is_georeferenced and not gb.is_georeferenced:
        if (before.height, before.width) != (after.height, after.width):
            raise ImageError(f"{before.path} is {before.width} x {before.height} px and {after.path} "
                             f"{after.width} x {after.height} px, and neither is georeferenced: the two dates must "
                             "be the same size to be compared pixel by pixel")
        return after, None
    if not located_a:
        raise ImageError(f"{before.path}: the first date needs a geotransform and a CRS (its grid is the outputs'); "
                         "it has " + ("none" if not ga.is_georeferenced else "no geotransform (GCPs or RPCs only)"))
    if not located_b:
        raise ImageError(f"{after.path}: not georeferenced (no CRS and geotransform, no GCPs), but {before.path} is: "
                         "the two dates cannot be placed on one grid")
    same = (gb.transform == ga.transform and (before.height, before.width) == (after.height, after.width)
            and CRS.from_wkt(gb.crs_wkt) == CRS.from_wkt(ga.crs_wkt)) if gb.transform and gb.crs_wkt else False
    if same:
        return after, None
    if gb.transform is not None and gb.crs_wkt is not None:
        wb = transform_bounds(CRS.from_wkt(gb.crs_wkt), CRS.from_wkt(ga.crs_wkt), *_bounds(after))
        wa = _bounds(before)
        if wb[0] >= wa[2] or wb[2] <= wa[0] or wb[1] >= wa[3] or wb[3] <= wa[1]:
            raise ImageError(f"{before.path} and {after.path} do not overlap (the second date covers "
                             f"{_box(wb)} in the first's CRS, the first {_box(wa)}): nothing to compare")
    warp = Warp(crs_wkt=ga.crs_wkt, transform=tuple(ga.transform), width=before.width, height=before.height,
                resampling="nearest" if after.palette is not None else resampling)
    kernel = warp.resampling + (" (a palette raster: its indices are never blended)" if after.palette else "")
    crs_a, crs_b = CRS.from_wkt(ga.crs_wkt).to_string(), (CRS.from_wkt(gb.crs_wkt).to_string()
                                                         if gb.crs_wkt else "its GCPs")
    note = (f"{after.path} is read onto the grid of {before.path} ({before.width} x {before.height} px, {crs_a}"
            f"{'' if crs_b == crs_a else f'; it is in {crs_b}'}) by GDAL's warper, {kernel} resampling")
    moved = replace(after, warp=warp, height=before.height, width=before.width, georef=ga)
    return moved, note


def _box(bounds: tuple[float, float, float, float]) -> str:
    return f"x {bounds[0]:.6g}..{bounds[2]:.6g}, y {bounds[1]:.6g}..{bounds[3]:.6g}"
