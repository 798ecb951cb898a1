"""The `kudos` command.

Each subcommand lives in its own module, which defines ``register(subparsers)``: it adds its parser
and sets ``run`` (``Namespace -> int``, the exit code) with ``parser.set_defaults(run=...)``.
Adding a subcommand is adding its ``register`` to ``COMMANDS``; keep module imports light (import
boto3, moto and friends inside ``run``), since every ``kudos`` call imports every command module.

Errors the user can act on (``CommandError``, ``kudos.local.LocalError``, ``SettingsError``,
``KudosError``) print their message on one line and exit 1; anything else prints its type and
message, with the traceback only under ``kudos --debug``. Usage errors exit 2 (argparse).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from kudos.core.errors import KudosError
from kudos.core.settings import SettingsError
from kudos.demo import run as demo_command
from kudos.local import LocalError, campaigns_cli, report_cli, segments_cli
from kudos.local import invoke as invoke_command
from kudos.local import serve as serve_command

Subparsers = argparse._SubParsersAction  # the type argparse gives add_subparsers() no public name for

COMMANDS: list[Callable[[Subparsers], None]] = [
    serve_command.register,
    invoke_command.register,
    segments_cli.register,
    campaigns_cli.register,
    report_cli.register,
    demo_command.register,
]


class CommandError(Exception):
    """Raised by a subcommand for a problem the user can fix; only the message is printed."""


USER_ERRORS: tuple[type[BaseException], ...] = (CommandError, LocalError, SettingsError, KudosError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kudos", description="Find an app's most active users and reward them: local tools."
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of unexpected errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in COMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # --help and usage errors: argparse has printed what to print.
        return exit_.code if isinstance(exit_.code, int) else 2
    run = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(run(args))
    except KeyboardInterrupt:
        return 130
    except USER_ERRORS as error:
        print(f"kudos {args.command}: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        if args.debug:
            raise
        print(
            f"kudos {args.command}: unexpected {type(error).__name__}: {error} "
            "(kudos --debug shows the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
