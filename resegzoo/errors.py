"""The one base class of every error a user can cause.

Anything a user can get wrong (an input file, a flag, a recipe, a model name, a dataset folder, an
archive) raises a subclass of :class:`ResegzooError` with a message that says what is wrong and what
to do. The CLI catches this base in one place (``resegzoo.cli.main``) and prints the message on one
line, never a traceback. Each module keeps its own subclass so callers can still catch narrowly.
"""
from __future__ import annotations


class ResegzooError(Exception):
    """A problem the user can fix; ``str(exc)`` is the one-line message shown to them."""
