"""Rasters where users keep them: HTTPS servers and object storage (S3, Google Cloud Storage, Azure).

A URL the user passes is their choice: ``https://`` (``http://`` when written out), ``s3://bucket/key``,
``gs://bucket/key``, ``az://container/blob`` and GDAL's own ``/vsicurl/``, ``/vsis3/``, ``/vsigs/``,
``/vsiaz/`` ... paths. GDAL reads them: windowed, by HTTP range requests (a block of a COG costs its
tiles, never the whole file), with bounded retries and time-outs, credentials from each cloud's
standard environment variables and profile files (GDAL's own lookup: ``AWS_*``/``~/.aws``,
``GOOGLE_APPLICATION_CREDENTIALS``/``GS_*``, ``AZURE_STORAGE_*``).

What resegzoo shows, logs and records of a URL is :func:`public_url`: no query string (a signed
URL's signature is there) and no user:password. Untrusted, a remote file whose first bytes
(:func:`header`) are a VRT or a web-service XML is refused: it is a list of other URLs and files,
which are not followed unless ``--trust-vrt`` (the rule for local files).
"""
from __future__ import annotations

import fnmatch
import os
import re
from typing import Iterator
from urllib.parse import unquote, urlsplit, urlunsplit

#: URL schemes and the GDAL virtual file system that reads each
SCHEMES = {"https": "/vsicurl/", "http": "/vsicurl/", "s3": "/vsis3/", "gs": "/vsigs/", "az": "/vsiaz/",
           "azure": "/vsiaz/", "abfs": "/vsiadls/"}
#: GDAL's network file systems (a path starting with one is remote as it is)
VSI_NETWORK = ("/vsicurl/", "/vsis3/", "/vsigs/", "/vsiaz/", "/vsiadls/", "/vsioss/", "/vsiswift/", "/vsiwebhdfs/",
               "/vsicurl_streaming/", "/vsis3_streaming/", "/vsigs_streaming/", "/vsiaz_streaming/")
#: what a folder-like prefix (``s3://bucket/tiles/``) lists: objects with these suffixes
RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".png", ".jpg", ".jpeg", ".webp")
#: GDAL settings for remote reads, each unless the user's environment sets it: retries and time-outs
#: bounded; no directory listing on open (GDAL would list the whole prefix of each object to look
#: for sidecars: thousands of requests in a big bucket)
REMOTE_GDAL_DEFAULTS = {
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "1",
    "GDAL_HTTP_CONNECTTIMEOUT": "15",
    "GDAL_HTTP_TIMEOUT": "60",
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
}
_GLOB = "*?["


def is_url(text: str) -> bool:
    """Whether ``text`` names a remote raster (a URL of a known scheme or a GDAL network path)."""
    text = str(text)
    if text.startswith(VSI_NETWORK):
        return True
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    return scheme in SCHEMES


def gdal_path(url: str) -> str:
    """The GDAL name of ``url``: ``s3://b/k`` -> ``/vsis3/b/k``, ``https://h/x`` -> ``/vsicurl/https://h/x``."""
    if url.startswith("/vsi"):
        return url
    scheme, rest = url.split("://", 1)
    prefix = SCHEMES[scheme.lower()]
    return prefix + (url if prefix == "/vsicurl/" else rest)


def public_url(url: str) -> str:
    """``url`` as shown, logged and recorded: no query string or fragment (a signature, a token)
    and no user:password; the rest as given."""
    text = str(url)
    inner = ""
    for prefix in ("/vsicurl/", "/vsicurl_streaming/"):
        if text.startswith(prefix) and "://" in text:
            inner, text = prefix, text[len(prefix):]
    if "://" in text:
        parts = urlsplit(text)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        text = urlunsplit((parts.scheme, host, parts.path, "", ""))
    else:
        text = text.split("?", 1)[0]
    return inner + text


