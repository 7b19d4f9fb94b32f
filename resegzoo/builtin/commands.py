"""Built-in CLI commands."""
from __future__ import annotations

from resegzoo.plugins.hookspecs import hookimpl


@hookimpl
def resegzoo_register_commands(cli):
    from resegzoo.cli import info
    from resegzoo.cli import fetch as fetch_cli

    from resegzoo.cli import eval as eval_cli
    from resegzoo.cli import compose as compose_cli, publish as publish_cli
    from resegzoo.cli import qgis as qgis_cli
    from resegzoo.cli import segment as segment_cli
    from resegzoo.cli import change as change_cli
    for command in (segment_cli.COMMANDS + change_cli.COMMANDS + info.COMMANDS + fetch_cli.COMMANDS + eval_cli.COMMANDS + compose_cli.COMMANDS + publish_cli.COMMANDS
                    + qgis_cli.COMMANDS):
        cli.add_command(command)
