"""GDAL failures that rasterio lets pass: a write that fails when GDAL flushes its block cache.

Windowed writes go into GDAL's block cache; the blocks reach the disk later, at the latest when
the dataset is closed. If that fails (a full disk), GDAL only reports it through its error
handler ("ERROR 1: TIFFAppendToStrip: Write error ...") and rasterio's ``close()`` returns as if
all went well: the file would be committed incomplete. :func:`raising_gdal_failures` installs an
error handler of its own for the duration of a block (GDAL's handler stack is per thread) and
raises :class:`GdalWriteError` with GDAL's messages if any failure was reported in it.

GDAL is reached through the library rasterio itself loaded (found in this process's memory map);
where it cannot be told apart (not Linux, several GDALs of unknown origin), the block runs
unchecked, as rasterio alone would run it.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import logging
from pathlib import Path
from typing import Any, Iterator

_log = logging.getLogger(__name__)

#: CPLErr values (cpl_error.h)
CE_FAILURE, CE_FATAL = 3, 4
_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_char_p)


class GdalWriteError(OSError):
    """GDAL reported a failure while writing (its messages joined). Its errno is ENOSPC when the
    folder's disk was full at that moment (libtiff prints the reason itself and tells GDAL only
    "Write error"), else EIO."""


@functools.lru_cache(maxsize=1)
def _libgdal() -> Any:
    """rasterio's libgdal, or None. Other packages (pyogrio) may bring a GDAL of their own into the
    process: rasterio's is the one in its wheel's library folder, or the only one loaded."""
    import rasterio

    maps = Path("/proc/self/maps")
    if not maps.exists():
        return None
    loaded = {line.split()[-1] for line in maps.read_text().splitlines()
              if "/libgdal" in line.split()[-1] and ".so" in line.split()[-1]}
    wheel_libs = Path(rasterio.__file__).resolve().parent.parent / "rasterio.libs"
    ours = [path for path in loaded if Path(path).parent == wheel_libs] or (list(loaded) if len(loaded) == 1 else [])
    if len(ours) != 1:
        return None
    lib = ctypes.CDLL(ours[0])  # the already loaded library: dlopen returns the same handle
    lib.CPLPushErrorHandler.argtypes = [_HANDLER]
    return lib


@contextlib.contextmanager
def raising_gdal_failures(what: str) -> Iterator[None]:
    """Raise :class:`GdalWriteError` after the block if GDAL reported a failure inside it while
    writing the file ``what``."""
    lib = _libgdal()
    if lib is None:
        yield
        return
    failures: list[str] = []

    def collect(level: int, number: int, message: bytes | None) -> None:
        text = (message or b"").decode("utf-8", "replace").strip()
        if level >= CE_FAILURE:
            failures.append(text)
        elif level > 0:  # warnings still reach the user, through logging instead of GDAL's stderr
            _log.warning("%s: GDAL: %s", what, text)

    handler = _HANDLER(collect)  # kept referenced until popped
    lib.CPLPushErrorHandler(handler)
    try:
        yield
    finally:
        lib.CPLPopErrorHandler()
    if failures:
        from resegzoo.outputs.atomic import nearly_full

        raise GdalWriteError(errno.ENOSPC if nearly_full(Path(what).parent) else errno.EIO,
                             f"{what}: " + "; ".join(dict.fromkeys(failures)))
