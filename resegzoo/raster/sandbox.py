"""Files that reach other files: what GDAL may open for an untrusted input, and how.

A VRT (and a few other XML "datasets") is a recipe for reading other files: a mosaic of local
rasters is what it is for, but a raw band reads the bytes of ANY file (a key, a password file) as
pixels, and a /vsicurl/ or http source makes requests to any host. Untrusted (the default), a VRT
may reference local raster files only (nested VRTs are checked the same way), and GDAL is told
not to run pixel-function code and not to fetch anything over HTTP.
``trust_vrt=True`` (``--trust-vrt``) lifts all of it for files the user vouches for.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from resegzoo.raster.errors import ImageError
from resegzoo.raster.names import is_remote

#: how deep VRTs may nest (a VRT of VRTs of ...); cycles are refused too
MAX_VRT_DEPTH = 8
#: how much of a file is looked at to tell a VRT (GDAL itself looks at the first 1024 bytes)
_HEADER_BYTES = 4096
#: XML datasets that describe a network service: each open makes requests
_SERVICE_MARKERS = (b"<GDAL_WMS", b"<GDAL_WMTS", b"<GDAL_WCS", b"<WCS_GDAL", b"<GDAL_DAAS", b"<GDALTileIndexDataset",
                    b"<GDAL_TMS", b"<OGCAPI")
#: GDAL configuration for every read of an untrusted file: no pixel-function code, no HTTP(S)
#: through /vsicurl/ and the cloud file systems built on it (an extension no file has is the one
#: switch GDAL offers). Raw bands have no run-time switch (GDAL_VRT_ENABLE_RAWRASTERBAND is a build
#: option of GDAL, and rasterio's wheels build it in): :func:`check_sources` is their guard.
#: Directory listing stays on: world files, .ovr and .msk sidecars are found through it, and with
#: the network off it only lists local folders.
UNTRUSTED_GDAL_OPTIONS = {"GDAL_VRT_ENABLE_PYTHON": "NO", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".resegzoo-network-off"}


@contextlib.contextmanager
def gdal_env(path: str, trust_vrt: bool = False) -> Iterator[None]:
    """rasterio's environment for reading ``path``: :data:`UNTRUSTED_GDAL_OPTIONS` unless trusted
    (a remote path the user typed keeps the network: it is what they asked for)."""
    import rasterio

    from resegzoo.raster import remote

    options = {} if trust_vrt else dict(UNTRUSTED_GDAL_OPTIONS)
    if is_remote(path):
        options.pop("CPL_VSIL_CURL_ALLOWED_EXTENSIONS", None)
    if remote.is_url(path):
        options.update(remote.gdal_options())  # bounded retries and time-outs, no listing on open
        remote.scrub_gdal_logs()  # GDAL's warnings name the URL it read: not its signature
    if not options:
        yield
        return
    with rasterio.Env(**options):
        yield


@contextlib.contextmanager
def open_dataset(path: str, trust_vrt: bool = False, shown: str | None = None) -> Iterator[Any]:
    """``rasterio.open`` of ``path`` under :func:`gdal_env` and :func:`~resegzoo.raster.names.gdal_name`.
    A remote file the user did not vouch for must not be a VRT or a web-service XML: those read
    other URLs and files (ImageError naming ``shown``, the URL as it may be shown)."""
    import rasterio

    from resegzoo.raster import remote
    from resegzoo.raster.names import gdal_name

    with gdal_env(path, trust_vrt), gdal_name(path) as name:
        if remote.is_url(path) and not trust_vrt:
            first, problem = remote.header(path)
            where = shown or remote.public_url(path)
            if not first:
                raise ImageError(f"{where}: cannot open this URL ({remote.explain(problem)})")
            if _reaches_other_files(first):
                raise ImageError(f"{where}: a VRT or service XML on a server reads other files and URLs; "
                                 "not followed unless --trust-vrt")
        with rasterio.open(name) as src:
            yield src


def not_regular(path: str | Path) -> str | None:
    """What the local ``path`` is when it exists and is not a regular file (a link is followed):
    ``a FIFO (named pipe)``, ``a character device``, ...; None for a regular file, a folder, a
    missing path or a remote one. Opening a FIFO waits for a writer forever, a device may never
    end: GDAL must not be given one."""
    import os
    import stat

    from resegzoo.errors import file_kind

    if is_remote(str(path)):
        return None
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else file_kind(mode)


def _header(path: str) -> bytes:
    import os
    import stat

    try:  # without blocking: a FIFO put in place of a checked file yields nothing, not a hang
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError:
        return b""  # not a local readable file: GDAL's own open reports it
    try:
        return os.read(fd, _HEADER_BYTES) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    except OSError:
        return b""
    finally:
        os.close(fd)


def reaches_other_files(path: str | Path) -> bool:
    """Whether the local file ``path`` is a VRT or a network-service XML dataset (GDAL decides by
    content, not by name): files :func:`check_sources` looks into before GDAL may open them."""
    return _reaches_other_files(_header(str(path)))


def _reaches_other_files(header: bytes) -> bool:
    return b"<VRTDataset" in header or any(m in header for m in _SERVICE_MARKERS)


def _source_problem(source: str) -> str | None:
    """Why a VRT's source may not be read untrusted, or None for a plain local path."""
    lowered = source.strip().lower()
    if lowered.startswith("/vsi"):
        kind = lowered[1:].split("/", 1)[0]
        family = "an archive" if kind in ("vsizip", "vsitar", "vsigzip", "vsi7z", "vsirar") else "a network or virtual"
        return f"reads through {family} file system (/{kind}/)"
    if "://" in lowered:
        return "is a network address"
    if lowered.startswith("<"):
        return "is an inline dataset"
    head = lowered.split(":", 1)[0]
    if ":" in lowered and head.replace("_", "").isalnum():
        return f"uses a GDAL driver prefix ({head.upper()}:)"
    return None


