"""``resegzoo qgis install|uninstall``: the Processing plugin in a QGIS user profile (docs/qgis.md)."""
from __future__ import annotations

from pathlib import Path

import click

PROFILE_OPTION = click.option("--profile", help="QGIS user profile. Default: QGIS's default profile "
                              "(profiles.ini; normally 'default').")
PROFILES_DIR_OPTION = click.option(
    "--profiles-dir", type=click.Path(file_okay=False, path_type=Path),
    help="The folder of QGIS's profiles. Default: $QGIS_CUSTOM_CONFIG_PATH/profiles, else QGIS 3's "
         "(~/.local/share/QGIS/QGIS3/profiles on Linux).")


@click.group("qgis")
def qgis() -> None:
    """Use resegzoo from QGIS: the Processing algorithm resegzoo:segment."""


@qgis.command("install")
@PROFILE_OPTION
@PROFILES_DIR_OPTION
@click.option("--executable", type=click.Path(dir_okay=False, path_type=Path),
              help="The resegzoo command the plugin runs. Default: this environment's.")
def install(profile: str | None, profiles_dir: Path | None, executable: Path | None) -> None:
    """Install and enable the resegzoo plugin in a QGIS profile.

    The plugin runs this environment's `resegzoo` command (its path is recorded; change it in QGIS
    under Settings > Options > Processing > Providers > resegzoo). Run it again after moving the
    environment. Restart QGIS afterwards; qgis_process sees it at once.
    """
    from resegzoo.qgis import install as installer
    from resegzoo.qgis.detect import find_qgis, no_qgis_note

    where = profiles_dir or installer.default_profiles_dir()
    found = find_qgis(where)  # before installing: the install creates the profiles folder
    folder, exe = installer.install(profile, profiles_dir, executable)
    if found is None:
        click.secho(f"note: {no_qgis_note(where)}", fg="yellow", err=True)
    click.echo(f"installed and enabled the QGIS plugin in {folder}\nit runs {exe}\n"
               "restart QGIS: Processing Toolbox > resegzoo > Segment into named classes (resegzoo:segment)")


@qgis.command("uninstall")
@PROFILE_OPTION
@PROFILES_DIR_OPTION
def uninstall(profile: str | None, profiles_dir: Path | None) -> None:
    """Remove the resegzoo plugin from a QGIS profile."""
    from resegzoo.qgis import install as installer

    removed = installer.uninstall(profile, profiles_dir)
    click.echo(f"removed {removed}" if removed else "the resegzoo plugin was not installed in that profile")


COMMANDS = [qgis]
