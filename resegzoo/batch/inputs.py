"""A batch's inputs: files, folders and glob patterns expanded to the rasters GDAL opens."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from resegzoo.errors import ResegzooError

GLOB_CHARS = "*?["


class BatchInputError(ResegzooError):
    """An input argument that names no raster (no such file, an empty folder, a pattern that
    matches nothing): a usage error, before any work."""


def expand_inputs(inputs: Sequence[str | Path], recursive: bool = False) -> list[Path]:
    """Files, folders (every raster GDAL opens in them; below them with ``recursive``) and glob
    patterns (``**`` reaches into subfolders with ``recursive``), in the order given, each once."""
    import glob

    from resegzoo.raster.reader import find_rasters, is_raster

    files: list[Path] = []
    for item in map(str, inputs):
        if any(c in item for c in GLOB_CHARS) and not Path(item).exists():
            matches = [Path(m) for m in sorted(glob.glob(item, recursive=recursive))]
            found = [m for m in matches if m.is_file() and is_raster(m)]
            for folder in (m for m in matches if m.is_dir()):
                found.extend(find_rasters(folder, recursive))
            if not found:
                raise BatchInputError(f"{item}: no rasters match this pattern")
            files.extend(found)
        elif Path(item).is_dir():
            found = find_rasters(item, recursive)
            if not found:
                hint = "" if recursive else " (add --recursive to look in subfolders)"
                raise BatchInputError(f"{item}: no rasters GDAL can open in this folder{hint}")
            files.extend(found)
        elif Path(item).exists():
            files.append(Path(item))
        else:
            raise BatchInputError(f"{item}: no such file or folder")
    unique: dict[Path, None] = {}
    for f in files:
        unique.setdefault(f, None)
    return list(unique)
