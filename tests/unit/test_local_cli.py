"""The `kudos` command: subcommands register themselves; errors are one line, never a traceback."""

from __future__ import annotations

import argparse

import pytest

from kudos import cli


def register_failing(subparsers: cli.Subparsers) -> None:
    parser = subparsers.add_parser("fail")
    parser.add_argument("kind", choices=["user", "bug"])

    def run(args: argparse.Namespace) -> int:
        if args.kind == "user":
            raise cli.CommandError("the rules file names no segment")
        raise ValueError("an unexpected bug")

    parser.set_defaults(run=run)


@pytest.fixture
def with_failing_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, register_failing])


def test_serve_and_invoke_are_registered(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0

    out = capsys.readouterr().out
    assert "serve" in out
    assert "invoke" in out


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: kudos" in capsys.readouterr().err


def test_a_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--port", "not-a-number"]) == 2
    assert "invalid int value" in capsys.readouterr().err


@pytest.mark.usefixtures("with_failing_command")
def test_a_user_error_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["fail", "user"]) == 1

    err = capsys.readouterr().err
    assert err == "kudos fail: the rules file names no segment\n"


@pytest.mark.usefixtures("with_failing_command")
def test_an_unexpected_error_is_one_line_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["fail", "bug"]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "ValueError: an unexpected bug" in err
    assert "Traceback" not in err


@pytest.mark.usefixtures("with_failing_command")
def test_debug_shows_the_traceback() -> None:
    with pytest.raises(ValueError, match="unexpected bug"):
        cli.main(["--debug", "fail", "bug"])


def test_a_missing_segments_directory_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--segments", "/no/such/dir", "--port", "0"]) == 1
    assert capsys.readouterr().err == "kudos serve: segments directory /no/such/dir does not exist\n"


def _parsers(parser: argparse.ArgumentParser, name: str) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(name, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                found += _parsers(sub, f"{name} {sub_name}")
    return found


def test_every_argument_of_every_command_has_help_text() -> None:
    missing = [
        f"{name}: {action.option_strings or action.dest}"
        for name, parser in _parsers(cli.build_parser(), "kudos")
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction | argparse._HelpAction) and not action.help
    ]
    assert missing == []
