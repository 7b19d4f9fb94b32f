"""Install the QGIS plugin (``resegzoo/qgis/plugin``) into a QGIS user profile, and remove it.

QGIS keeps each user profile in ``PROFILES/NAME`` (PROFILES: ``$QGIS_CUSTOM_CONFIG_PATH/profiles``
when that is set, else ``~/.local/share/QGIS/QGIS3/profiles`` on Linux, ``~/Library/Application
Support/QGIS/QGIS3/profiles`` on macOS, ``%APPDATA%\\QGIS\\QGIS3\\profiles`` on Windows); the profile
QGIS and qgis_process open by default is named in ``PROFILES/profiles.ini``. Installing:

- copies the plugin to ``PROFILE/python/plugins/resegzoo_qgis`` (built beside it and renamed into
  place: a failed install leaves the previous one whole), with ``install.json`` recording the
  ``resegzoo`` executable of this environment, which the plugin runs;
- enables it: ``[PythonPlugins] resegzoo_qgis=true`` in ``PROFILE/QGIS/QGIS3.ini``, and removes a
  previously saved executable setting so the newly recorded one applies.

The ini file is edited line by line (only those keys), not rewritten: Qt's INI dialect (escapes,
``\\`` in keys) is not Python's configparser's.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from resegzoo import __version__
from resegzoo.outputs import atomic
from resegzoo.errors import ResegzooError

#: the plugin's folder name under python/plugins (its Python package name inside QGIS)
PLUGIN_NAME = "resegzoo_qgis"
PLUGIN_SOURCE = Path(__file__).with_name("plugin")
#: keys in the profile's QGIS3.ini: (section, key)
ENABLED_KEY = ("PythonPlugins", PLUGIN_NAME)
EXECUTABLE_KEY = ("Processing", "Configuration\\RESEGZOO_EXECUTABLE")


class QgisInstallError(ResegzooError):
    pass


def default_profiles_dir() -> Path:
    """Where QGIS 3 keeps its user profiles on this machine (QStandardPaths' AppDataLocation)."""
    custom = os.environ.get("QGIS_CUSTOM_CONFIG_PATH")
    if custom:
        return Path(custom) / "profiles"
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "QGIS" / "QGIS3" / "profiles"


def default_profile_name(profiles_dir: Path) -> str:
    """The profile QGIS opens by default: ``[core] defaultProfile`` of profiles.ini, else "default"."""
    return ini_get(profiles_dir / "profiles.ini", "core", "defaultProfile") or "default"


def profile_dir(profiles_dir: Path, name: str | None, create_default: bool) -> Path:
    """The folder of profile ``name`` (the default profile when None). QGIS creates the default
    profile on its first start, so installing before that creates it; other names must exist."""
    default = default_profile_name(profiles_dir)
    name = name or default
    if not name.strip() or any(c in name for c in "/\\") or name in (".", ".."):
        raise QgisInstallError(f"{name!r} is not a QGIS profile name")
    folder = profiles_dir / name
    if folder.is_dir() or (create_default and name == default):
        return folder
    existing = sorted(p.name for p in profiles_dir.iterdir() if p.is_dir()) if profiles_dir.is_dir() else []
    listed = f"profiles there: {', '.join(existing)}" if existing else "no profiles there yet"
    raise QgisInstallError(f"no QGIS profile {name!r} in {profiles_dir} ({listed}); create it in QGIS "
                           "(Settings > User Profiles > New Profile) or leave out --profile")


def default_executable() -> Path | None:
    """The ``resegzoo`` script of the environment this runs in (beside its Python)."""
    scripts = Path(sys.executable).parent  # not resolved: a virtualenv's python is a link out of it
    for name in ("resegzoo", "resegzoo.exe"):
        if (scripts / name).is_file():
            return (scripts / name).absolute()
    found = shutil.which("resegzoo")
    return Path(found).absolute() if found else None


def install(profile: str | None = None, profiles_dir: Path | None = None,
            executable: Path | None = None) -> tuple[Path, Path]:
    """Copy the plugin into the profile and enable it; returns (plugin folder, executable)."""
    profiles_dir = Path(profiles_dir) if profiles_dir else default_profiles_dir()
    exe = Path(executable).absolute() if executable else default_executable()
    if exe is None:
        raise QgisInstallError("cannot find the resegzoo executable of this environment; pass --executable PATH")
    if not exe.is_file() or not os.access(exe, os.X_OK):
        raise QgisInstallError(f"{exe} is not an executable file; pass the path of the resegzoo command "
                               "(e.g. .venv/bin/resegzoo) with --executable")
    folder = profile_dir(profiles_dir, profile, create_default=True)
    plugins = folder / "python" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    target = plugins / PLUGIN_NAME
    staged = atomic.temporary_dir(target, "partial")  # a killed install's leftovers go on the next one
    try:
        shutil.copytree(PLUGIN_SOURCE, staged, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "install.json"))
        record = {"executable": str(exe), "resegzoo_version": __version__}
        (staged / "install.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        _replace_folder(staged, target)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    ini = folder / "QGIS" / "QGIS3.ini"
    ini_set(ini, *ENABLED_KEY, "true")
    ini_set(ini, *EXECUTABLE_KEY, None)  # a path saved in the provider's settings would hide the new one
    return target, exe


def uninstall(profile: str | None = None, profiles_dir: Path | None = None) -> Path | None:
    """Remove the plugin from the profile and its keys from the profile's settings; returns the
    removed folder (None when it was not installed)."""
    profiles_dir = Path(profiles_dir) if profiles_dir else default_profiles_dir()
    folder = profile_dir(profiles_dir, profile, create_default=False)
    target = folder / "python" / "plugins" / PLUGIN_NAME
    ini = folder / "QGIS" / "QGIS3.ini"
    for key in (ENABLED_KEY, EXECUTABLE_KEY):
        ini_set(ini, *key, None)
    if not target.exists():
        return None
    old = atomic.temporary_dir(target, "old")
    os.replace(target, old / PLUGIN_NAME)  # one rename: QGIS never sees half a plugin
    shutil.rmtree(old)
    return target


def _replace_folder(new: Path, target: Path) -> None:
    if target.exists():
        old = atomic.temporary_dir(target, "old")
        os.replace(target, old / target.name)
        os.replace(new, target)
        shutil.rmtree(old)
    else:
        os.replace(new, target)


def _section_header(line: str) -> str | None:
    stripped = line.strip()
    return stripped[1:-1] if stripped.startswith("[") and stripped.endswith("]") else None


def ini_get(path: Path, section: str, key: str) -> str | None:
    """A plain value from a Qt INI file (None when absent); quotes are removed, escapes are not handled."""
    if not path.is_file():
        return None
    current = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        header = _section_header(line)
        if header is not None:
            current = header
        elif current == section and "=" in line:
            name, _, value = line.partition("=")
            if name.strip() == key:
                value = value.strip()
                return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    return None


def ini_set(path: Path, section: str, key: str, value: str | None) -> None:
    """Set (or with None remove) one key of a Qt INI file, keeping every other line as it is.
    ``value`` must need no escaping (true, false, plain names)."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    out: list[str] = []
    current, placed, seen_section = None, False, False

    def close_section() -> None:
        nonlocal placed
        if current == section and not placed and value is not None:
            while out and not out[-1].strip():  # keep the blank line that separates sections after the key
                out.pop()
            out.append(f"{key}={value}")
            out.append("")
            placed = True

    for line in lines:
        header = _section_header(line)
        if header is not None:
            close_section()
            current = header
            seen_section = seen_section or header == section
            out.append(line)
            continue
        if current == section and "=" in line and line.partition("=")[0].strip() == key:
            if value is not None and not placed:
                out.append(f"{key}={value}")
                placed = True
            continue
        out.append(line)
    close_section()
    if not seen_section and value is not None:
        if out and out[-1].strip():
            out.append("")
        out += [f"[{section}]", f"{key}={value}"]
    if out == lines:
        return
    if not lines and value is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, "\n".join(out).rstrip("\n") + "\n")
