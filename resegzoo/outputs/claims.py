"""Claims on output names in a folder that several runs may write into at once.

``resegzoo segment`` writes a few files per input under one *stem* (``x.labels.png``,
``x.overlay.png``, ``x.json``). Before writing, a run claims the stem: under a lock on the folder
(a short ``flock`` on the folder itself, so no lock file is left behind) it checks which stems
are free and creates a hidden claim file ``.x.claim`` with ``O_EXCL`` holding its owner tag
(host, pid and the process's start time, as :mod:`resegzoo.outputs.atomic` names temporaries). A second
run then sees the stem as taken and picks ``x-2``; it never replaces the first run's files.

The claim is removed once the stem's outputs are complete. A claim left by a killed run (its
process is gone, or its pid now belongs to a process that started later) is *stale*: its stem
holds no finished result and may be taken over by the next run. Claims of another host (a shared
filesystem) are never judged stale.

:func:`claimed_output` claims one output as a whole (a composed model folder): a second run that
wants the same output while the first works gets a one-line error instead of replacing it.
"""
from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Iterator

from resegzoo.errors import ResegzooError
from resegzoo.outputs import atomic
from resegzoo.outputs.reading import CLAIM_LIMIT, read_text

CLAIM_SUFFIX = ".claim"


class OutputBusyError(ResegzooError):
    """Another live run is writing the output this run was asked to write."""


#: what a claim file holds: :func:`resegzoo.outputs.atomic.owner_tag` of the claiming process
_OWNER = re.compile(r"^[0-9a-f]{8}-\d+-\d+$")


def _owner_alive(token: str) -> bool:
    if not _OWNER.match(token.strip()):
        return False  # empty or garbled (killed while writing it): no live run owns it
    return not atomic.owner_is_gone(token.strip())


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Exclusive lock on ``folder`` while stems are chosen and claimed (held for milliseconds)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the O_EXCL claim files alone keep runs apart
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class Claims:
    """The stems this run holds in ``folder``; :meth:`release_all` at exit frees what is left."""

    def __init__(self, folder: Path, suffix: str = CLAIM_SUFFIX) -> None:
        self.folder = folder
        #: distinct suffixes keep different kinds of output (segment's stems, a composed folder of
        #: the same name) from blocking each other
        self.suffix = suffix
        self.held: set[str] = set()

    def path(self, stem: str) -> Path:
        return self.folder / f".{stem}{self.suffix}"

    def holder(self, stem: str) -> str:
        """The pid of the process a claim names ("?" if unreadable): for messages."""
        try:
            token = read_text(self.path(stem), CLAIM_LIMIT)
        except OSError:  # gone meanwhile, or not a claim file: the message does without the pid
            return "?"
        parts = token.strip().split("-")
        return parts[1] if _OWNER.match(token.strip()) else "?"

    def state(self, stem: str) -> str:
        """``mine``, ``live`` (another running process holds it), ``stale`` (its holder died) or
        ``none`` (no claim). Call under :func:`folder_lock`."""
        if stem in self.held:
            return "mine"
        try:
            # never a plain read: a FIFO here would hang this run, and every other, under the lock
            token = read_text(self.path(stem), CLAIM_LIMIT)
        except FileNotFoundError:
            return "none"
        return "live" if _owner_alive(token) else "stale"

    def clear(self, stem: str) -> None:
        """Remove a stale claim whose unit was finished. Call under :func:`folder_lock`."""
        if self.state(stem) == "stale":
            self.path(stem).unlink()

    def take(self, stem: str) -> None:
        """Claim ``stem`` (free or stale). Call under :func:`folder_lock`."""
        path = self.path(stem)
        if self.state(stem) == "stale":
            path.unlink()
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # raises if someone else has it
        with os.fdopen(fd, "w") as fh:
            fh.write(atomic.owner_tag())
        self.held.add(stem)

    def release(self, stem: str) -> None:
        self.held.discard(stem)
        with contextlib.suppress(FileNotFoundError):
            self.path(stem).unlink()

    def release_all(self) -> None:
        for stem in list(self.held):
            self.release(stem)


@contextlib.contextmanager
def claimed_output(target: Path, what: str, suffix: str = CLAIM_SUFFIX) -> Iterator[None]:
    """Hold a claim on the single output ``target`` (its folder must exist) for the ``with`` block.

    A live claim of another run raises :class:`OutputBusyError` naming ``what`` and the holder's
    pid; a stale one (its run was killed) is taken over.
    """
    claims = Claims(target.parent, suffix)
    with folder_lock(target.parent):
        if claims.state(target.name) == "live":
            raise OutputBusyError(
                f"{target}: another resegzoo {what} (pid {claims.holder(target.name)}) is writing it right now; "
                "wait for it to finish or choose another output")
        claims.take(target.name)
    try:
        yield
    finally:
        claims.release_all()
