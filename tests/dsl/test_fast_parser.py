"""The hand-written fast parser (dsl/fast_parser.py) against Lark's parse of the same grammar: equal
ASTs, spans included, or it leaves the text to Lark. Lark's diagnostics are tested in test_diagnostics.py."""
from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from nngraph.diagnostics import NNError, Span
from nngraph.dsl import lark_parser, parser
from nngraph.dsl.fast_lexer import KEYWORDS_AFTER, Fallback
from nngraph.dsl.fast_parser import parse_fast
from tests.fuzz.mutations import mutate_nn

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "models").glob("*.nn")) + sorted((ROOT / "dsl" / "stdlib").glob("*.nn")) + \
    sorted((ROOT / "bench" / "models").glob("*.nn"))


def dump(node):
    """Everything the AST holds, spans (which AST equality ignores) included."""
    if isinstance(node, Span):
        return ("span", node.line, node.column, node.end_line, node.end_column)
    if dataclasses.is_dataclass(node):
        return (type(node).__name__,) + tuple(dump(getattr(node, f.name)) for f in dataclasses.fields(node))
    if isinstance(node, (list, tuple)):
        return tuple(dump(item) for item in node)
    return node


def by_lark(text: str):
    try:
        return dump(parser.parse_with_lark(text, "case.nn"))
    except NNError as err:
        return ("error", err.message)


def by_fast(text: str):
    try:
        return dump(parse_fast(text, "case.nn", parser.MAX_NESTING))
    except Fallback:
        return None


def test_the_keyword_table_matches_the_grammar():
    assert lark_parser.keywords_after() == KEYWORDS_AFTER


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_files_parse_fast_to_the_same_tree(path):
    text = path.read_text(encoding="utf-8")
    fast = by_fast(text)
    assert fast is not None, "a shipped file should not need the slow path"
    assert fast == by_lark(text)


CASES = [
    "",
    "\n\n# only a comment\n",
    "model m {\n model = 3\n output y = model\n}",              # `model` is a keyword after a line end
    "model m { target = 1; y = target }",
    "model m {\n input target: [N]\n output y = target * 2\n}",
    "layer f(target: [..., n] int, input) -> [n] { return target[..., 0:2:-1] + input[:, 1:] }",
    "layer g[a: int, b = (1, 2), c = [1, 2,], d = -x ** -2](x,) { return f(x, a = 1)(x)[a = 2].w }\n",
    "model m {\n h, c = scan reverse x in xs, y in ys, carry (h = 0, c = (1,)) {\n h = h + x\n yield h, c\n}\n}",
    "model m {\n scan 10 steps carry (h = 0) { h = h }\n s = scan n * 2 steps { yield 1 }\n}",
    "model m {\n s = scan in in xs { yield in }\n t = scan steps steps { yield steps }\n}",
    "model m {\n s = scan reverse in xs { yield 1 }\n}",
    "model m {\n param w: [2, 3] float ~ normal(std = 0.1)\n param b: [3] = 0\n output y\n output z = (a < b)\n}",
    "model m {\n y = a < b < c\n}",
    "model m {\n x = f(a = 1, 2)\n}",
    "model m {\n x = \"a\\qb\"\n}",
    "model m {\n x = \"a\\\"b\\n\"\n}",
    "model m {\n x = 99999999999999999999 + 00000000000000000001 + 1e400 + .5 + 1.5e-3\n}",
    "model m {\n x = f(a,\n   b)\n y = [1,\n 2]\n}\r\n",
    "train m {\n epochs = 3; batch = 4\n optimizer = adam(lr = 1e-3)\n}\ntrain m { output = 1 }",
    "import \"x.nn\"\nimport \"y.nn\"; model m { }",
    "model m {} model n {}",
    "model m {\n x = a.b.c(d)[e](f)\n y = -(-(-x))\n z = ((x))\n w = x[...]\n v = x[::]\n u = x[1:]\n}",
    "model m {\n x = f(carry)\n y = g(a, carry)\n}",
    "model m {\n x = " + "(" * 60 + "1" + ")" * 60 + "\n}",
    "model m {\n x = " + " + ".join(["a"] * 200) + "\n}",
    "model m {\n x = " + "-" * 300 + "1\n}",
    "model m {\n x = 1 \\ 2\n}",
    "model m {\n x = 'a'\n}",
]


@pytest.mark.parametrize("text", CASES)
def test_hand_picked_cases_agree_or_fall_back(text):
    fast = by_fast(text)
    assert fast is None or fast == by_lark(text)


def test_mutated_models_agree_or_fall_back():
    """Mutations of the shipped models (deleted, swapped, repeated tokens, keywords dropped in,
    deep nesting): wherever the fast parser gives a tree, Lark gives the same one."""
    rng = random.Random(18)
    texts = [p.read_text(encoding="utf-8") for p in SHIPPED]
    agreed = fell_back = 0
    for _ in range(600):
        text = mutate_nn(rng.choice(texts), rng)
        if len(text) > 50_000:        # the long-file mutations: slow in Lark, and nothing new
            continue
        fast = by_fast(text)
        if fast is None:
            fell_back += 1
            continue
        assert fast == by_lark(text), text
        agreed += 1
    assert agreed > 100 and fell_back > 100      # both paths were exercised


def test_parse_uses_lark_for_errors():
    with pytest.raises(NNError) as err:
        parser.parse("model m {\n y = a < b < c\n}", "case.nn")
    assert err.value.message == "comparisons cannot be chained: `a < b < c` is not allowed"