#: a URL's query string up to the end of the URL in a message (punctuation before a space is the message's)
_QUERY = re.compile(r"(\w+://[^\s'\"?]*)\?[^\s'\"]*?(?=[:,;.)]?(?:[\s'\"]|$))")


def scrub(message: str) -> str:
    """``message`` (e.g. GDAL's) with every URL's query string and credentials removed."""
    message = _QUERY.sub(r"\1", message)
    return re.sub(r"(\w+://)[^/\s'\"@]+@", r"\1", message)


def explain(detail: str) -> str:
    """GDAL's message about a URL in a user's words (the HTTP status or the network failure first)."""
    lowered = detail.lower()
    for needle, meaning in (("404", "no such object: HTTP 404"), ("403", "access denied: HTTP 403, check the credentials"),
                            ("401", "not authorised: HTTP 401, check the credentials"),
                            ("could not resolve", "no network: the host name does not resolve"),
                            ("failed to connect", "no network: cannot connect"),
                            ("connection refused", "no network: connection refused"),
                            ("timed out", "no network: timed out"), ("timeout", "no network: timed out"),
                            ("does not exist in the file system", "no such object, or no access")):
        if needle in lowered:
            return f"{meaning}; GDAL: {detail}"
    if re.search(r"(response|error) code\b.*\b0\b", lowered):  # curl got no HTTP answer at all
        return f"no network: no answer from the server; GDAL: {detail}"
    return detail or "no such object, no access, or no network"


def url_name(url: str) -> str:
    """The file name of ``url`` (its path's last part, percent-decoded, no query)."""
    path = urlsplit(url).path if "://" in url else url.split("?", 1)[0]
    return unquote(path.rstrip("/").rsplit("/", 1)[-1])


def is_prefix(url: str) -> bool:
    """Whether ``url`` names a folder-like prefix to list (it ends with ``/``, or is a bare bucket)."""
    path = urlsplit(url).path if "://" in url else url
    if url.startswith("/vsi"):
        return url.endswith("/")
    scheme = url.split("://", 1)[0].lower()
    return path.endswith("/") or (scheme in ("s3", "gs", "az", "azure", "abfs") and path in ("", "/"))


def has_glob(url: str) -> bool:
    path = urlsplit(url).path if "://" in url else url
    return any(c in path for c in _GLOB)


def join(prefix: str, relative: str) -> str:
    """``prefix`` (ending with ``/``, possibly with a query string) and a relative key below it."""
    if "://" in prefix:
        parts = urlsplit(prefix)
        path = parts.path if parts.path.endswith("/") else parts.path + "/"
        return urlunsplit((parts.scheme, parts.netloc, path + relative, parts.query, ""))
    return prefix.rstrip("/") + "/" + relative


class _ScrubbedLog:
    """A logging filter: GDAL messages rasterio logs (``rasterio._env``) without query strings."""

    def filter(self, record) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


_scrubber = _ScrubbedLog()


def scrub_gdal_logs() -> None:
    """Make rasterio's log of GDAL's messages drop URLs' query strings (idempotent)."""
    import logging

    for name in ("rasterio._env", "rasterio._err", "rasterio"):
        logger = logging.getLogger(name)
        if _scrubber not in logger.filters:
            logger.addFilter(_scrubber)


