"""Where the plugin finds the ``resegzoo`` executable.

``resegzoo qgis install`` records the path of the executable it was run from in ``install.json``
beside this file. That path is the default of the provider's setting "resegzoo executable"
(Settings > Options > Processing > Providers > resegzoo), where the user can change it; a value set
there wins. Plain Python (no qgis import): resegzoo's tests read it too.
"""
import json
import os

#: the file ``resegzoo qgis install`` writes beside the plugin's code
INSTALL_RECORD = "install.json"
#: the Processing setting that holds the executable (shown in the provider's settings)
EXECUTABLE_SETTING = "RESEGZOO_EXECUTABLE"


def plugin_dir():
    return os.path.dirname(os.path.abspath(__file__))


def recorded_install():
    """What ``resegzoo qgis install`` recorded (``{}`` when the plugin was copied by hand)."""
    path = os.path.join(plugin_dir(), INSTALL_RECORD)
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"{path} is unreadable ({exc}); run `resegzoo qgis install` again") from exc
    return record if isinstance(record, dict) else {}


def recorded_executable():
    return str(recorded_install().get("executable") or "")


def check_executable(path):
    """The message that says why ``path`` cannot be run, or None when it can."""
    where = "Settings > Options > Processing > Providers > resegzoo"
    if not path:
        return ("the resegzoo executable is not known: run `resegzoo qgis install` from resegzoo's "
                f"environment, or set it in {where}")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        return (f"the resegzoo executable {path} does not exist or cannot be run: run `resegzoo qgis install` "
                f"again from resegzoo's environment, or set the path in {where}")
    return None


def processing_config():
    """Processing's settings registry and its Setting class (the ``processing`` plugin that QGIS and
    qgis_process load); imported here, not at the top, so that this module stays plain Python."""
    from processing.core.ProcessingConfig import ProcessingConfig, Setting

    return ProcessingConfig, Setting


def executable():
    """The executable to run: the provider's setting, else what ``resegzoo qgis install`` recorded."""
    config, _ = processing_config()
    return str(config.getSetting(EXECUTABLE_SETTING) or recorded_executable())
