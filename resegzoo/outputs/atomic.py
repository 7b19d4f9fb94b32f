"""Write files so that a crash or Ctrl-C leaves either the old file or the whole new one.

Every output resegzoo writes (label maps, checkpoints, caches, reports) goes through here: a
temporary file in the same folder, flushed to disk, then renamed over the target. Folders that
must appear whole (a composed model) are built in a temporary folder beside the target.

Temporaries are named so that a later run can tell an abandoned one from a live one::

    .NAME.part-OWNER-RANDOM.SUFFIX     a file being written (SUFFIX kept: writers pick formats by it)
    .NAME.partial-OWNER-RANDOM         a folder being built
    .NAME.old-OWNER-RANDOM             a folder being replaced

OWNER is ``HOST-PID-START``: a hash of the host name, the writing process's id and that process's
start time (clock ticks since boot, from /proc; 0 where unknown). A process killed with SIGKILL
cannot clean up, so the first write into a folder in each run removes that folder's temporaries
whose owner is gone: same host, and the pid is not running or now belongs to a process started at
another time (the pid was reused). Temporaries of other hosts (a shared filesystem) are left alone.

Files get the permissions a plain ``open(path, "w")`` would give (0666 minus the umask), not the
0600 of :func:`tempfile.mkstemp`; folders get 0777 minus the umask. ``durable=True`` also fsyncs
the folder after the rename, so the new name itself survives a power cut (checkpoints, caches).
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import logging
import os
import re
import secrets
import shutil
import socket
from pathlib import Path
from typing import Iterator

import numpy as np

from resegzoo.errors import ResegzooError

_log = logging.getLogger(__name__)


class OutputWriteError(ResegzooError, OSError):
    """An output that cannot be written (a folder in the way, a full disk); nothing half-written is left."""

#: what marks a temporary: ``.NAME.KIND-HOST-PID-START-RANDOM[SUFFIX]``
TEMPORARY_NAME = re.compile(
    r"^\.(?P<name>.+)\.(?P<kind>part|partial|old)-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-(?P<start>\d+)"
    r"-(?P<random>[0-9a-f]{8})(?P<suffix>\.[^.]*)?$"
)
_swept: set[str] = set()  # folders already cleaned of stale temporaries in this process


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def process_start_time(pid: int) -> int:
    """When process ``pid`` started (clock ticks since boot), 0 if unknown; -1 if it is not running.

    Read from /proc on Linux. Elsewhere only whether the pid runs is known (start time 0).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return -1  # /proc works, so the process is gone
    except OSError:
        pass
    else:
        # the command name (field 2) may hold spaces and ')': the fields after its last ')' are fixed
        return int(stat.rsplit(")", 1)[1].split()[19])
    if os.name == "nt":
        return 0  # os.kill on Windows terminates: never probe there, never judge stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return -1
    except PermissionError:
        return 0  # running, owned by someone else
    return 0


def owner_tag() -> str:
    """``HOST-PID-START`` of this process (the part of a temporary's name that says who owns it)."""
    return f"{_host_tag()}-{os.getpid()}-{max(process_start_time(os.getpid()), 0)}"


def temporary_name(name: str, kind: str = "part", suffix: str = "") -> str:
    """A fresh temporary name for ``name`` (``kind``: part | partial | old)."""
    return f".{name}.{kind}-{owner_tag()}-{secrets.token_hex(4)}{suffix}"


def is_stale(temporary: Path) -> bool:
    """Whether ``temporary`` (a name matching TEMPORARY_NAME) was left by a process that is gone."""
    match = TEMPORARY_NAME.match(temporary.name)
    return match is not None and owner_is_gone(f"{match['host']}-{match['pid']}-{match['start']}")


def owner_is_gone(owner: str) -> bool:
    """Whether the process of an :func:`owner_tag` is gone (same host only: others are not judged)."""
    host, _, rest = owner.partition("-")
    pid_text, _, start_text = rest.partition("-")
    if host != _host_tag() or not pid_text.isdigit() or not start_text.isdigit():
        return False
    pid, start = int(pid_text), int(start_text)
    now = process_start_time(pid)
    if now < 0:
        return True  # the owner is not running
    return now != 0 and start != 0 and now != start  # the pid now belongs to another process


