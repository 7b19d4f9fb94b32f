"""Ctrl-C ends every resegzoo command with exit status 130 (issue 8, item 13)."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from resegzoo.cli import build_cli


def _commands():
    """Every command a user runs: "segment", and a group's subcommands as "qgis install"."""
    import click

    names = []
    for name, command in sorted(build_cli().commands.items()):
        subcommands = command.commands if isinstance(command, click.Group) else {}
        names += [f"{name} {sub}" for sub in sorted(subcommands)] or [name]
    return names


@pytest.mark.parametrize("name", _commands())
def test_ctrl_c_in_any_command_exits_130(name, monkeypatch):
    command = build_cli()
    for part in name.split():
        command = command.commands[part]

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    # no arguments to parse: the command body is entered at once and "gets" Ctrl-C
    monkeypatch.setattr(command, "params", [])
    monkeypatch.setattr(command, "callback", interrupted)
    result = CliRunner().invoke(build_cli(), name.split())
    assert result.exit_code == 130, result.output
    assert "Traceback" not in result.output


def test_ctrl_c_while_segmenting_exits_130_and_leaves_no_half_written_outputs(tmp_path, monkeypatch):
    from resegzoo.segmenter.core import Segmenter

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Segmenter, "segment", interrupted)
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(image)
    out = tmp_path / "out"
    result = CliRunner().invoke(build_cli(), ["segment", str(image), "--model", "oracle", "--masks", "none",
                                              "--classes", "red; blue", "--out", str(out)])
    assert result.exit_code == 130, result.output
    assert sorted(p.name for p in out.iterdir()) == []


def test_ctrl_c_while_plugins_load_exits_130_without_a_traceback(monkeypatch, capsys):
    # QGIS's Cancel can come while resegzoo is still importing its plugins (torch)
    import resegzoo.cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr("resegzoo.plugins.manager.get_plugin_manager", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        resegzoo.cli.main()
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == "\ninterrupted\n"
