"""The tokens of .nn text for the fast parser (fast_parser.py), as Lark's contextual lexer would
produce them for the grammar in grammar.lark wherever they fit the grammar, and the table that says
where Lark would read a word as a keyword."""
from __future__ import annotations

import re


class Fallback(Exception):
    """Something the fast parser leaves to Lark: a syntax error, or a case it does not handle."""


# Kept in the order Lark's lexer tries terminals (longest patterns first), so that where a token
# fits the grammar it is the token Lark's contextual lexer would have produced.
_TOKEN = re.compile(
    r'[\t \f]*(?:'
    r'(#[^\n]*)'                                        # 1 comment
    r'|((?:\r?\n[\t \f]*)+)'                            # 2 line ends
    r'|([A-Za-z_][A-Za-z0-9_]*)'                        # 3 word
    r'|((?:\d+\.\d+|\.\d+|\d+)(?:[eE][+-]?\d+)?)'       # 4 number
    r'|("(?:[^"\\\n]|\\.)*")'                           # 5 string
    r'|(<=|>=|==|!=|<|>)'                               # 6 comparison
    r'|(\*\*|\.\.\.|->|[=+\-*/@()\[\]{},:;.~])'         # 7 punctuation
    r')')
_WORD_KIND = {"true": "TRUE", "false": "FALSE"}
# The keywords Lark's contextual lexer may read, after a token of each kind, in place of a name:
# its LALR states merge contexts, so after a line end `model` is a keyword even inside a model's
# body. Where the fast parser reads a word as a name and Lark could read it as a keyword, Lark
# decides. Generated from the grammar by `nngraph.dsl.lark_parser.keywords_after()`; a test checks that
# the two agree. "ANY" lists every keyword.
_ITEM_WORDS = frozenset({"import", "layer", "model", "train"})
_STATEMENT_WORDS = frozenset({"input", "target", "param", "output", "return", "yield", "scan"})
KEYWORDS_AFTER = {
    ")": frozenset({"carry", "steps"}),
    ",": frozenset({"carry"}),
    ";": _ITEM_WORDS | _STATEMENT_WORDS,
    "=": frozenset({"scan"}),
    "ANY": _ITEM_WORDS | _STATEMENT_WORDS | frozenset({"carry", "in", "reverse", "steps"}),
    "FALSE": frozenset({"carry", "steps"}),
    "NAME": frozenset({"carry", "in", "steps"}),
    "NL": _ITEM_WORDS | _STATEMENT_WORDS,
    "NUMBER": frozenset({"carry", "steps"}),
    "STRING": frozenset({"carry", "steps"}),
    "TRUE": frozenset({"carry", "steps"}),
    "]": frozenset({"carry", "steps"}),
    "scan": frozenset({"reverse"}),
    "steps": frozenset({"carry"}),
    "{": _STATEMENT_WORDS,
}


def tokenize(text: str) -> list[tuple]:
    """(kind, value, line, column, end_column) per token; kind is NAME, NUMBER, STRING, TRUE, FALSE,
    COMPARE, NL, EOF or the punctuation itself. Line ends inside ( ) and [ ] are dropped, as the
    grammar's post-lexer does."""
    toks: list[tuple] = []
    append = toks.append
    match = _TOKEN.match
    pos, line, line_start, depth = 0, 1, 0, 0
    while True:
        m = match(text, pos)
        if m is None:
            if text[pos:].strip(" \t\f"):
                raise Fallback("a character no token starts with")
            break
        pos = m.end()
        group = m.lastindex
        if group == 1:
            continue
        start = m.start(group)
        if group == 2:
            if not depth:
                append(("NL", None, line, start - line_start + 1, 0))
            value = m.group(2)
            line += value.count("\n")
            line_start = start + value.rindex("\n") + 1
            continue
        value = m.group(group)
        column = start - line_start + 1
        if group == 3:
            kind = _WORD_KIND.get(value, "NAME")
        elif group == 7:
            kind = value
            if value in "([":
                depth += 1
            elif value in ")]" and depth:
                depth -= 1
        else:
            kind = ("NUMBER", "STRING", "COMPARE")[group - 4]
        append((kind, value, line, column, column + len(value)))
    append(("EOF", "", line, pos - line_start + 1, pos - line_start + 1))
    return toks
