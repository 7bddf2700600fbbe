"""Parsing .nn text into the spanned AST of `nngraph.dsl.ast`.

Two parsers read the grammar in grammar.lark. The hand-written one in fast_parser.py reads valid
files, several times faster than Lark and without loading it; whatever it leaves (a syntax error
above all, or nesting near the limit) goes to Lark (lark_parser.py), whose diagnostics point at the
offending token and say what was expected there. On valid text both give the same AST and spans
(tests/dsl/test_fast_parser.py).
"""
from __future__ import annotations

from nngraph.dsl import ast
from nngraph.dsl.fast_lexer import Fallback
from nngraph.dsl.fast_parser import MAX_NESTING, parse_fast
from nngraph.dsl.gc_pause import gc_paused

__all__ = ["MAX_NESTING", "parse", "parse_with_lark"]


def parse(text: str, path: str) -> ast.Module:
    """Parse the text of one .nn file; `path` names it in spans and in the Module."""
    try:
        with gc_paused():
            return parse_fast(text, path, MAX_NESTING)
    except Fallback:
        return parse_with_lark(text, path)


def parse_with_lark(text: str, path: str) -> ast.Module:
    """`parse` by Lark alone (imported only when needed: building its parser takes some 0.3 s)."""
    from nngraph.dsl import lark_parser
    return lark_parser.parse(text, path)
