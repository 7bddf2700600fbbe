"""What several commands share: argument types, the backend options, usage errors."""
from __future__ import annotations

import argparse

from nngraph import runtime


def add_backend_arguments(parser, several_machines: bool = False) -> None:
    parser.add_argument("--backend", choices=list(runtime.KNOWN), default="numpy",
                        help="what executes the model: numpy (default, built in), jax (XLA on CPU or GPU; "
                             "pip install 'nngraph[jax]'), onnxruntime (pip install 'nngraph[onnxruntime]')")
    parser.add_argument("--devices", type=device_count, metavar="N|all",
                        help="with --backend jax: split each batch over N devices (or all of them)")
    if several_machines:
        parser.add_argument("--coordinator", metavar="HOST:PORT",
                            help="with --backend jax: train on several machines; the address of process 0")
        parser.add_argument("--num-processes", type=positive_int, metavar="P", help="how many processes in all")
        parser.add_argument("--process-id", type=int, metavar="I", help="this process's number, 0 to P-1")


def backend_from(args):
    """The backend the command-line asked for, made with its options."""
    options = {}
    if args.devices is not None:
        options["devices"] = args.devices
    distributed = [getattr(args, k, None) for k in ("coordinator", "num_processes", "process_id")]
    if any(v is not None for v in distributed):
        if None in distributed:
            raise UsageError("--coordinator, --num-processes and --process-id go together")
        if not 0 <= args.process_id < args.num_processes:
            raise UsageError(f"--process-id must be between 0 and {args.num_processes - 1}")
        options |= dict(zip(("coordinator", "num_processes", "process_id"), distributed))
    if options and args.backend != "jax":
        raise UsageError(f"--{next(iter(options)).replace('_', '-')} needs --backend jax")
    return runtime.get(args.backend, **options)


class UsageError(Exception):
    """A bad combination of command-line options: exit code 2, like argparse's own errors."""


def device_count(text: str):
    return "all" if text == "all" else positive_int(text)


def trainable_list(text: str) -> list[str]:
    """--trainable W1,fc.*: names or fnmatch patterns of an ONNX model's float initializers."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated initializer names or patterns")
    return names


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def unit_float(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value