def check_sources(path: str | Path, trust_vrt: bool = False) -> None:
    """Refuse (ImageError naming ``path``) a local file that would make GDAL read other files than
    local rasters: a VRT with a raw band, a pixel function in Python, a network / archive /
    virtual-file-system source, a source that is not a local file, VRTs nested too deep or in a
    cycle; an XML dataset of a network service (WMS, WMTS, WCS, tile index, ...). Nothing to do
    when ``trust_vrt``."""
    if not trust_vrt:
        _check_sources(str(path), str(path), ())


def _check_sources(top: str, path: str, seen: tuple[str, ...]) -> None:
    import xml.etree.ElementTree as ET

    header = _header(path)
    where = top if path == top else f"{top} (through {path})"
    refuse = "; give --trust-vrt if you trust the file"
    service = next((m.decode()[1:] for m in _SERVICE_MARKERS if m in header), None)
    if service is not None:
        raise ImageError(f"{where}: a {service} dataset reads from the network{refuse}")
    if b"<VRTDataset" not in header:
        return
    real = str(Path(path).resolve())
    if real in seen:
        raise ImageError(f"{where}: VRTs that include each other")
    if len(seen) >= MAX_VRT_DEPTH:
        raise ImageError(f"{where}: VRTs nested deeper than {MAX_VRT_DEPTH}")
    try:
        # expat refuses entity amplification and never fetches external entities
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ImageError(f"{where}: a VRT that cannot be checked ({exc})") from None
    for element in root.iter():
        # GDAL's XML reader matches element and attribute names ignoring case: so does this check
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        attrs = {k.lower(): v for k, v in element.attrib.items()}
        text = (element.text or "").strip()
        if tag == "vrtrawrasterband" or "raw" in attrs.get("subclass", "").lower():
            raise ImageError(f"{where}: a VRT raw band reads the bytes of any file as pixels{refuse}")
        if tag == "pixelfunctionlanguage" and text.lower() == "python":
            raise ImageError(f"{where}: a VRT pixel function in Python runs code{refuse}")
        hidden = next((v for v in (text, *attrs.values()) if v.strip().lower().startswith("/vsi")), None)
        if tag not in ("sourcefilename", "sourcedataset", "indexdataset"):
            if hidden is not None:
                raise ImageError(f"{where}: {hidden[:80]!r} {_source_problem(hidden)}{refuse}")
            continue
        source = text
        problem = _source_problem(source)
        if problem is not None:
            raise ImageError(f"{where}: the source {source[:80]!r} {problem}{refuse}")
        relative = attrs.get("relativetovrt", "0").strip().lower() in ("1", "true", "yes", "on")
        target = Path(path).parent / source if relative and not Path(source).is_absolute() else Path(source)
        if not target.is_file():
            raise ImageError(f"{where}: the source {source[:80]!r} is not a file")
        _check_sources(top, str(target), seen + (real,))
