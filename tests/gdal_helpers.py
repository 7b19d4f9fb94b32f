"""Read what rasterio does not expose (category names, raster attribute tables) through GDAL's C API.

rasterio's wheels ship libgdal; the tests call it with ctypes so that the class names are read back
by GDAL itself, not by parsing the XML resegzoo had GDAL write."""
from __future__ import annotations

import ctypes
import functools
from pathlib import Path


@functools.lru_cache(maxsize=1)
def libgdal() -> ctypes.CDLL:
    import rasterio

    site = Path(rasterio.__file__).resolve().parent.parent
    found = sorted((site / "rasterio.libs").glob("libgdal*.so*")) + sorted((site / "rasterio" / ".dylibs").glob("libgdal*"))
    if not found:
        raise RuntimeError(f"no libgdal beside rasterio in {site}")
    lib = ctypes.CDLL(str(found[0]))
    lib.GDALOpen.restype = ctypes.c_void_p
    lib.GDALOpen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.GDALClose.argtypes = [ctypes.c_void_p]
    lib.GDALGetRasterBand.restype = ctypes.c_void_p
    lib.GDALGetRasterBand.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.GDALGetRasterCategoryNames.restype = ctypes.POINTER(ctypes.c_char_p)
    lib.GDALGetRasterCategoryNames.argtypes = [ctypes.c_void_p]
    lib.GDALGetDefaultRAT.restype = ctypes.c_void_p
    lib.GDALGetDefaultRAT.argtypes = [ctypes.c_void_p]
    for name in ("GDALRATGetRowCount", "GDALRATGetColumnCount", "GDALRATGetTableType"):
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    lib.GDALRATGetNameOfCol.restype = ctypes.c_char_p
    lib.GDALRATGetNameOfCol.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.GDALRATGetUsageOfCol.restype = ctypes.c_int
    lib.GDALRATGetUsageOfCol.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.GDALRATGetValueAsString.restype = ctypes.c_char_p
    lib.GDALRATGetValueAsString.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.GDALAllRegister()
    return lib


def category_names_and_rat(path: str | Path) -> tuple[list[str], list[tuple[str, int]], list[list[str]], int]:
    """(category names, [(column name, usage)], rows as strings, table type) of band 1."""
    lib = libgdal()
    ds = lib.GDALOpen(str(path).encode(), 0)
    if not ds:
        raise RuntimeError(f"GDAL cannot open {path}")
    try:
        band = lib.GDALGetRasterBand(ds, 1)
        rat = lib.GDALGetDefaultRAT(band)  # first: GTiff loads the .aux.xml lazily, and only on some calls
        names: list[str] = []
        cats = lib.GDALGetRasterCategoryNames(band)
        i = 0
        while cats and cats[i] is not None:
            names.append(cats[i].decode("utf-8"))
            i += 1
        if not rat:
            return names, [], [], -1
        ncol, nrow = lib.GDALRATGetColumnCount(rat), lib.GDALRATGetRowCount(rat)
        columns = [(lib.GDALRATGetNameOfCol(rat, c).decode(), lib.GDALRATGetUsageOfCol(rat, c)) for c in range(ncol)]
        rows = [[lib.GDALRATGetValueAsString(rat, r, c).decode("utf-8") for c in range(ncol)] for r in range(nrow)]
        return names, columns, rows, lib.GDALRATGetTableType(rat)
    finally:
        lib.GDALClose(ds)
