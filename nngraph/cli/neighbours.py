"""`nngraph neighbours MODEL --word W`: nearest words by cosine similarity (word2vec)."""
from __future__ import annotations

from nngraph.cli.common import positive_int


def register(subparsers) -> None:
    near = subparsers.add_parser("neighbours", aliases=["neighbors"],
                          help="the nearest words to a word by cosine similarity (a model trained with skipgram data)")
    near.add_argument("model", metavar="MODEL.nn", help="a word2vec model file (trained on skipgram data)")
    near.add_argument("--params", metavar="PARAMS.npz", required=True, help="weights from `nngraph train`")
    near.add_argument("--word", required=True, action="append", help="a word of the corpus (repeatable)")
    near.add_argument("-k", type=positive_int, default=5, help="how many neighbours (default 5)")
    near.add_argument("--model-name", help="which model of the file (default: the one with a train block)")
    near.set_defaults(command=run)


def run(args) -> int:
    # The compiler is imported when a command runs: `nngraph --version` and `--help` do without it.
    from nngraph.api import load
    from nngraph.files import load_npz
    model = load(args.model, args.model_name)
    params = load_npz(args.params)
    for word in args.word:
        found = model.neighbours(params, word, args.k)
        print(f"{word}: " + ", ".join(f"{w} {cos:.3f}" for w, cos in found))
    return 0
