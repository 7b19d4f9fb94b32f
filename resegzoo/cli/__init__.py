"""The ``resegzoo`` command line: a click group whose commands arrive through the commands hook."""
from __future__ import annotations

from typing import Any

import click

from resegzoo import __version__
from resegzoo.errors import ResegzooError


#: the exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it
INTERRUPTED_EXIT = 130


class ResegzooGroup(click.Group):
    """The one place where errors a user can cause become one-line messages (exit 1), not tracebacks,
    and where Ctrl-C ends any command with exit status 130 (click alone would say "Aborted!", 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ResegzooError as exc:
            from resegzoo.raster.names import shown

            end_progress_bars()
            raise click.ClickException(shown(str(exc))) from None  # a file name may not be UTF-8
        except click.ClickException:
            end_progress_bars()
            raise
        except OSError as exc:
            from resegzoo.outputs.atomic import is_no_space

            if not is_no_space(exc):
                raise
            end_progress_bars()
            # the writers name their folder (OutputWriteError above); this catches any other write
            where = f" writing {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"no space left on the device{where}; free some space and run again") from None
        except KeyboardInterrupt:
            end_progress_bars()
            click.echo("\ninterrupted", err=True)
            raise click.exceptions.Exit(INTERRUPTED_EXIT) from None


def end_progress_bars() -> None:
    """End the progress bars an error left open, so that its message gets a line of its own
    (not ``preparing inputs:   0%|...|Error: ...``)."""
    import sys

    std = sys.modules.get("tqdm.std")  # no bar was ever made if tqdm was never imported
    if std is None:
        return
    for bar in list(std.tqdm._instances):
        bar.close()


@click.group(cls=ResegzooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="resegzoo")
def cli() -> None:
    """Training-free open-vocabulary segmentation of remote-sensing imagery (ReSeg-CLIP).

    Run `resegzoo COMMAND --help` for the options of each command.
    """


def build_cli() -> click.Group:
    """The CLI group with every plugin's commands added (built-ins are plugins too)."""
    from resegzoo.plugins.manager import get_plugin_manager

    pm = get_plugin_manager()
    pm.hook.resegzoo_register_commands(cli=cli)
    return cli


def main() -> None:
    try:
        command = build_cli()
    except KeyboardInterrupt:  # Ctrl-C (or QGIS's Cancel) while plugins load: as during a command, no traceback
        click.echo("\ninterrupted", err=True)
        raise SystemExit(INTERRUPTED_EXIT) from None
    command(prog_name="resegzoo")
