"""The `nngraph` command. Each command is a module of this package with `register(subparsers)`,
which adds its arguments, and `run(args) -> exit code`.

Exit codes: 0 ok, 1 a diagnosed error in the user's input, 2 bad command-line usage.
"""
from __future__ import annotations

import argparse
import sys

from nngraph.cli import check, compile, neighbours, run, train
from nngraph.cli.common import UsageError
from nngraph.diagnostics import NNError

COMMANDS = [check, compile, train, run, neighbours]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.command(args) or 0
    except NNError as err:
        print(err.render(), file=sys.stderr)
        return 1
    except UsageError as err:
        parser.print_usage(sys.stderr)
        print(f"nngraph: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:      # output piped into `head`: not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nngraph", description="A neural-network graph compiler for .nn files.")
    subparsers = parser.add_subparsers(required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


if __name__ == "__main__":
    sys.exit(main())
