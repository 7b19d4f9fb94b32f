"""resegzoo's cache folder and what every download shares: offline mode, one reachability probe
per host, sha256 of files (remembered per path, size and mtime), verification against a known
sha256, and a lock per file being written.

The cache folder is ``RESEGZOO_CACHE`` or ``~/.cache/resegzoo``: URL downloads (``downloads/``),
extracted archive members (``extracted/``), sha256 memos and verification stamps. Hugging Face
files stay in the Hugging Face cache (:mod:`resegzoo.weights.hf`).
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path

from resegzoo.outputs.atomic import write_text
from resegzoo.outputs.reading import UnsafeFileError, read_text
from resegzoo.weights.zoo import FetchError

_log = logging.getLogger(__name__)

CACHE_ENV = "RESEGZOO_CACHE"
OFFLINE_ENV = "RESEGZOO_OFFLINE"
_CHUNK = 1 << 20


def cache_dir() -> Path:
    """resegzoo's own cache folder (URL downloads, extracted archive members)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "resegzoo").expanduser()


def is_offline() -> bool:
    """True when HF_HUB_OFFLINE or RESEGZOO_OFFLINE is set (read now, not at import time)."""
    from huggingface_hub import constants

    truthy = ("1", "true", "yes", "on")
    env = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get(OFFLINE_ENV, ""))
    return constants.HF_HUB_OFFLINE or any(v.strip().lower() in truthy for v in env)


#: (host, port) -> why it could not be reached, or None; one probe per host and process
_PROBED: dict[tuple[str, int], str | None] = {}


def unreachable(url: str, timeout: float = 5.0) -> str | None:
    """Why the host of ``url`` cannot be reached (e.g. "connection refused"), or None if it can.

    One TCP connection attempt per host and process. huggingface_hub retries a refused or
    unresolvable connection five times with back-off (about 30 s per file), so resegzoo asks once
    up front and then uses the caches alone.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if (host, port) not in _PROBED:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            _PROBED[host, port] = None
        except socket.gaierror as exc:
            _PROBED[host, port] = f"cannot resolve {host} ({exc.strerror or exc})"
        except OSError as exc:  # refused, unreachable network, timeout
            _PROBED[host, port] = f"cannot connect to {host}:{port} ({exc.strerror or exc})"
    return _PROBED[host, port]


def sha256_file(path: Path) -> str:
    """sha256 of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_memo(memo: Path) -> str | None:
    """A small file this cache wrote (a hash, a stamp), or None if there is none or what is there
    is something else (a FIFO, a link, a folder, too large): the value is then computed anew and
    the memo rewritten."""
    try:
        return read_text(memo, 4096)
    except FileNotFoundError:
        return None
    except UnsafeFileError as exc:
        _log.warning("cache: ignoring %s (%s)", memo, exc)
        return None


def cached_sha256(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so repeated runs do not re-read gigabytes."""
    path = path.resolve()
    st = path.stat()
    key = hashlib.sha1(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    memo = cache_dir() / "compose" / "sha256" / key
    remembered = _read_memo(memo)
    if remembered is not None and re.fullmatch(r"[0-9a-f]{64}", remembered.strip()):
        return remembered.strip()
    value = sha256_file(path)
    write_text(memo, value, durable=True)
    return value


def file_lock(path: Path):
    """A lock held while ``path`` is written (another process may be downloading the same file)."""
    from filelock import FileLock

    return FileLock(str(path) + ".lock")


def verified(path: Path, sha256: str | None, name: str, hasher: Callable[[Path], str] = sha256_file) -> Path:
    """Check ``path`` against a known sha256 (once per file: a marker remembers success)."""
    if sha256 is None:
        return path
    stat = path.stat()
    marker = cache_dir() / "verified" / sha256
    stamp = f"{path.resolve()} {stat.st_size} {stat.st_mtime_ns}"
    if _read_memo(marker) == stamp:
        return path
    actual = hasher(path)
    if actual != sha256.lower():
        raise FetchError(
            f"{name}: {path} has sha256 {actual}, expected {sha256}; the file is corrupt or a "
            f"different version. Delete it and run `resegzoo fetch {name}` again."
        )
    write_text(marker, stamp, durable=True)
    return path
