"""File names that are not UTF-8.

On Linux a file name is bytes; Python shows the bytes that are not UTF-8 as lone surrogates
(``os.fsdecode``'s surrogateescape), which GDAL's bindings, JSON and the terminal refuse to encode.
Inputs keep their real name (Python's own file functions take it as is); what resegzoo shows,
records or derives from it goes through here: and GDAL is given such a file through
:func:`gdal_name`. :func:`is_remote` tells a path of a network or virtual file system.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator


def is_utf8(text: str) -> bool:
    """Whether ``text`` (a name as Python decoded it from the file system) is valid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(text: str) -> str:
    """``text`` for a terminal, a log line or JSON: each byte that is not UTF-8 as ``\\xNN``."""
    if is_utf8(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def output_stem(stem: str) -> str:
    """The stem of an input as the stem of its outputs: valid UTF-8, each byte that is not as
    ``%NN`` (GDAL writes the outputs, and a name it cannot encode would stop the batch)."""
    # os.fsdecode turns each byte that is not UTF-8 into the lone surrogate U+DC80 + byte
    return "".join(f"%{ord(c) - 0xDC00:02X}" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in stem)


def path_record(path: str | Path) -> dict[str, Any]:
    """How a sidecar records an input path: ``input`` as shown; for a name that is not UTF-8 also
    its exact bytes (``input_bytes_hex``), so a later run can tell it is the same file."""
    text = str(path)
    record: dict[str, Any] = {"input": shown(text)}
    if not is_utf8(text):
        record["input_bytes_hex"] = os.fsencode(text).hex()
    return record


def path_of_record(record: dict[str, Any]) -> Path:
    """The input path a sidecar recorded (see :func:`path_record`)."""
    if "input_bytes_hex" in record:
        return Path(os.fsdecode(bytes.fromhex(record["input_bytes_hex"])))
    return Path(record["input"])


def is_remote(path: str) -> bool:
    """A path the USER gave that names a network or virtual file system (their explicit choice)."""
    return "://" in path or path.startswith("/vsi")


@contextlib.contextmanager
def gdal_name(path: str | Path) -> Iterator[str]:
    """A name GDAL can be given for the local file ``path``. rasterio encodes names as strict
    UTF-8, so a name that is not (bytes a Linux file name may hold) is reached through a
    temporary folder of links with UTF-8 names (see :func:`resegzoo.raster.names.output_stem`):
    the file and its siblings of the same stem, so world files, .aux.xml, .ovr and .msk are found."""
    import tempfile

    from resegzoo.raster import remote

    path = str(path)
    if remote.is_url(path):
        yield remote.gdal_path(path)
        return
    if is_utf8(path) or is_remote(path):
        yield path
        return
    target = Path(path).absolute()
    folder, name = os.fsencode(target.parent), os.fsencode(target.name)
    stem = name.split(b".", 1)[0]
    with tempfile.TemporaryDirectory(prefix="resegzoo-names-") as links:
        for sibling in os.listdir(folder):
            if sibling == name or (stem and sibling.startswith(stem + b".")):
                os.symlink(os.path.join(folder, sibling), os.path.join(links, output_stem(os.fsdecode(sibling))))
        yield os.path.join(links, output_stem(target.name))
