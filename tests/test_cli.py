"""The `agora` command's top-level options."""

from __future__ import annotations

from click.testing import CliRunner

from cli import main


def test_version_prints_name_and_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "agora 0.1.0"


def test_help_describes_agora() -> None:
    for flag in ("--help", "-h"):
        result = CliRunner().invoke(main, [flag])
        assert result.exit_code == 0, result.output
        assert "Agora" in result.output
        assert "Usage:" in result.output
