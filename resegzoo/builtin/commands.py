"""Built-in CLI commands."""
from __future__ import annotations

from resegzoo.hookspecs import hookimpl


@hookimpl
def resegzoo_register_commands(cli):
    from resegzoo.cli import info

    for command in info.COMMANDS:
        cli.add_command(command)
