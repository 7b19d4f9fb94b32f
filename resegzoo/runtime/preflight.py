"""Checks made before any model loads: the output folder can be written, the device exists.

Minutes of computing must not end in a traceback because ``--out`` lies below a regular file, the
folder is read-only, or ``--device cuda`` names a GPU the machine does not have. Both checks raise
:class:`~resegzoo.errors.ResegzooError` subclasses, which the CLI prints as one line.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from resegzoo.errors import ResegzooError


class OutputFolderError(ResegzooError, OSError):
    """An output folder that cannot be created or written."""


class DeviceError(ResegzooError, ValueError):
    """A torch device that is malformed or not present on this machine."""


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (the current folder for a relative one)."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path.cwd()


def _probe(folder: Path, target: Path) -> None:
    """Create and remove a file in ``folder``: the only test that also holds for root, read-only
    mounts and ACLs (``os.access`` answers yes to root everywhere)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".resegzoo-write-test-", dir=folder)
    except OSError as exc:
        raise OutputFolderError(f"cannot write into {target}: {exc.strerror or exc} in {folder}; "
                                "choose another --out") from None
    os.close(fd)
    os.unlink(name)


def check_output_folder(path: str | Path) -> None:
    """Check, without creating anything, that the folder ``path`` can hold new files: it is a
    folder if it exists, else no file sits on the way to it and its closest existing ancestor
    (where it will be created) is writable."""
    path = Path(path)
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise OutputFolderError(f"cannot write into {path}: {existing} is a file, not a folder; "
                                "choose another --out")
    _probe(existing, path)


def check_device(device: str) -> None:
    """``device`` parses as a torch device and exists here (CUDA/MPS available, index in range)."""
    if device == "cpu":  # always there: the checks of a CPU run need no torch (start-up, issue 27)
        return
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise DeviceError(f"--device {device!r} is not a torch device ({exc}); use e.g. cpu, cuda or cuda:1") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            built = "a build without CUDA" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, but no GPU found"
            raise DeviceError(f"--device {device}: CUDA is not available on this machine (torch {torch.__version__}, "
                              f"{built}); use --device cpu")
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise DeviceError(f"--device {device}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"--device {device}: Apple MPS is not available on this machine; use --device cpu")
