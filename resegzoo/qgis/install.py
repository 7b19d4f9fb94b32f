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
    # the settings edit is checked first: an ini that cannot be edited leaves no plugin behind
    ini = IniEdit(folder / "QGIS" / "QGIS3.ini", [
        (ENABLED_KEY, "true"),
        (EXECUTABLE_KEY, None),  # a path saved in the provider's settings would hide the new one
    ]).check()
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
    ini.write()
    return target, exe


def uninstall(profile: str | None = None, profiles_dir: Path | None = None) -> Path | None:
    """Remove the plugin from the profile and its keys from the profile's settings; returns the
    removed folder (None when it was not installed)."""
    profiles_dir = Path(profiles_dir) if profiles_dir else default_profiles_dir()
    folder = profile_dir(profiles_dir, profile, create_default=False)
    target = folder / "python" / "plugins" / PLUGIN_NAME
    IniEdit(folder / "QGIS" / "QGIS3.ini", [(ENABLED_KEY, None), (EXECUTABLE_KEY, None)]).check().write()
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


#: the largest settings file read (QGIS3.ini holds every setting of a profile: a few hundred kB)
MAX_INI_BYTES = 16 * 1024 * 1024


def _section_header(line: str) -> str | None:
    stripped = line.strip()
    return stripped[1:-1] if stripped.startswith("[") and stripped.endswith("]") else None


def read_ini(path: Path) -> list[str] | None:
    """The lines of a Qt INI file (None when there is none), without their line endings (see
    :func:`ini_text`)."""
    text = ini_text(path)
    return None if text is None else text.splitlines()


def ini_text(path: Path) -> str | None:
    """The text of a Qt INI file (None when there is none).

    QGIS writes these files as UTF-8 text; one that is not (other bytes, NUL bytes, a FIFO, a
    folder, a dangling link) is a QgisInstallError naming it, raised before anything is changed."""
    from resegzoo.schema import SchemaError, read_user_file

    if not os.path.lexists(path):
        return None
    if path.is_symlink() and not path.exists():
        raise QgisInstallError(f"{path} is a link to {os.readlink(path)}, which does not exist; fix or remove "
                               "the link (nothing was changed)")
    try:
        raw = read_user_file(path, MAX_INI_BYTES, "a QGIS settings file")
    except SchemaError as exc:
        raise QgisInstallError(f"{exc} (nothing was changed)") from None
    nul = raw.find(bytes(1))
    if nul >= 0:
        raise QgisInstallError(f"{path} holds NUL bytes (at offset {nul}): not a QGIS settings file "
                               "QGIS wrote; repair or remove it (nothing was changed)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QgisInstallError(f"{path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}): not "
                               "a QGIS settings file QGIS wrote; repair or remove it (nothing was changed)") from None


def ini_get(path: Path, section: str, key: str) -> str | None:
    """A plain value from a Qt INI file (None when absent); quotes are removed, escapes are not handled."""
    current = None
    for line in read_ini(path) or []:
        header = _section_header(line)
        if header is not None:
            current = header
        elif current == section and "=" in line:
            name, _, value = line.partition("=")
            if name.strip() == key:
                value = value.strip()
                return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    return None


def edited_ini(lines: list[str], section: str, key: str, value: str | None) -> list[str]:
    """``lines`` with one key set (or with None removed), every other line kept as it is.
    ``value`` must need no escaping (true, false, plain names)."""
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
    return out


class IniEdit:
    """Edits of one settings file, checked before anything is written: the file is read (a
    QgisInstallError for one that is not UTF-8 text, holds NUL bytes, is a FIFO or a dangling
    link) and, when it must change, found writable (a read-only file is left alone, with an
    error) by :meth:`check`; :meth:`write` then writes it whole and atomically, through a link
    to the file it points at, with the file's own permissions (and owner, where allowed) and
    line endings: QGIS3.ini may hold saved database passwords (0600)."""

    def __init__(self, path: Path, edits: list[tuple[tuple[str, str], str | None]]) -> None:
        self.path = Path(path)
        text = ini_text(self.path)
        self.before = None if text is None else text.splitlines()
        #: the line ending the file uses (QGIS on Windows writes CRLF): kept
        self.newline = "\r\n" if text is not None and "\r\n" in text else "\n"
        after = list(self.before or [])
        for (section, key), value in edits:
            after = edited_ini(after, section, key, value)
        self.after = after
        self.target = Path(os.path.realpath(self.path))  # a link's target (a chain of links too)

    @property
    def changes(self) -> bool:
        return self.after != (self.before or []) and not (self.before is None and not self.after)

    def check(self) -> "IniEdit":
        if not self.changes:
            return self
        # no write bit is read-only even for root (whom os.access lets write anything)
        if self.before is not None and (not os.access(self.target, os.W_OK)
                                        or not os.stat(self.target).st_mode & 0o222):
            raise QgisInstallError(f"{self.target} is read-only, so the plugin cannot be enabled in it; make it "
                                   "writable (e.g. chmod u+w) or enable resegzoo in QGIS (Plugins > Manage) "
                                   "(nothing was changed)")
        folder = self.target.parent
        existing = next((p for p in (folder, *folder.parents) if p.exists()), folder)
        if not os.access(existing, os.W_OK | os.X_OK):
            raise QgisInstallError(f"cannot write {self.target}: its folder {existing} is not writable "
                                   "(nothing was changed)")
        return self

    def write(self) -> None:
        if not self.changes:
            return
        import stat

        text = self.newline.join(self.after).rstrip("\r\n") + self.newline
        st = os.stat(self.target) if self.before is not None else None
        self.target.parent.mkdir(parents=True, exist_ok=True)
        with atomic.atomic_path(self.target) as tmp:
            tmp.write_bytes(text.encode("utf-8"))
            if st is not None:  # before the rename: the new file never has wider permissions than the old
                os.chmod(tmp, stat.S_IMODE(st.st_mode))
                if hasattr(os, "chown") and (st.st_uid, st.st_gid) != (os.stat(tmp).st_uid, os.stat(tmp).st_gid):
                    try:
                        os.chown(tmp, st.st_uid, st.st_gid)
                    except PermissionError:  # only root may give a file away; the group may still fail
                        pass


def ini_set(path: Path, section: str, key: str, value: str | None) -> None:
    """Set (or with None remove) one key of a Qt INI file, keeping every other line as it is
    (see :class:`IniEdit`). ``value`` must need no escaping (true, false, plain names)."""
    IniEdit(path, [((section, key), value)]).check().write()
