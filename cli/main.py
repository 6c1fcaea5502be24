"""Entry point of the `xrd-agent` console script.

Each subcommand lives in its own module of this package and exposes
``register(subparsers) -> None``, which adds its parser and sets ``func``
(a callable taking the parsed ``argparse.Namespace`` and returning an exit code).
Modules are imported lazily by name so that `xrd-agent --help` stays fast and a
subcommand's heavy imports (torch, prefect, tiled) cost only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from cli.errors import UserError

# Subcommand modules, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "cli.demo",
    "cli.scan",
    "cli.shell",
    "cli.classify",
    "cli.train",
    "cli.bench",
    "cli.serve_agent",
    "cli.ioc",
    "cli.report",
    "cli.storage",
    "cli.spool",
    "cli.flows",
)


#: Commands that must answer in a blink, and the one module that registers each: only that
#: module is imported to parse them (`cli.serve_agent` alone imports zmq and bluesky's
#: callbacks at registration).
QUICK_COMMANDS: dict[str, str] = {"runs": "cli.storage", "label": "cli.storage"}


class OneLineParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose usage errors are one line (argparse prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="xrd-agent",
        description="Closed-loop X-ray diffraction agent: adaptive Bluesky scans steered by a 1D CNN.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # subcommand not written yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from plans.startup import quiet_libraries

    quiet_libraries()
    argv = list(sys.argv[1:] if argv is None else argv)
    quick = QUICK_COMMANDS.get(argv[0]) if argv else None
    parser = build_parser((quick,) if quick else COMMAND_MODULES)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, ValueError, FileNotFoundError, IsADirectoryError, KeyError, ConnectionError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"xrd-agent {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"xrd-agent {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
