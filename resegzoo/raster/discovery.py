"""Which files are images: GDAL decides (by content, never the suffix); sidecars of other rasters are not."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

from resegzoo.raster.names import gdal_name
from resegzoo.raster.sandbox import gdal_env, not_regular, reaches_other_files

#: files GDAL can open that are parts of another raster, never images of their own
SIDECAR_SUFFIXES = (".aux.xml", ".ovr", ".msk", ".tfw", ".tifw", ".pgw", ".pngw", ".jgw", ".jpgw", ".wld",
                    ".prj", ".xml", ".json", ".qml", ".txt", ".yaml", ".yml")


def is_raster(path: str | Path) -> bool:
    """Whether GDAL opens ``path`` as a raster with bands (sidecar files of other rasters excluded)."""
    import rasterio
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    name = Path(path).name.lower()
    if name.startswith(".") or name.endswith(SIDECAR_SUFFIXES):
        return False
    if reaches_other_files(path):
        return True  # a raster by intent; whether it may be opened is open_raster's decision
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with gdal_env(str(path)), gdal_name(path) as name, rasterio.open(name) as src:
                return src.count > 0
    except (RasterioError, CPLE_BaseError, NotGeoreferencedWarning):
        return False


def find_rasters(folder: str | Path, recursive: bool = False, skipped: list[tuple[Path, str]] | None = None,
                 exclude: Sequence[Path] = ()) -> list[Path]:
    """The rasters in ``folder`` (and below, if ``recursive``), by what GDAL opens, sorted.
    Entries that are not regular files (FIFOs, devices, sockets) are never opened: with
    ``skipped`` given, each is added to it with what it is, for a note. Folders in ``exclude``
    (and what is below them) are not looked into."""
    folder = Path(folder)
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    excluded = [e.resolve() for e in exclude]
    found = []
    for p in candidates:
        if excluded and any(p.resolve().is_relative_to(e) for e in excluded):
            continue
        kind = not_regular(p)
        if kind is not None:
            if skipped is not None:
                skipped.append((p, kind))
        elif p.is_file() and is_raster(p):
            found.append(p)
    return sorted(found)
