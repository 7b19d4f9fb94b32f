"""What a batch tells its user while it runs: lines, and one bar over every block to compute.

:class:`BatchProgress` is the one place a batch reports to (the CLI's console, ``--quiet``, or a
front end's machine-readable reporter: subclass it and override the methods). Every engine's
blocks pass through :meth:`BatchProgress.block`, so one bar with an ETA covers one raster of
many blocks as well as many small files.
"""
from __future__ import annotations

from typing import Any


class BatchProgress:
    """Console progress: ``say`` lines printed through the bar, a ``blocks`` bar (tqdm, with an
    ETA). ``quiet``: nothing but what the caller prints itself (errors, the failures' list)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._bar: Any = None

    def say(self, message: str) -> None:
        """A line of information, printed without breaking the bar."""
        if self.quiet:
            return
        from tqdm.auto import tqdm

        from resegzoo.raster.names import shown

        tqdm.write(shown(message))

    def note(self, message: str) -> None:
        """A warning about the whole run (e.g. a model random by design); shown even when quiet."""
        import click

        self.close()
        click.secho(f"note: {message}", fg="yellow", err=True)

    def start(self, total_blocks: int, done_blocks: int = 0) -> None:
        """The batch's blocks are known: ``total_blocks``, of which ``done_blocks`` come from a spool."""
        if self.quiet or total_blocks < 2:
            return
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total_blocks, initial=done_blocks, desc="blocks", unit="block", dynamic_ncols=True)

    def block(self, outcome: Any) -> None:
        """One block computed (or failed): a :class:`~resegzoo.batch.job.BlockOutcome`."""
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        """End the bar (also before an error is printed, so that it gets a line of its own)."""
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.close()
