"""A batch's inputs: files, folders and glob patterns expanded to the rasters GDAL opens."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from resegzoo.errors import ResegzooError

GLOB_CHARS = "*?["


class BatchInputError(ResegzooError):
    """An input argument that names no raster (no such file, an empty folder, a pattern that
    matches nothing): a usage error, before any work."""


@dataclass(frozen=True)
class BatchInput:
    """One input file and the folder of its outputs, relative to the output folder: the file's
    folder below the folder or glob pattern it was found through (mirrored, so ``a/x.tif`` and
    ``b/x.tif`` write ``a/x.*`` and ``b/x.*``); ``.`` for a file named directly."""

    path: Path
    folder: Path = Path(".")

    @property
    def shown(self) -> str:
        """The input as the batch's lines and summary name it: its mirrored relative path."""
        return str(self.folder / self.path.name)


def _glob_root(pattern: str) -> Path:
    """The folder a glob pattern starts from: its leading parts without glob characters."""
    parts = Path(pattern).parts
    fixed = [part for part in itertools.takewhile(lambda p: not any(c in p for c in GLOB_CHARS), parts)]
    return Path(*fixed) if fixed else Path(".")


def _below(path: Path, root: Path) -> Path:
    try:
        return path.parent.relative_to(root)
    except ValueError:  # not below it (a pattern with ``..``): not mirrored
        return Path(".")


def expand_inputs(inputs: Sequence[str | Path], recursive: bool = False) -> list[BatchInput]:
    """Files, folders (every raster GDAL opens in them; below them with ``recursive``) and glob
    patterns (``**`` reaches into subfolders with ``recursive``), in the order given, each once,
    each with its output folder (see :class:`BatchInput`)."""
    import glob

    from resegzoo.raster.discovery import find_rasters, is_raster

    files: list[BatchInput] = []
    for item in map(str, inputs):
        if any(c in item for c in GLOB_CHARS) and not Path(item).exists():
            root = _glob_root(item)
            matches = [Path(m) for m in sorted(glob.glob(item, recursive=recursive))]
            found = [m for m in matches if m.is_file() and is_raster(m)]
            for folder in (m for m in matches if m.is_dir()):
                found.extend(find_rasters(folder, recursive))
            if not found:
                raise BatchInputError(f"{item}: no rasters match this pattern")
            files.extend(BatchInput(f, _below(f, root)) for f in found)
        elif Path(item).is_dir():
            found = find_rasters(item, recursive)
            if not found:
                hint = "" if recursive else " (add --recursive to look in subfolders)"
                raise BatchInputError(f"{item}: no rasters GDAL can open in this folder{hint}")
            files.extend(BatchInput(f, _below(f, Path(item))) for f in found)
        elif Path(item).exists():
            files.append(BatchInput(Path(item)))
        else:
            raise BatchInputError(f"{item}: no such file or folder")
    unique: dict[Path, BatchInput] = {}
    for f in files:
        unique.setdefault(f.path, f)
    return list(unique.values())
