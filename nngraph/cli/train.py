"""`nngraph train MODEL`: train from the model's `train` block on any backend, with a log per
epoch, checkpoints and exact resume; the weights file carries the class names of the labels."""
from __future__ import annotations

from nngraph.cli.common import add_backend_arguments, backend_from, positive_float, positive_int


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="train a model from its `train` block")
    train.add_argument("model", metavar="MODEL.nn", help="the model file (its `train` block names the data)")
    train.add_argument("--epochs", type=positive_int, help="how many epochs in all (a resumed run counts those done)")
    train.add_argument("--lr", type=positive_float, help="the learning rate (default: the optimizer's in the train block)")
    train.add_argument("--batch", type=positive_int, help="rows per mini-batch (default: the train block's, else all)")
    train.add_argument("--seed", type=int, help="the seed for initial weights, shuffling and the held-out split")
    train.add_argument("-o", "--output", metavar="PARAMS.npz",
                       help="where to write the trained weights (with the class names of the labels)")
    train.add_argument("--log", metavar="LOG.jsonl|LOG.csv",
                       help="write one record per epoch: loss, held-out loss and metrics, learning rate, seconds")
    train.add_argument("--checkpoint", metavar="DIR",
                       help="write checkpoints (parameters, optimizer state, epoch, RNG state) to DIR/epoch-NNNNN.npz")
    train.add_argument("--checkpoint-every", type=positive_int, default=1, metavar="N",
                       help="with --checkpoint: every N epochs (default 1)")
    train.add_argument("--resume", metavar="CKPT",
                       help="continue from a checkpoint file (or the newest in a checkpoint folder) to --epochs in all")
    train.add_argument("--model-name", help="which model of the file (default: the one with a train block)")
    add_backend_arguments(train, several_machines=True)
    train.set_defaults(command=run)


def run(args) -> int:
    # The compiler is imported when a command runs: `nngraph --version` and `--help` do without it.
    from nngraph.api import load
    from nngraph.files import save_weights
    model = load(args.model, args.model_name)
    backend = backend_from(args)
    result = model.train(epochs=args.epochs, lr=args.lr, batch=args.batch, seed=args.seed, backend=backend,
                         log=args.log, checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every,
                         resume=args.resume)
    if not getattr(backend, "is_main_process", True):
        return 0                  # several machines: process 0 reports and writes the weights
    print(f"model {model.name}: {result.summary()}")
    if args.output:
        save_weights(args.output, result.params, {"model": model.name, "classes": result.classes})
        print(f"wrote {len(result.params)} parameters to {args.output}")
    return 0
