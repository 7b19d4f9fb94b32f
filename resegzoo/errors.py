"""The one base class of every error a user can cause.

Anything a user can get wrong (an input file, a flag, a recipe, a model name, a dataset folder, an
archive) raises a subclass of :class:`ResegzooError` with a message that says what is wrong and what
to do. The CLI catches this base in one place (``resegzoo.cli.main``) and prints the message on one
line, never a traceback. Each module keeps its own subclass so callers can still catch narrowly.
"""
from __future__ import annotations

# The exit status of the ``resegzoo`` command: one per kind of error (documented in the command's
# --help and in docs/segmenting.md, "Exit status").
#: the work failed: a model that cannot be fetched or read, an input that fails while it is
#: segmented (with --continue-on-error: some inputs failed, the others were written), an output
#: that cannot be written (a full disk)
EXIT_FAILED = 1
#: what was asked for cannot be done, found before any work: an option, a recipe or its settings
#: (method, masks, templates, sizes), a vocabulary, an input that names no usable raster, a dataset
#: folder, an unknown name (click's own usage errors exit 2 too)
EXIT_USAGE = 2
#: stopped by Ctrl-C (128 + SIGINT, as shells report it)
EXIT_INTERRUPTED = 130


class ResegzooError(Exception):
    """A problem the user can fix; ``str(exc)`` is the one-line message shown to them.

    ``exit_code``: the kind of error (:data:`EXIT_USAGE` or :data:`EXIT_FAILED`) for the CLI's exit
    status; None (this base) takes the kind of the error it was raised from, else EXIT_FAILED."""

    exit_code: int | None = None


def same_kind(new: ResegzooError, old: BaseException) -> ResegzooError:
    """``new``, raised in place of ``old`` (its message reworded, its chain cut), keeping ``old``'s
    kind of error: a missing download stays a failure when a MethodError or BatchInputError, both
    usage errors otherwise, carries its message."""
    new.exit_code = exit_code_of(old)
    return new


def exit_code_of(exc: BaseException) -> int:
    """The exit status of a command that ended with ``exc``: the first ``exit_code`` declared by
    it or by the errors it was raised from, as a traceback would chain them (``raise X from exc``,
    or during the handling of ``exc``; ``from None`` ends the chain), else :data:`EXIT_FAILED`. A
    ModelLoadError raised from a mask setting that does not parse is a usage error; one raised for
    a missing download is a failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "exit_code", None)
        if isinstance(code, int):
            return code
        current = current.__cause__ if current.__cause__ is not None else \
            (None if current.__suppress_context__ else current.__context__)
    return EXIT_FAILED


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
