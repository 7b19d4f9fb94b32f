"""A batch's inputs: files, folders and glob patterns expanded to the rasters GDAL opens."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from resegzoo.batch.errors import BatchInputError

__all__ = ["BatchInput", "BatchInputError", "expand_inputs", "shown_path"]

GLOB_CHARS = "*?["


@dataclass(frozen=True)
class BatchInput:
    """One input file and the folder of its outputs, relative to the output folder: the file's
    folder below the folder or glob pattern it was found through (mirrored, so ``a/x.tif`` and
    ``b/x.tif`` write ``a/x.*`` and ``b/x.*``); ``.`` for a file named directly."""

    #: a local file, or a URL as the user gave it (a str: s3://, https://, /vsis3/ ...)
    path: Path | str
    folder: Path = Path(".")
    #: bands to read as R, G, B when the input says (a STAC asset's by common name); --bands wins
    bands: tuple[int, int, int] | None = None
    #: what the sidecar records of where the input came from (a STAC item's id, asset, href)
    origin: tuple[tuple[str, str], ...] = ()

    @property
    def shown(self) -> str:
        """The input as the batch's lines and summary name it: its mirrored relative path."""
        from resegzoo.raster.remote import url_name

        name = url_name(self.path) if isinstance(self.path, str) else self.path.name
        return str(self.folder / name)

    @property
    def public(self) -> Path | str:
        """The input as errors may name it: a URL without its query string (a signature)."""
        from resegzoo.raster.remote import public_url

        return public_url(self.path) if isinstance(self.path, str) else self.path


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
                  notes: list[str] | None = None, stac_search: Any = None, asset: str | None = None,
                  trust_vrt: bool = False) -> list[BatchInput]:
    """Files, folders (every raster GDAL opens in them; below them with ``recursive``) and glob
    patterns (``**`` reaches into subfolders with ``recursive``), in the order given, each once,
    each with its output folder (see :class:`BatchInput`).

    What a folder or a pattern finds leaves out entries that are not regular files (a FIFO would
    never end: each gets a line in ``notes``), the output folder ``out`` and everything below it,
    and resegzoo's own outputs (the files a sidecar beside them lists): a rerun into a folder
    inside the inputs does not segment the last run's outputs. A file named directly is taken as is.

    URLs are read where they are (:mod:`resegzoo.raster.remote`; a prefix or pattern is listed);
    a STAC item or item collection (``.json``, a file or a URL) and ``stac_search``
    (:class:`resegzoo.batch.stac.StacSearch`) give one input per item (its ``asset``, else its
    visual/RGB asset; :mod:`resegzoo.batch.stac`)."""
    import glob

    from resegzoo.raster import remote
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
    from resegzoo.batch import stac

    if stac_search is not None:
        files.extend(_stac_inputs(stac.from_search(stac_search, asset, trust_vrt)))
    for item in map(str, inputs):
        if stac.looks_like_stac(item):
            files.extend(_stac_inputs(stac.from_argument(item, asset, trust_vrt)))
        elif remote.is_url(item):
            files.extend(_remote_inputs(item, recursive))
        elif any(c in item for c in GLOB_CHARS) and not Path(item).exists():
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
    unique: dict[tuple[Path | str, tuple[tuple[str, str], ...]], BatchInput] = {}
    for f in files:  # two STAC items may share an asset: each is an input of its own
        unique.setdefault((f.path, f.origin), f)
    return list(unique.values())


def _stac_inputs(found: Sequence[Any]) -> list[BatchInput]:
    return [BatchInput(f.href if "://" in f.href or f.href.startswith("/vsi") else Path(f.href),
                       bands=f.bands, origin=tuple(f.origin.items())) for f in found]


def _remote_inputs(url: str, recursive: bool) -> list[BatchInput]:
    """A URL as it is, or the rasters below a prefix (``s3://bucket/tiles/``, ``.../*.tif``),
    their keys' folders mirrored like a local folder's."""
    from resegzoo.raster import remote

    if not (remote.is_prefix(url) or remote.has_glob(url)):
        return [BatchInput(url)]
    try:
        base, keys = remote.list_prefix(url, recursive)
    except remote.ListingError as exc:
        raise BatchInputError(str(exc)) from None
    if not keys:
        hint = "" if recursive else " (add --recursive to look below it)"
        raise BatchInputError(f"{remote.public_url(url)}: no rasters ({', '.join(remote.RASTER_SUFFIXES)}) "
                              f"below this prefix{hint}")
    return [BatchInput(remote.join(base, key), Path(key).parent) for key in keys]


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