def temporaries(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Every temporary (live or stale) under ``folder``: what a finished run must not leave behind."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    entries = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in entries if TEMPORARY_NAME.match(p.name))


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the stale temporaries directly in ``folder``; returns what was removed."""
    removed = []
    for path in temporaries(folder, recursive=False):
        if not is_stale(path):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue  # another process cleaned it at the same time
        except OSError as exc:  # e.g. someone else's file in a shared folder: not ours to force
            _log.warning("could not remove the stale temporary %s: %s", path, exc)
            continue
        removed.append(path)
    return removed


def _sweep_once(folder: Path) -> None:
    key = os.path.abspath(folder)
    if key not in _swept:
        _swept.add(key)
        remove_stale_temporaries(folder)


def fsync_dir(folder: str | Path) -> None:
    """Flush a folder's entries (names just created or renamed) to disk."""
    if os.name == "nt":
        return  # folders cannot be opened for fsync on Windows; NTFS journals renames
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: errno values of a full disk (or a full quota)
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
#: how GDAL (rasterio) and other libraries that do not raise OSError word a full disk
_NO_SPACE_WORDS = ("No space left on device", "Disk quota exceeded", "Free disk space available")


def is_no_space(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the disk is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in NO_SPACE:
            return True
        if any(words in str(current) for words in _NO_SPACE_WORDS):
            return True
        current = current.__cause__ or current.__context__
    return False


def nearly_full(folder: str | Path) -> bool:
    """Less than a MiB left for this user on ``folder``'s filesystem."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # gone, or not POSIX
        return False
    return st.f_bavail * st.f_frsize < (1 << 20)


#: libraries whose write failures may be a full disk in other words
_WRITERS = ("rasterio", "PIL", "pyogrio", "safetensors")


def _from_a_writer(exc: BaseException) -> bool:
    """An I/O error, or an error of a library that writes files itself (not a bug or a user error
    that happened while an output was open)."""
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in _WRITERS


@contextlib.contextmanager
def reporting_full_disk(folder: str | Path, what: str | None = None) -> Iterator[None]:
    """Turn a full disk while writing into ``folder`` into one :class:`OutputWriteError` naming the
    folder (the writers inside remove their temporaries as the error passes through them).

    Libraries that write files themselves (libpng, libtiff through GDAL) often report a full disk
    only as "write error": their failure while the folder's disk is (nearly) full is reported as a
    full disk too, with the library's own words."""
    try:
        yield
    except OutputWriteError:
        raise
    except Exception as exc:
        said = is_no_space(exc)
        if not said and not (_from_a_writer(exc) and nearly_full(folder)):
            raise
        thing = f"{what} into {folder}" if what else f"into {folder}"
        detail = "" if said else f" ({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})"
        raise OutputWriteError(f"cannot write {thing}: no space left on the device{detail}; free some space "
                               "and run again (nothing half-written was left)") from exc


@contextlib.contextmanager
def atomic_path(path: str | Path, *, durable: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path``; fsynced and moved onto ``path`` only if the block succeeds.

    ``durable``: also fsync the folder after the rename (for checkpoints and caches).
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():  # os.replace would fail only after all the work
        raise OutputWriteError(f"cannot write {path}: a folder is in the way; remove it or choose another output")
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(path.parent)
    tmp = path.with_name(temporary_name(path.name, "part", path.suffix))
    with reporting_full_disk(path.parent, path.name):
        # O_EXCL: never reuse an existing file; 0o666: the umask applies, as for any plain write
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666))
        try:
            yield tmp
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            if durable:
                fsync_dir(path.parent)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)


def temporary_dir(beside: str | Path, kind: str = "partial") -> Path:
    """A new empty folder next to ``beside`` (same filesystem, so it can be renamed onto it)."""
    beside = Path(beside)
    _sweep_once(beside.parent)
    tmp = beside.with_name(temporary_name(beside.name, kind))
    tmp.mkdir(0o777)  # the umask applies, as for any plain mkdir
    return tmp


def write_bytes(path: str | Path, data: bytes, *, durable: bool = False) -> None:
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str, *, durable: bool = False) -> None:
    write_bytes(path, text.encode("utf-8"), durable=durable)


def save_npy(path: str | Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    write_bytes(path, buf.getvalue())


def save_png(path: str | Path, array: np.ndarray) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    write_bytes(path, buf.getvalue())
