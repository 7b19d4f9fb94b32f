"""The ``resegzoo`` command line: a click group whose commands arrive through the commands hook."""
from __future__ import annotations

from typing import Any

import click

from resegzoo import __version__
from resegzoo.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, ResegzooError, exit_code_of

#: the exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it
INTERRUPTED_EXIT = EXIT_INTERRUPTED

#: the exit statuses, as --help lists them (one per kind of error; resegzoo.errors)
EXIT_STATUS_HELP = f"""\b
Exit status:
  0    done
  {EXIT_FAILED}    the work failed: a model that cannot be fetched or read, an input that
       fails while it is segmented (--continue-on-error: some failed, the rest were
       written), an output that cannot be written (e.g. a full disk)
  {EXIT_USAGE}    what was asked for cannot be done, found before any work: an option, a
       recipe or its settings, a vocabulary, an input that is no usable raster, a
       dataset folder, an unknown name
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); nothing half-written is left"""


class UserError(click.ClickException):
    """A user error as click prints it (``Error: <one line>``), with the exit status of its kind."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def user_error(exc: BaseException, prefix: str = "") -> UserError:
    """``exc`` (a ResegzooError, or one raised from it) as a one-line CLI error of its kind,
    its message after ``prefix`` (e.g. ``run 'x': ``)."""
    from resegzoo.raster.names import shown

    return UserError(shown(prefix + str(exc)), exit_code_of(exc))


class ResegzooGroup(click.Group):
    """The one place where errors a user can cause become one-line messages, not tracebacks, with
    the exit status of their kind (:data:`EXIT_STATUS_HELP`), and where Ctrl-C ends any command
    with exit status 130 (click alone would say "Aborted!", 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ResegzooError as exc:
            end_progress_bars()
            raise user_error(exc) from None  # the message shown as UTF-8 (a file name may not be)
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


@click.group(cls=ResegzooGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=EXIT_STATUS_HELP)
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
