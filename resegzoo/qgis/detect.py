"""Is QGIS on this machine? `resegzoo qgis install` installs either way, and says so when not.

QGIS installs a desktop program (``qgis``) and ``qgis_process`` on PATH on Linux, an application
bundle on macOS and a folder under Program Files on Windows; a QGIS that has been started once
leaves its profiles folder. Any of these counts.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

#: Debian's and Ubuntu's packages for QGIS with its Python (named alike in docs/qgis.md and the
#: real-QGIS tests' skip message)
QGIS_PACKAGES = "qgis python3-qgis"
QGIS_COMMANDS = ("qgis", "qgis_process", "qgis_process.bin", "qgis-bin.exe", "qgis-ltr-bin.exe")


def _bundles() -> list[Path]:
    if sys.platform == "darwin":
        return sorted(Path("/Applications").glob("QGIS*.app"))
    if sys.platform == "win32":
        roots = {os.environ.get(k) for k in ("ProgramFiles", "ProgramW6432", "OSGEO4W_ROOT")} - {None}
        return sorted(p for root in roots for p in Path(root).glob("QGIS*"))  # type: ignore[arg-type]
    return []


def find_qgis(profiles_dir: Path | None = None) -> str | None:
    """Where QGIS was found (a command, an application, a profiles folder), or None."""
    for name in QGIS_COMMANDS:
        found = shutil.which(name)
        if found:
            return found
    bundles = _bundles()
    if bundles:
        return str(bundles[0])
    if profiles_dir is not None and profiles_dir.is_dir():
        return str(profiles_dir)
    return None


def no_qgis_note(profiles_dir: Path) -> str:
    """What `resegzoo qgis install` says when :func:`find_qgis` found nothing."""
    return (f"no QGIS found on this machine (no {', '.join(QGIS_COMMANDS[:2])} on PATH, no profiles in "
            f"{profiles_dir}); the plugin is installed and QGIS 3.22 or newer will load it once installed "
            f"(Debian/Ubuntu: apt-get install {QGIS_PACKAGES}; other systems: qgis.org; docs/qgis.md)")
