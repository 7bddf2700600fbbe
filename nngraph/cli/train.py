"""`nngraph train MODEL`: train from the model's `train` block on any backend."""
from __future__ import annotations

from nngraph.api import load
from nngraph.cli.common import add_backend_arguments, backend_from, positive_float, positive_int
from nngraph.files import save_npz


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="train a model from its `train` block")
    train.add_argument("model", metavar="MODEL.nn")
    train.add_argument("--epochs", type=positive_int)
    train.add_argument("--lr", type=positive_float)
    train.add_argument("--batch", type=positive_int)
    train.add_argument("--seed", type=int)
    train.add_argument("-o", "--output", metavar="PARAMS.npz", help="where to write the trained weights")
    train.add_argument("--model-name")
    add_backend_arguments(train, several_machines=True)
    train.set_defaults(command=run)


def run(args) -> int:
    model = load(args.model, args.model_name)
    backend = backend_from(args)
    result = model.train(epochs=args.epochs, lr=args.lr, batch=args.batch, seed=args.seed, backend=backend)
    if not getattr(backend, "is_main_process", True):
        return 0                  # several machines: process 0 reports and writes the weights
    print(f"model {model.name}: {result.summary()}")
    if args.output:
        save_npz(args.output, result.params)
        print(f"wrote {len(result.params)} parameters to {args.output}")
    return 0
