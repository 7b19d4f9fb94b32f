"""The ``resegzoo`` command line: a click group whose commands arrive through the commands hook."""
from __future__ import annotations

import click

from resegzoo import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="resegzoo")
def cli() -> None:
    """Training-free open-vocabulary segmentation of remote-sensing imagery (ReSeg-CLIP).

    Run `resegzoo COMMAND --help` for the options of each command.
    """


def build_cli() -> click.Group:
    """The CLI group with every plugin's commands added (built-ins are plugins too)."""
    from resegzoo.plugins import get_plugin_manager

    pm = get_plugin_manager()
    pm.hook.resegzoo_register_commands(cli=cli)
    return cli


def main() -> None:
    build_cli()(prog_name="resegzoo")
