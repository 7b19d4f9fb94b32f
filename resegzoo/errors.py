"""The one base class of every error a user can cause.

Anything a user can get wrong (an input file, a flag, a recipe, a model name, a dataset folder, an
archive) raises a subclass of :class:`ResegzooError` with a message that says what is wrong and what
to do. The CLI catches this base in one place (``resegzoo.cli.main``) and prints the message on one
line, never a traceback. Each module keeps its own subclass so callers can still catch narrowly.
"""
from __future__ import annotations


class ResegzooError(Exception):
    """A problem the user can fix; ``str(exc)`` is the one-line message shown to them."""


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, for the messages that refuse it: ``a FIFO
    (named pipe)``, ``a folder``, ... (``mode``: ``st_mode`` of ``os.stat`` or ``os.lstat``)."""
    import stat

    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"
