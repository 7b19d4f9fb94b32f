"""Reading back files resegzoo wrote earlier into an output folder or a cache, without trusting them.

Claim files, sidecars (--skip-existing), an eval run's settings and per-image results, the Ray
spool, the mask cache and the sha256 memos are files resegzoo wrote in an earlier run, but anyone
who can write the folder may have put something else under the same name: a FIFO (a plain
``open`` waits forever for a writer, and under the folder lock every other run waits too), a link
to ``/dev/zero`` (reading it never ends: MemoryError), a folder (IsADirectoryError), or a file far
larger than resegzoo writes there. Every such read goes through here: the name is opened without
following a link and without blocking (``O_NOFOLLOW | O_NONBLOCK``), and only a regular file of at
most ``limit`` bytes is read. Anything else raises :class:`UnsafeFileError`, which is both a user
error (one line from the CLI) and an ``OSError`` (callers that treat an unreadable file as "not a
result" keep doing so). A missing file raises ``FileNotFoundError`` as usual.

Numpy files get the same care inside: an ``.npy`` header may declare any shape, and numpy
allocates that shape before reading, so the declared size is checked against the bytes present
(and the members of an ``.npz`` against ``limit``) before anything is allocated.
"""
from __future__ import annotations

import errno
import io
import math
import os
import stat
import zipfile
import zlib
from pathlib import Path

import numpy as np

from resegzoo.errors import ResegzooError, file_kind

#: bounds for what resegzoo itself writes, with room to spare
CLAIM_LIMIT = 4096
TEXT_LIMIT = 16 * 1024 * 1024  # sidecars, settings, memos


class UnsafeFileError(ResegzooError, OSError):
    """A file resegzoo would read back is not a regular file of bounded size (or not valid)."""


def read_bytes(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit`` of them), never following a link."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.EMLINK and path.is_symlink()):
            raise UnsafeFileError(f"{path} is a symbolic link, not a file resegzoo wrote; remove it") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFileError(f"{path} is {file_kind(st.st_mode)}, not a file resegzoo wrote; remove it")
        if st.st_size > limit:
            raise UnsafeFileError(f"{path} is {st.st_size:,} bytes, more than resegzoo writes there "
                                  f"({limit:,} at most); remove it")
        chunks, size = [], 0
        while size <= limit:  # the file may grow while being read: never read past the bound
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise UnsafeFileError(f"{path} grew past {limit:,} bytes while being read; remove it")
        return b"".join(chunks)
    finally:
        os.close(fd)


def is_regular_file(path: str | Path) -> bool:
    """Whether ``path`` itself (not a link's target) is a regular file: for cache entries read by
    a library that opens them by name (they are written anew when this says no)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def read_text(path: str | Path, limit: int = TEXT_LIMIT) -> str:
    """:func:`read_bytes` decoded as UTF-8."""
    data = read_bytes(path, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeFileError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); remove it") from None


def _checked_npy(data: bytes, where: str) -> np.ndarray:
    """An array from ``.npy`` bytes whose header's shape and dtype match the bytes present."""
    from numpy.lib import format as npy

    fh = io.BytesIO(data)
    try:
        version = npy.read_magic(fh)
        # np.save writes version 1.0, or 2.0 for a header too long for 1.0
        readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
        if version not in readers:
            raise ValueError(f"format version {version}, which resegzoo does not write")
        shape, _, dtype = readers[version](fh)
    except (ValueError, SyntaxError, TypeError, EOFError) as exc:
        raise UnsafeFileError(f"{where}: not a numpy array file ({exc}); remove it") from None
    if dtype.hasobject:
        raise UnsafeFileError(f"{where}: holds Python objects, which resegzoo never writes; remove it")
    declared = math.prod(shape) * dtype.itemsize
    if declared != len(data) - fh.tell():
        raise UnsafeFileError(f"{where}: its header declares {declared:,} bytes of data but "
                              f"{len(data) - fh.tell():,} follow; remove it")
    fh.seek(0)
    return np.load(fh, allow_pickle=False)


def load_npy(path: str | Path, limit: int) -> np.ndarray:
    """An ``.npy`` array of at most ``limit`` bytes, read safely (see the module's notes)."""
    return _checked_npy(read_bytes(path, limit), str(path))


def load_npz(path: str | Path, limit: int) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file whose file and unpacked members are at most ``limit`` bytes."""
    data = read_bytes(path, limit)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            unpacked = sum(info.file_size for info in infos)
            if unpacked > limit:
                raise UnsafeFileError(f"{path}: unpacks to {unpacked:,} bytes, more than resegzoo writes there "
                                      f"({limit:,} at most); remove it")
            arrays = {}
            for info in infos:
                name = info.filename.removesuffix(".npy")
                arrays[name] = _checked_npy(zf.read(info), f"{path} [{info.filename}]")
            return arrays
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise UnsafeFileError(f"{path}: not a readable .npz file ({exc}); remove it") from None


def unsafe_folder(folder: str | Path, up_to: str | Path | None = None) -> str | None:
    """Why the cache folder ``folder`` (and each existing folder above it, up to ``up_to``) is
    not safe to read back from: another user may write it. None when only this user (and root)
    can. As ssh and pip treat such folders: what another user can put there is not trusted.

    Writable by others: owned by another user (not root), writable by everyone without the
    sticky bit, or writable by a group other than this user's own private group (a group with
    other members). Folders that do not exist yet are skipped (resegzoo creates them)."""
    if not hasattr(os, "getuid"):  # Windows: ACLs, not modes; not judged
        return None
    folder = Path(folder)
    chain = [folder, *(p for p in folder.parents if up_to is not None and p.is_relative_to(up_to))]
    for path in chain:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue  # a file in the way is reported where it is written
        mode = stat.S_IMODE(st.st_mode)
        if st.st_uid not in (os.getuid(), 0):
            return f"{path} belongs to another user (uid {st.st_uid})"
        if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
            return f"{path} is writable by every user (mode {mode:04o})"
        if mode & stat.S_IWGRP and not _own_private_group(st.st_gid):
            return f"{path} is writable by the users of group {st.st_gid} (mode {mode:04o})"
    return None


def _own_private_group(gid: int) -> bool:
    """Whether group ``gid`` is this user's own: its primary group, with no other member listed."""
    try:
        import grp
        import pwd

        me = pwd.getpwuid(os.getuid()).pw_name
        members = set(grp.getgrgid(gid).gr_mem)
    except (ImportError, KeyError):
        return False
    return gid == os.getgid() and members <= {me}
