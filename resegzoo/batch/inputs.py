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


def expand_inputs(inputs: Sequence[str | Path], recursive: bool = False, *, out: str | Path | None = None,
                  notes: list[str] | None = None) -> list[BatchInput]:
    """Files, folders (every raster GDAL opens in them; below them with ``recursive``) and glob
    patterns (``**`` reaches into subfolders with ``recursive``), in the order given, each once,
    each with its output folder (see :class:`BatchInput`).

    What a folder or a pattern finds leaves out entries that are not regular files (a FIFO would
    never end: each gets a line in ``notes``), the output folder ``out`` and everything below it,
    and resegzoo's own outputs (the files a sidecar beside them lists): a rerun into a folder
    inside the inputs does not segment the last run's outputs. A file named directly is taken as is."""
    import glob

    from resegzoo.raster.discovery import find_rasters, is_raster
    from resegzoo.raster.sandbox import not_regular

    skipped: list[tuple[Path, str]] = []
    left_out: list[Path] = []
    own = _OwnOutputs(out)

    def kept(found: Sequence[Path]) -> list[Path]:
        out_of_inputs = [p for p in found if own.holds(p)]
        left_out.extend(out_of_inputs)
        return [p for p in found if p not in out_of_inputs]

    files: list[BatchInput] = []
    for item in map(str, inputs):
        if any(c in item for c in GLOB_CHARS) and not Path(item).exists():
            root = _glob_root(item)
            matches = [Path(m) for m in sorted(glob.glob(item, recursive=recursive))]
            skipped.extend((m, kind) for m in matches if (kind := not_regular(m)) is not None)
            found = [m for m in matches if not_regular(m) is None and m.is_file() and is_raster(m)]
            for folder in (m for m in matches if m.is_dir() and not own.holds(m)):
                found.extend(find_rasters(folder, recursive, skipped, exclude=own.folders))
            found = kept(found)
            if not found:
                raise BatchInputError(f"{item}: no rasters match this pattern")
            files.extend(BatchInput(f, _below(f, root)) for f in found)
        elif Path(item).is_dir():
            found = kept(find_rasters(item, recursive, skipped, exclude=own.folders))
            if not found:
                hint = "" if recursive else " (add --recursive to look in subfolders)"
                raise BatchInputError(f"{item}: no rasters GDAL can open in this folder{hint}")
            files.extend(BatchInput(f, _below(f, Path(item))) for f in found)
        elif Path(item).exists():
            files.append(BatchInput(Path(item)))
        else:
            raise BatchInputError(f"{item}: no such file or folder")
    if notes is not None:
        notes.extend(f"{shown_path(p)}: skipped, it is {kind}, not a regular file" for p, kind in dict(skipped).items())
        if left_out:
            notes.append(f"left out {len(left_out)} file(s) resegzoo wrote (its outputs, listed by their sidecars), "
                         f"e.g. {shown_path(left_out[0])}")
    unique: dict[Path, BatchInput] = {}
    for f in files:
        unique.setdefault(f.path, f)
    return list(unique.values())


def shown_path(path: Path) -> str:
    from resegzoo.raster.names import shown

    return shown(str(path))


class _OwnOutputs:
    """What a folder or pattern must not take as inputs: the output folder and what lies below
    it, and the files a resegzoo sidecar (``STEM.json`` with its ``outputs``) lists beside it."""

    def __init__(self, out: str | Path | None) -> None:
        self.folders: tuple[Path, ...] = () if out is None else (Path(out),)
        self._out = None if out is None else Path(out).resolve()
        self._listed: dict[Path, set[str]] = {}

    def holds(self, path: Path) -> bool:
        real = path.resolve()
        if self._out is not None and (real == self._out or real.is_relative_to(self._out)):
            return True
        return path.name in self._outputs_in(path.parent)

    def _outputs_in(self, folder: Path) -> set[str]:
        if folder not in self._listed:
            self._listed[folder] = _sidecar_outputs(folder)
        return self._listed[folder]


def _sidecar_outputs(folder: Path) -> set[str]:
    """The file names the resegzoo sidecars in ``folder`` list as their outputs."""
    import json

    from resegzoo.outputs.reading import read_text

    names: set[str] = set()
    for sidecar in folder.glob("*.json"):
        try:
            record = json.loads(read_text(sidecar))  # a FIFO or a huge file there is no sidecar: not read
        except (OSError, ValueError):
            continue
        outputs = record.get("outputs") if isinstance(record, dict) else None
        if isinstance(outputs, dict) and "input" in record and "labels" in outputs:
            names.update(v for k, v in outputs.items() if isinstance(v, str) and k != "probs_format")
    return names