def gdal_options(environ: dict[str, str] | None = None) -> dict[str, str]:
    """:data:`REMOTE_GDAL_DEFAULTS` less what the user's environment sets itself."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in REMOTE_GDAL_DEFAULTS.items() if k not in environ}


def header(url: str, size: int = 4096) -> tuple[bytes, str]:
    """(the first ``size`` bytes of the remote file ``url``, GDAL's last error message when there
    are none): one range request, which GDAL caches for the open that follows; read under the
    current GDAL configuration."""
    import ctypes

    lib = _libgdal()
    lib.CPLErrorReset()
    handle = lib.VSIFOpenL(gdal_path(url).encode("utf-8"), b"rb")
    data = b""
    if handle:
        try:
            buffer = ctypes.create_string_buffer(size)
            got = lib.VSIFReadL(buffer, 1, size, handle)
            data = buffer.raw[:got]
        finally:
            lib.VSIFCloseL(handle)
    message = "" if data else (lib.CPLGetLastErrorMsg() or b"").decode("utf-8", "replace")
    return data, scrub(message)


# -- listing a prefix ---------------------------------------------------------------------------
class ListingError(Exception):
    """A prefix that cannot be listed; the message names it (without its query string)."""


def _libgdal():
    """rasterio's own libgdal (the same library and configuration its reads use), through ctypes:
    rasterio has no binding for GDAL's directory listing."""
    import ctypes
    import ctypes.util
    from pathlib import Path

    import rasterio

    site = Path(rasterio.__file__).resolve().parent
    found = sorted((site.parent / "rasterio.libs").glob("libgdal*.so*")) + sorted((site / ".dylibs").glob("libgdal*"))
    found += sorted((site.parent / "rasterio.libs").glob("gdal*.dll"))
    name = str(found[0]) if found else ctypes.util.find_library("gdal")
    if not name:
        raise ListingError("cannot find the GDAL library rasterio uses, to list a prefix; name the files instead")
    lib = ctypes.CDLL(name)
    lib.VSIReadDirRecursive.restype = ctypes.POINTER(ctypes.c_char_p)
    lib.VSIReadDirRecursive.argtypes = [ctypes.c_char_p]
    lib.VSIReadDirEx.restype = ctypes.POINTER(ctypes.c_char_p)
    lib.VSIReadDirEx.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.CSLDestroy.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    lib.CPLGetLastErrorMsg.restype = ctypes.c_char_p
    lib.CPLErrorReset.argtypes = []
    lib.VSIFOpenL.restype = ctypes.c_void_p
    lib.VSIFOpenL.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lib.VSIFReadL.restype = ctypes.c_size_t
    lib.VSIFReadL.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p]
    lib.VSIFCloseL.argtypes = [ctypes.c_void_p]
    return lib


def _strings(array) -> Iterator[str]:
    i = 0
    while array and array[i] is not None:
        yield array[i].decode("utf-8", "surrogateescape")
        i += 1


def list_prefix(url: str, recursive: bool, max_entries: int = 1_000_000) -> tuple[str, list[str]]:
    """(the prefix listed, the raster objects below it as relative keys with a raster suffix,
    sorted); only those directly below it unless ``recursive``. A glob in the last parts
    (``s3://b/tiles/*.tif``) filters what the prefix before it lists."""
    import rasterio

    pattern = None
    if has_glob(url):
        head, _, tail = url.partition(next(c for c in url if c in _GLOB))
        base = head.rsplit("/", 1)[0] + "/"
        pattern = url[len(base):]
        url = base
    lib = _libgdal()
    target = gdal_path(url).rstrip("/")
    with rasterio.Env(**gdal_options()):
        lib.CPLErrorReset()
        listing = lib.VSIReadDirRecursive(target.encode("utf-8")) if recursive or pattern else \
            lib.VSIReadDirEx(target.encode("utf-8"), max_entries)
        message = (lib.CPLGetLastErrorMsg() or b"").decode("utf-8", "replace")
        try:
            entries = list(_strings(listing))
        finally:
            lib.CSLDestroy(listing)
    if not listing:
        detail = f" ({scrub(message)})" if message else " (no such bucket or folder, no access, or no network)"
        raise ListingError(f"{public_url(url)}: cannot list this prefix{detail}")
    keys = [e.replace("\\", "/") for e in entries if e.lower().endswith(RASTER_SUFFIXES)]
    if pattern is not None:
        keys = [k for k in keys if fnmatch.fnmatchcase(k, pattern) and (recursive or k.count("/") == pattern.count("/"))]
    elif not recursive:
        keys = [k for k in keys if "/" not in k]
    return url, sorted(keys)
