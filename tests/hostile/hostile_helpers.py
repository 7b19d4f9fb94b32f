"""Building hostile inputs, and checking that resegzoo refused them without touching anything else."""
from __future__ import annotations

import contextlib
import stat
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path

from click.testing import CliRunner

from resegzoo.outputs.atomic import temporaries

LOCAL_HEADER = b"PK\x03\x04"
CENTRAL_HEADER = b"PK\x01\x02"


def snapshot(root: Path) -> set[Path]:
    """Every path under ``root`` (files, folders, links)."""
    return set(root.rglob("*"))


def assert_nothing_outside(root: Path, before: set[Path], allowed: Iterable[Path] = ()) -> None:
    """No path appeared under ``root`` since ``before`` except inside ``allowed`` folders, and no
    temporary is left anywhere under ``root``."""
    allowed = [Path(a) for a in allowed]
    new = snapshot(root) - before
    stray = sorted(p for p in new if not any(p == a or p.is_relative_to(a) for a in allowed))
    assert not stray, f"created outside {[str(a) for a in allowed]}: {[str(p) for p in stray]}"
    assert not temporaries(root), f"temporaries left behind: {temporaries(root)}"


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if not p.is_dir()) if folder.exists() else []


def cli(*args: str):
    """Run the resegzoo CLI in-process; an exception that is not a user error propagates (a test failure)."""
    from resegzoo.cli import build_cli

    return CliRunner().invoke(build_cli(), list(args), catch_exceptions=False)


def assert_one_line_error(result, *fragments: str) -> str:
    """A failed command that printed ``Error: <one line>`` containing every fragment, no traceback."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output, result.output
    # a progress bar on stderr may share the line (it ends in a carriage return, not a newline)
    errors = [line[line.index("Error: "):] for line in result.output.splitlines() if "Error: " in line]
    assert len(errors) == 1, result.output
    message = errors[0]
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def refused(root: Path, *args: str, fragments: tuple[str, ...], out: Path, allowed: Iterable[Path] = ()) -> str:
    """Run the CLI; it must fail with a one-line error containing ``fragments``, write no output
    under ``out``, touch nothing under ``root`` outside ``out`` and ``allowed``, and run no code
    (no ``code-ran`` path anywhere under ``root``). Returns the error line."""
    before = snapshot(root)
    message = assert_one_line_error(cli(*args), *fragments)
    assert_nothing_outside(root, before, allowed=[*allowed, out])
    assert files_under(out) == [], "a refused input writes no outputs"
    assert not list(root.rglob("code-ran")), "the hostile file ran code"
    return message


def zip_entries(path: Path, entries: Iterable[tuple[str | zipfile.ZipInfo, bytes]],
                compression: int = zipfile.ZIP_STORED) -> Path:
    """A zip holding ``entries`` exactly as given (names are not cleaned, duplicates are kept)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names: that is the point
        with zipfile.ZipFile(path, "w", compression=compression) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return path


def special_entry(name: str, file_type: int, data: bytes = b"") -> tuple[zipfile.ZipInfo, bytes]:
    """A member whose Unix mode says it is a link / device / pipe (``file_type``: stat.S_IF*)."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: external_attr's high 16 bits are st_mode
    info.external_attr = (file_type | 0o777) << 16
    return info, data


def symlink_entry(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    return special_entry(name, stat.S_IFLNK, target.encode())


def forge_member(path: Path, *, file_size: int | None = None, crc: int | None = None) -> Path:
    """Rewrite the declared size / CRC of a one-member zip in both its local and central headers."""
    raw = bytearray(path.read_bytes())
    # the first local header and the last central one are the member's own (a torch.save payload is
    # itself a zip, with headers of its own inside the data)
    local, central = raw.index(LOCAL_HEADER), raw.rindex(CENTRAL_HEADER)
    for offset, fields in ((local, {"crc": 14, "size": 22}), (central, {"crc": 16, "size": 24})):
        if file_size is not None:
            raw[offset + fields["size"]:offset + fields["size"] + 4] = struct.pack("<I", file_size)
        if crc is not None:
            raw[offset + fields["crc"]:offset + fields["crc"] + 4] = struct.pack("<I", crc)
    path.write_bytes(bytes(raw))
    return path



#: a run that meets a hostile file must be done well within this (a FIFO would otherwise hang it)
SECONDS = 60


class StillRunning(BaseException):
    """Not an OSError (as TimeoutError is): no ``except OSError`` in the code under test hides it."""


@contextlib.contextmanager
def bounded(seconds: int = SECONDS, memory: int = 3 << 30):
    """Fail instead of hanging (a FIFO) or eating the machine's memory (/dev/zero, a 28 GiB
    padding) on code that is not guarded: an alarm after ``seconds``, and at most ``memory``
    bytes more heap than now (the data limit: libraries loaded meanwhile are file mappings and do
    not count), so the allocation fails at once with a MemoryError, a traceback: the test fails."""
    import resource
    import signal

    def timeout(signum, frame):
        raise StillRunning(f"still running after {seconds} s: blocked on a file that is not a file?")

    data = next(int(line.split()[1]) * 1024 for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("VmData:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (data + memory, hard))
    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def plant(path: Path, kind: str) -> Path:
    """Put a ``kind`` thing (fifo, link to /dev/zero, folder) at ``path``, where a file is expected."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link to /dev/zero":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
        (path / "inside").write_text("not resegzoo's")
    else:
        raise AssertionError(kind)
    return path
