"""One member of a zip archive, extracted into resegzoo's cache, safely.

A member is extracted once, atomically, and only if it is a regular file whose normalised path
stays inside its folder (no absolute path, drive letter or ``..``; no link, device or name that
collides with another after normalisation); it is capped at its declared size, which may not
exceed 100x its stored size or the free space, and its CRC is checked.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import stat
import zipfile
import zlib
from pathlib import Path

from resegzoo.outputs.atomic import atomic_path
from resegzoo.weights.cache import CACHE_ENV, cache_dir, file_lock
from resegzoo.weights.zoo import CheckpointError, FetchError

_CHUNK = 1 << 20


def _member_dir(archive: Path) -> Path:
    # Keyed by the archive's full path: two "model.zip" in different folders never share members.
    key = hashlib.sha256(str(archive.resolve()).encode()).hexdigest()[:12]
    return cache_dir() / "extracted" / f"{archive.name.removesuffix('.zip')}-{key}"


#: a member may decompress to at most this many times its stored size (deflate's own limit is
#: ~1032; checkpoints of floats barely compress, so a far higher ratio is a zip bomb)
MAX_COMPRESSION_RATIO = 100
_DRIVE = re.compile(r"^[A-Za-z]:")
_FILE_TYPES = {stat.S_IFLNK: "a symbolic link", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
               stat.S_IFIFO: "a named pipe", stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


def member_parts(archive: Path, member: str) -> tuple[str, ...]:
    """The path parts of archive member ``member``, refused unless they stay inside the folder
    they are extracted to: no absolute path, drive letter, ``..`` part or NUL byte."""
    if "\0" in member:
        raise FetchError(f"{archive}: member {member!r} has a NUL byte in its name; refusing to extract it")
    name = member.replace("\\", "/")  # zips made on Windows may use backslashes
    if name.startswith("/") or _DRIVE.match(name):
        raise FetchError(f"{archive}: member {member!r} has an absolute path; refusing to extract it "
                         f"(it would be written outside resegzoo's cache)")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise FetchError(f"{archive}: member {member!r} climbs out of its folder with '..'; refusing to "
                         f"extract it (it would be written outside resegzoo's cache)")
    if not parts:
        raise FetchError(f"{archive}: member {member!r} names no file")
    return parts


def member_target(archive: Path, member: str) -> Path:
    """Where :func:`extract_member` puts ``member`` of ``archive`` (it may not exist yet)."""
    folder = _member_dir(archive)
    target = folder.joinpath(*member_parts(archive, member))
    # the joined path must stay inside the folder even after resolving links on the way
    if not target.resolve().is_relative_to(folder.resolve()):
        raise FetchError(f"{archive}: member {member!r} would be written outside {folder}; refusing to extract it")
    return target


def _check_entry(archive: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Refuse links, devices, folders, names that collide after normalisation, and zip bombs."""
    parts = member_parts(archive, info.filename)
    mode = info.external_attr >> 16
    kind = _FILE_TYPES.get(stat.S_IFMT(mode)) if mode else None
    if kind is None and info.is_dir():
        kind = "a folder"
    if kind is not None:
        raise FetchError(f"{archive}: member {info.filename!r} is {kind}, not a regular file; refusing to extract it")
    same = [i.filename for i in zf.infolist()
            if i is not info and tuple(p.lower() for p in _lenient_parts(i.filename)) == tuple(p.lower() for p in parts)]
    if same:
        raise FetchError(f"{archive}: member {info.filename!r} collides with {', '.join(map(repr, same))} (the same "
                         f"file name after normalisation); the archive is ambiguous, refusing to extract it")
    if info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1) + _CHUNK:
        raise FetchError(f"{archive}: member {info.filename!r} declares {info.file_size} bytes from "
                         f"{info.compress_size} stored: over {MAX_COMPRESSION_RATIO}x compression (a zip bomb?); "
                         f"refusing to extract it")
    free = shutil.disk_usage(_existing_parent(cache_dir())).free
    if info.file_size > free:
        raise FetchError(f"{archive}: member {info.filename!r} needs {info.file_size} bytes but only {free} are "
                         f"free in {cache_dir()}; free space or set {CACHE_ENV} to a larger disk")


def _lenient_parts(member: str) -> tuple[str, ...]:
    return tuple(p for p in member.replace("\\", "/").split("/") if p not in ("", "."))


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _copy_member(archive: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, dst) -> None:
    """Copy exactly the declared number of bytes, checking the CRC ourselves."""
    written, crc = 0, 0
    with zf.open(info) as src:
        while block := src.read(_CHUNK):
            written += len(block)
            if written > info.file_size:
                raise FetchError(f"{archive}: member {info.filename!r} holds more than the {info.file_size} bytes "
                                 f"it declares; refusing to extract it")
            crc = zlib.crc32(block, crc)
            dst.write(block)
    if written != info.file_size:
        raise FetchError(f"{archive}: member {info.filename!r} holds {written} bytes but declares "
                         f"{info.file_size}; the archive is truncated or forged")
    if crc != info.CRC:
        raise FetchError(f"{archive}: member {info.filename!r} fails its CRC check; the archive is corrupt")


def only_checkpoint_member(archive: Path, suffixes: tuple[str, ...]) -> str:
    """The one member of a zip archive whose name ends in one of ``suffixes`` (SkyCLIP's zips hold one)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [n for n in zf.namelist() if n.endswith(suffixes)]
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{archive}: not a readable zip archive ({exc}); truncated?") from exc
    if len(members) != 1:
        found = ", ".join(members) or "none"
        raise CheckpointError(
            f"{archive}: expected exactly one checkpoint inside the zip, found {found}; "
            f"extract the one you want and pass its path"
        )
    return members[0]


def extract_member(archive: Path, member: str) -> Path:
    """Extract one member of a zip archive into the cache, once; later calls reuse it.

    The member must be a regular file whose path stays inside its cache folder (see
    :func:`member_parts`); nothing is created before that is checked.
    """
    target = member_target(archive, member)
    if target.is_file() and not (archive.is_file() and archive.stat().st_mtime_ns > target.stat().st_mtime_ns):
        return target  # extracted before, and the archive has not been replaced since
    if not zipfile.is_zipfile(archive):
        raise FetchError(f"{archive} is not a zip archive (a truncated download?); delete it and fetch again")
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = [i for i in zf.infolist() if i.filename == member]
            if not infos:
                shown = ", ".join(n for n in zf.namelist() if not n.endswith("/"))[:400]
                raise FetchError(f"{archive} has no member {member!r} (it holds: {shown})")
            if len(infos) > 1:
                raise FetchError(f"{archive}: member {member!r} appears {len(infos)} times; the archive is "
                                 f"ambiguous, refusing to extract it")
            _check_entry(archive, zf, infos[0])
            target.parent.mkdir(parents=True, exist_ok=True)
            with file_lock(target), atomic_path(target, durable=True) as tmp, tmp.open("wb") as dst:
                _copy_member(archive, zf, infos[0], dst)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise FetchError(f"{archive}: member {member!r} could not be read ({exc}); the archive is corrupt or "
                         f"truncated: delete it and fetch again") from exc
    return target


