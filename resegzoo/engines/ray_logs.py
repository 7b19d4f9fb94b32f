"""Ray's own messages go to a log file in the output folder, not through resegzoo's output.

Ray writes to the terminal on two levels: its C++ core (``core_worker.cc``, ``gcs_client.cc`` lines,
straight to file descriptor 2, also from its background threads and at exit) and its Python
loggers (``ray``, ``ray.data``: the metrics poller's "--- Logging error ---" tracebacks, a stats
actor's KeyErrors). Once a command hands work to Ray, :func:`ray_noise_to` points descriptor 2 at
the log file for the rest of the process and gives Python's ``sys.stderr`` (resegzoo's progress
bar, its messages, warnings, click's errors) a copy of the terminal's descriptor (progress bars
already drawn are moved onto it); Ray's Python
loggers write into the same file and no longer propagate. It stays so until the process ends,
because Ray's threads log until then.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, TextIO

#: the log file this process already sends Ray's messages to (once per process)
_active: Path | None = None


def ray_noise_to(log_file: Path) -> Path:
    """Send Ray's messages to ``log_file`` (appended) from now on; returns the file in use (the
    first one asked for in this process)."""
    global _active
    if _active is not None:
        return _active
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o666)
    terminal = os.dup(2)
    os.dup2(fd, 2)  # C++ writes to descriptor 2 go to the log now
    os.close(fd)
    stream: TextIO = open(terminal, "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                          errors="backslashreplace", closefd=False)
    _move_bars(sys.stderr, stream)
    sys.stderr = stream
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("ray", "ray.data", "ray.train", "ray.tune", "ray.serve"):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, logging.StreamHandler)
                    and not isinstance(h, logging.FileHandler)]:
            logger.removeHandler(old)  # Ray's own console handlers would write to the terminal
        logger.propagate = False
    logging.getLogger("ray").addHandler(handler)
    for name in ("ray.data", "ray.train", "ray.tune", "ray.serve"):
        logging.getLogger(name).propagate = True  # into "ray"'s file handler
    _active = log_file
    return log_file


def _move_bars(old: Any, new: TextIO) -> None:
    """Progress bars drawn on ``old`` (made before Ray started) go on drawing on ``new``."""
    std = sys.modules.get("tqdm.std")  # no bar was ever made if tqdm was never imported
    if std is None:
        return
    from tqdm.utils import DisableOnWriteError

    for bar in list(std.tqdm._instances):
        if getattr(bar.fp, "_wrapped", bar.fp) is old:
            bar.fp = DisableOnWriteError(new, tqdm_instance=bar)
            bar.sp = bar.status_printer(bar.fp)


def active_log() -> Any:
    """The log file Ray's messages go to in this process, or None."""
    return _active
