"""What a batch tells its user while it runs: lines, and one bar over every window to encode.

:class:`BatchProgress` is the one place a batch reports to (the CLI's console, ``--quiet``, or a
front end's machine-readable reporter: subclass it and override the methods). Every engine's
blocks pass through :meth:`BatchProgress.block` and their windows through
:meth:`BatchProgress.windows` (one by one batch in this process, by whole blocks from Ray's
workers), so one bar with an ETA covers a single-block scene as well as many files.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BatchWork:
    """What a batch is about to do, known before any block is computed."""

    inputs: int  # inputs to segment (skipped ones not counted)
    pixels: int  # their source pixels
    blocks: int  # their blocks
    windows: int  # sliding windows over the blocks still to compute
    done_blocks: int = 0  # blocks taken from an earlier run's spool
    skipped: int = 0  # inputs whose result is already there
    engine: str = "local"

    def describe(self) -> str:
        if not self.inputs:
            return f"nothing to segment: {self.skipped} input(s) skipped"
        line = (f"segmenting {self.inputs} input(s): {self.pixels:,} px in {self.blocks} block(s), "
                f"{self.windows:,} window(s) to encode on the {self.engine} engine")
        extra = [f"{self.done_blocks} block(s) from an earlier run"] if self.done_blocks else []
        extra += [f"{self.skipped} input(s) skipped"] if self.skipped else []
        return line + (f" ({'; '.join(extra)})" if extra else "")


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
        import sys

        from resegzoo.raster.names import shown

        # what tqdm.write does, for a bar on any stream (it draws on LiveStderr, which tqdm.write
        # does not take for the terminal): clear the bar, write the line, draw the bar again
        bar = self._bar
        if bar is not None:
            bar.clear()
        sys.stdout.write(shown(message) + "\n")
        sys.stdout.flush()
        if bar is not None:
            bar.refresh()

    def note(self, message: str) -> None:
        """A warning about the whole run (e.g. a model random by design); shown even when quiet."""
        import click

        self.close()
        click.secho(f"note: {message}", fg="yellow", err=True)

    def start(self, work: BatchWork) -> None:
        """The batch's work is known: one line saying it, then the windows bar (with an ETA): it
        counts the sliding windows encoded, so one block of one raster moves it as well as many."""
        if self.quiet:
            return
        self.say(work.describe())
        if not work.windows:
            return
        from tqdm.auto import tqdm

        self._bar = tqdm(total=work.windows, desc="windows", unit="win", dynamic_ncols=True)

    def windows(self, count: int) -> None:
        """``count`` more windows encoded (as they are, in this process; by whole blocks from a
        worker process)."""
        bar = self._bar
        if bar is not None:
            if bar.n + count > bar.total:  # never past 100 %: the count up front is the plan's
                bar.total = bar.n + count
            bar.update(count)

    def block(self, outcome: Any) -> None:
        """One block computed (or failed): a :class:`~resegzoo.batch.job.BlockOutcome`."""

    def finished(self, path: str, outputs: str, record: dict[str, Any]) -> None:
        """One input's unit is written: ``outputs`` names its files, ``record`` is its sidecar."""
        self.say(f"{path} -> {outputs}")

    def failed(self, path: str, message: str) -> None:
        """One input could not be written and the batch goes on (``continue_on_error``)."""
        self.say(f"{path}: FAILED ({message}); going on with the rest")

    def close(self) -> None:
        """End the bar (also before an error is printed, so that it gets a line of its own)."""
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.close()
