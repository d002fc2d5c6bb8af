"""Every subcommand's --help prints (argparse expands % in help texts: a bare one crashes)."""

from __future__ import annotations

import pytest

from sidecar import cli

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("command", ["", *sorted(cli.HANDLERS)])
def test_help_of_each_command_prints(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main([command, "--help"] if command else ["--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("usage: ")
