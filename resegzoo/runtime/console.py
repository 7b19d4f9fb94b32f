"""The terminal as resegzoo's own output sees it."""
from __future__ import annotations

import io
import sys


class LiveStderr(io.TextIOBase):
    """Writes to whatever ``sys.stderr`` is at the time of writing: a progress bar made before
    :func:`resegzoo.engines.ray_logs.ray_noise_to` keeps drawing on the terminal after it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()

    def fileno(self) -> int:
        return sys.stderr.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(sys.stderr, "encoding", "utf-8")
