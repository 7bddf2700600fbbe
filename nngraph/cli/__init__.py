"""The `nngraph` command. Each command is a module of this package with `register(subparsers)`,
which adds its arguments, and `run(args) -> exit code`.

Exit codes: 0 ok, 1 a diagnosed error in the user's input, 2 bad command-line usage or an internal
error (a bug of nngraph: one line saying how to report it; `--debug` shows the traceback).
"""
from __future__ import annotations

import argparse
import gc
import sys
import traceback

from nngraph.cli import check, compile, explain, generate, neighbours, plot, run, train
from nngraph.cli import eval as eval_command
from nngraph.cli.common import UsageError
from nngraph.diagnostics import NNError

COMMANDS = [check, compile, train, run, eval_command, plot, neighbours, explain, generate]


def main(argv: list[str] | None = None) -> int:
    gc.set_threshold(20_000, 50, 100)   # fewer collections: elaborating a long model stays linear in time
    parser = build_parser()
    args = parser.parse_args(argv)
    from nngraph.dsl.loader import allow_paths  # (the front end: --version and --help do without it)
    try:
        allow_paths(args.allow_path)
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
    except MemoryError:         # the model asks for more than the machine has (say, a 40 GB tensor at run time)
        if args.debug:
            traceback.print_exc()
        print("nngraph: error: out of memory (MemoryError): the model or its data need more memory than this "
              "machine gives; try a smaller batch or smaller inputs", file=sys.stderr)
        return 1
    except Exception as err:    # noqa: BLE001 - the last resort: a bug of ours, never the user's traceback
        if args.debug:
            traceback.print_exc()
        print(f"nngraph: internal error ({type(err).__name__}): this is a bug in nngraph, not in your input; "
              f"please report it with the command line and files that caused it "
              f"(rerun with --debug for the traceback)", file=sys.stderr)
        return 2
    finally:
        allow_paths(None)


def program() -> None:
    """The `nngraph` command (and `python -m nngraph`): main, then exit with its code."""
    code = main()
    # The process ends here, so leave what is alive to the OS: Python's final collection would walk
    # every object of the model (1.6 s after checking 20,000 statements, more than the check itself).
    gc.freeze()
    sys.exit(code)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nngraph", description="A neural-network graph compiler for .nn files.")
    parser.add_argument("--version", action="version", version=f"nngraph {version()}", help="print the version and exit")
    parser.add_argument("--debug", action="store_true", help="on an internal error, print the Python traceback")
    parser.add_argument("--allow-path", action="append", metavar="DIR",
                        help="let models read data files and imports under DIR too (default: only the model "
                             "file's own folder tree; also NNGRAPH_ALLOW_PATH, separated by `:`)")
    subparsers = parser.add_subparsers(required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed
    try:
        return installed("nngraph")
    except PackageNotFoundError:      # (run from a source tree that pip has not installed)
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
