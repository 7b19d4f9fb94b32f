"""Where a run's time goes: seconds per stage (read, masks, encode, write) and windows encoded.

One :class:`Meter` per process (set with :func:`metering`); the pipeline marks its stages with
``with stage("masks"):`` and reports encoded windows with :func:`windows_done`, wherever it runs
(the local engine, a Ray actor, a prefetch thread: the meter is the process's, not a thread's, so
work done in background threads counts too). Without a meter both are no-ops. The batch takes the
difference of :meth:`Meter.snapshot` before and after each block for that block's split; the
sidecar and the summary show it, and benchmarks read the same numbers.

Stages may overlap (the next block is read while this one is encoded), so their sum can exceed
the wall-clock time: each stage's number is the time spent in it, by whichever thread.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable, Iterator

#: the stages, in pipeline order
STAGES = ("read", "masks", "encode", "write")


class Meter:
    """Seconds per stage and windows encoded, thread-safe; ``on_windows(n)`` hears each batch of
    windows as it is encoded (a progress bar)."""

    def __init__(self, on_windows: Callable[[int], None] | None = None, batch: bool = False) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.windows = 0
        self.on_windows = on_windows
        #: the meter of a batch in its own process (it sees every block's work as it happens); a
        #: worker process's meter is not, and each block result carries its own split
        self.batch = batch
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add({name: time.perf_counter() - start})

    def add(self, seconds: dict[str, float]) -> None:
        with self._lock:
            for name, value in seconds.items():
                self.seconds[name] = self.seconds.get(name, 0.0) + value

    def windows_done(self, count: int) -> None:
        with self._lock:
            self.windows += count
        if self.on_windows is not None and count:
            self.on_windows(count)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self.seconds)


def since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Seconds per stage between two snapshots."""
    return {name: after.get(name, 0.0) - before.get(name, 0.0) for name in STAGES}


def split(seconds: dict[str, float]) -> dict[str, float]:
    """``seconds`` per stage for a record: every stage, rounded to ms."""
    return {name: round(seconds.get(name, 0.0), 3) for name in STAGES}


def describe(seconds: dict[str, float]) -> str:
    """One line: ``read 0.4 s (2%), masks 17.1 s (91%), encode 1.0 s (5%), write 0.3 s (2%)``."""
    total = sum(seconds.get(name, 0.0) for name in STAGES)
    parts = [f"{name} {seconds.get(name, 0.0):.1f} s ({seconds.get(name, 0.0) / total:.0%})" if total else
             f"{name} 0.0 s" for name in STAGES]
    return ", ".join(parts)


_current: Meter | None = None
_current_lock = threading.Lock()


def current() -> Meter:
    """This process's meter, made on first use (a worker process meters what it does)."""
    global _current
    with _current_lock:
        if _current is None:
            _current = Meter()
        return _current


@contextlib.contextmanager
def metering(meter: Meter) -> Iterator[Meter]:
    """Make ``meter`` this process's meter while the block runs (the previous one after)."""
    global _current
    with _current_lock:
        previous, _current = _current, meter
    try:
        yield meter
    finally:
        with _current_lock:
            _current = previous


def stage(name: str) -> contextlib.AbstractContextManager[None]:
    """Time a stage on this process's meter."""
    return current().stage(name)


def windows_done(count: int) -> None:
    """``count`` more windows encoded, on this process's meter."""
    current().windows_done(count)
