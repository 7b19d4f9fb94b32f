"""Names: one output stem per input, claimed under the output folder (a taken stem gets ``-2``,
``-3`` ...; with skip_existing, an input whose finished result is there gets none)."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Sequence

from resegzoo.outputs.gis.products import GIS_SUFFIXES
from resegzoo.raster.names import output_stem, path_of_record

#: the files written per input, after its stem
OUTPUT_SUFFIXES = (".labels.png", ".labels.tif", ".probs.tif", ".overlay.png", ".json") + GIS_SUFFIXES


def input_stem(info: Any) -> str:
    """The stem of an input's outputs: a STAC item's id, else the file's (or URL's) name."""
    item = dict(getattr(info, "origin", ()) or ()).get("stac_item")
    return output_stem(item.replace("/", "_") if item else Path(info.path).stem)


def sidecar_matches(sidecar: Path, info: Any, expected: dict[str, Any]) -> bool:
    """Whether ``sidecar`` is a finished result of this input with these settings."""
    import json

    from resegzoo.outputs.reading import read_text

    try:
        record = json.loads(read_text(sidecar))  # a FIFO or a link there is no result: not read
        same_input = path_of_record(record).resolve() == Path(info.path).resolve()
    except (OSError, ValueError, KeyError, TypeError):
        return False  # unreadable or not ours: not a result to keep
    same_raster = record.get("size") == [info.height, info.width] and record.get("bands") == list(info.bands)
    return same_input and same_raster and all(record.get(key) == value for key, value in expected.items())


def output_stems(infos: Sequence[Any], out: Path, claims: Any, overwrite: bool,
                 skip_expected: dict[str, Any] | None) -> list[str | None]:
    """Claim a distinct output stem per input; taken stems get -2, -3, ... (never overwrite).

    A stem is taken when this run or another live run claims it, or (without ``overwrite``) when
    any of its files exists. A stale claim (its run was killed) frees the stem: its files are
    unfinished. With ``skip_expected`` (skip_existing), an input whose finished result with
    these settings is found under one of its stems gets None: nothing to do.
    """
    from resegzoo.outputs.claims import folder_lock

    used: set[str] = set()
    stems: list[str | None] = []
    with folder_lock(out):
        for info in infos:
            base = input_stem(info)
            chosen, done = None, False
            for n in itertools.count(1):
                stem = base if n == 1 else f"{base}-{n}"
                state = claims.state(stem)
                if state == "stale" and (out / f"{stem}.json").is_file():
                    claims.clear(stem)  # killed after its sidecar: the unit is finished, only the claim is left
                    state = "none"
                if stem.lower() in used or state in ("mine", "live"):
                    continue
                exists = any((out / f"{stem}{suffix}").exists() for suffix in OUTPUT_SUFFIXES)
                if state == "none" and skip_expected is not None and sidecar_matches(
                        out / f"{stem}.json", info, skip_expected):
                    done = True
                    break
                if chosen is None and (state == "stale" or overwrite or not exists):
                    chosen = stem
                # with skip_existing, look on to the first unused stem for a finished result
                if not exists or (chosen is not None and skip_expected is None):
                    break
            if done:
                stems.append(None)
                continue
            assert chosen is not None  # the walk ends at a stem with no files, which is usable
            claims.take(chosen)
            used.add(chosen.lower())
            stems.append(chosen)
    return stems


def remove_outputs(out: Path, stem: str) -> None:
    """Delete whatever exists of one stem's outputs (an unfinished or replaced unit)."""
    for suffix in OUTPUT_SUFFIXES:
        (out / f"{stem}{suffix}").unlink(missing_ok=True)

