"""Parsing .nn text with Lark into the spanned AST of `nngraph.dsl.ast`: the slow, exact path of
`nngraph.dsl.parser.parse`, taken for text the fast parser leaves (syntax errors above all).

The syntax lives in grammar.lark beside this file. Lark parses it with LALR(1) into a tree with
positions; `_ToAst` turns that tree into AST dataclasses, one method per grammar rule. Every Lark
error becomes an `NNError` that points at the offending token and says, in words, what was
expected there.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.lark import PostLex

from nngraph.diagnostics import NNError, SourceFile, Span, did_you_mean
from nngraph.dsl import ast
from nngraph.dsl.fast_parser import MAX_NESTING
from nngraph.dsl.gc_pause import gc_paused

GRAMMAR = Path(__file__).with_name("grammar.lark")
INT64_MAX = 2**63 - 1


def parse(text: str, path: str) -> ast.Module:
    """Parse by Lark alone: the reference the fast parser is tested against, and every diagnostic."""
    source = SourceFile(path, text)
    try:
        with gc_paused():
            tree = _lark().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, source) from None
    except LarkError as err:     # not expected from a correct grammar, but never leak Lark's types
        raise NNError(f"cannot parse {path}: {err}") from None
    _check_nesting(tree, source)
    try:
        with gc_paused():
            return _ToAst(source).transform(tree)
    except VisitError as err:    # Lark wraps what the transformer raises, NNErrors included
        raise err.orig_exc from None


def _check_nesting(tree, source: SourceFile) -> None:
    """Walks the tree without recursion; the first node deeper than MAX_NESTING is the error."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            meta = node.meta
            span = Span(source, meta.line, meta.column, meta.line, meta.column + 1) if not meta.empty else None
            raise NNError(f"this expression nests more than {MAX_NESTING} levels deep", span,
                          hint="split it over several statements: `a = ...` then use `a`; long sums and "
                               "deeply nested brackets or calls count as nesting")
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


class _PostLexer(PostLex):
    """Drops newlines inside ( ) and [ ], so that long argument lists can wrap, and keeps `true`
    and `false` reserved: the contextual lexer would read them as names where no value fits,
    and `true = 1` would then assign to a name no expression can mention."""
    always_accept = ("_NL",)     # the contextual lexer must see newlines even where none fit

    def process(self, stream):
        depth = 0
        for token in stream:
            if token.type == "NAME" and token.value in ("true", "false"):
                token = Token.new_borrow_pos(token.value.upper(), token.value, token)
            elif token.type in ("LPAR", "LSQB"):
                depth += 1
            elif token.type in ("RPAR", "RSQB"):
                depth = max(depth - 1, 0)
            elif token.type == "_NL" and depth:
                continue
            yield token


@lru_cache(maxsize=None)
def _lark() -> Lark:
    return Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr", lexer="contextual",
                propagate_positions=True, maybe_placeholders=True, postlex=_PostLexer())


def keywords_after() -> dict[str, frozenset[str]]:
    """For the fast parser: after a token of each kind, the keywords Lark's contextual lexer accepts
    (in any LALR state that shifting such a token can lead to). Punctuation by its text, keywords
    by their word, other terminals by name; "ANY" lists every keyword; true and false are left out
    (the post-lexer makes them keywords everywhere)."""
    from lark.parsers.lalr_analysis import Shift
    lark = _lark()
    states = lark.parser.parser.parser.parse_table.states
    words = {t.name: t.pattern.value for t in lark.terminals
             if t.pattern.type == "str" and t.pattern.value.isalpha() and t.name not in ("TRUE", "FALSE")}
    kinds = {t.name: t.pattern.value for t in lark.terminals if t.pattern.type == "str"}
    kinds |= {"_NL": "NL", "TRUE": "TRUE", "FALSE": "FALSE"}
    table: dict[str, set[str]] = {"ANY": set(words.values())}
    for actions in states.values():
        for symbol, (action, target) in actions.items():
            if action is Shift and symbol.lstrip("_").isupper():
                accepted = {words[t] for t in states[target] if t in words}
                if accepted:
                    table.setdefault(kinds.get(symbol, symbol), set()).update(accepted)
    return {kind: frozenset(accepted) for kind, accepted in table.items()}


# ---------------------------------------------------------------- tree -> AST

@v_args(meta=True, inline=True)
class _ToAst(Transformer):
    """One method per grammar rule (or alias); each returns the AST node for that rule."""

    def __init__(self, source: SourceFile):
        super().__init__()
        self.source = source

    def _span(self, at) -> Span:
        """The span of a rule (its Lark meta) or of a token: the same four fields."""
        return Span(self.source, at.line, at.column, at.end_line, at.end_column)

    # ---- a file
    def start(self, meta, *items):
        text = self.source.text
        end_line = text.count("\n") + 1
        end_column = len(text) - (text.rfind("\n") + 1) + 1
        span = Span(self.source, 1, 1, end_line, end_column)
        return ast.Module(self.source.path,
                          imports=[i for i in items if isinstance(i, ast.Import)],
                          layers=[i for i in items if isinstance(i, ast.LayerDef)],
                          models=[i for i in items if isinstance(i, ast.ModelDef)],
                          trains=[i for i in items if isinstance(i, ast.TrainDef)], span=span)

    def import_stmt(self, meta, path):
        return ast.Import(self._unquote(path), span=self._span(meta))

    def layer_def(self, meta, name, cparams, *rest):
        # rest is: the tensor arguments (any number), the result shape or None, the body
        *tparams, result, body = rest
        return ast.LayerDef(name.value, cparams or [], list(tparams), result, body, span=self._span(meta))

    def cparams(self, meta, *cparams):
        return list(cparams)

    def cparam(self, meta, name, type_, default):
        return ast.CParam(name.value, type_.value if type_ else None, default, span=self._span(meta))

    def tparam(self, meta, name, shape):
        return ast.TParam(name.value, shape, span=self._span(meta))

    def model_def(self, meta, name, body):
        return ast.ModelDef(name.value, body, span=self._span(meta))

    def train_def(self, meta, model, *settings):
        return ast.TrainDef(model.value, list(settings), span=self._span(meta))

    def setting(self, meta, name, value):
        return ast.Assign([self._name(name)], value, span=self._span(meta))

    def body(self, meta, *stmts):
        return list(stmts)

    # ---- statements
    def input_decl(self, meta, kind, name, shape):
        return ast.InputDecl(kind.value, name.value, shape, span=self._span(meta))

    def param_decl(self, meta, name, shape, initializer):
        init_kind, init = initializer or (None, None)
        return ast.ParamDecl(name.value, shape, init, init_kind, span=self._span(meta))

    def initializer(self, meta, kind, value):
        return kind.value, value

    def output_decl(self, meta, name, value):
        return ast.OutputDecl(name.value, value, span=self._span(meta))

    def return_stmt(self, meta, *values):
        return ast.Return(list(values), span=self._span(meta))

    def yield_stmt(self, meta, *values):
        return ast.Yield(list(values), span=self._span(meta))

    def scan(self, meta, reverse, over, carries, body):
        sequences, steps = over
        return ast.Scan(reverse is not None, sequences, steps, carries or [], body, span=self._span(meta))

    def scan_stmt(self, meta, scan):
        return ast.Assign([], scan, span=self._span(meta))     # no names: only the carries are kept

    def sequences(self, meta, *items):
        return list(items), None

    def steps(self, meta, count):
        return [], count

    def scan_seq(self, meta, name, sequence):
        return self._name(name), sequence

    def carries(self, meta, *items):
        return list(items)

    def carry(self, meta, name, value):
        return self._name(name), value

    def assign(self, meta, *parts):
        *names, value = parts
        return ast.Assign([self._name(n) for n in names], value, span=self._span(meta))

    # ---- shapes
    def shape(self, meta, *parts):
        *dims, dtype = parts
        return ast.ShapeExpr(list(dims), dtype.value if dtype else None, span=self._span(meta))

    # ---- expressions
    def binop(self, meta, left, op, right):
        return ast.BinOp(op.value, left, right, span=self._span(meta))

    def neg(self, meta, minus, operand):
        return ast.UnaryOp("-", operand, span=self._span(meta))

    def call(self, meta, func, *arguments):
        self._check_keywords_last(arguments)
        args = [a for a in arguments if not isinstance(a, ast.Keyword)]
        kwargs = [a for a in arguments if isinstance(a, ast.Keyword)]
        return ast.Call(func, args, kwargs, span=self._span(meta))

    def subscript(self, meta, base, *items):
        self._check_keywords_last(items)
        return ast.Subscript(base, list(items), span=self._span(meta))

    def attribute(self, meta, base, name):
        return ast.Attribute(base, name.value, span=self._span(meta))

    def keyword(self, meta, name, value):
        return ast.Keyword(name.value, value, span=self._span(meta))

    def slice(self, meta, start, stop, step):
        return ast.Slice(start, stop, step, span=self._span(meta))

    def ellipsis(self, meta):
        return ast.Ellipsis_(span=self._span(meta))

    def name(self, meta, token):
        return self._name(token)

    def number(self, meta, token):
        text = token.value
        is_int = not any(c in text for c in ".eE")
        value = int(text) if is_int and len(text) <= 20 else float(text) if not is_int else None
        if value is None or (is_int and value > INT64_MAX):
            raise NNError(f"the integer {text[:30]}{'...' if len(text) > 30 else ''} does not fit in 64 bits "
                          f"(the largest is {INT64_MAX})", self._span(meta))
        if not is_int and not math.isfinite(value):
            raise NNError(f"the number {text[:30]} is too large for a float", self._span(meta))
        return ast.Number(value, is_int, span=self._span(meta))

    def string(self, meta, token):
        return ast.String(self._unquote(token), span=self._span(meta))

    def true(self, meta):
        return ast.Bool(True, span=self._span(meta))

    def false(self, meta):
        return ast.Bool(False, span=self._span(meta))

    def list_expr(self, meta, *items):
        return ast.ListExpr(list(items), span=self._span(meta))

    def tuple_expr(self, meta, *items):
        return ast.TupleExpr(list(items), span=self._span(meta))

    def paren(self, meta, inner):
        # The parentheses still count in the spans of enclosing nodes: Lark's meta covers them.
        return inner

    # ---- helpers
    def _name(self, token: Token) -> ast.Name:
        return ast.Name(token.value, span=self._span(token))

    def _unquote(self, token: Token) -> str:
        """The value of a STRING token; the grammar guarantees it is one line, quoted."""
        out = []
        body = iter(enumerate(token.value[1:-1], start=token.column + 1))
        for column, char in body:
            if char != "\\":
                out.append(char)
                continue
            _, escaped = next(body)
            if escaped not in _ESCAPES:
                span = Span(self.source, token.line, column, token.line, column + 2)
                raise NNError(f"unknown escape `\\{escaped}` in a string", span,
                              hint="the escapes are \\\" \\\\ \\n \\t; write \\\\ for a backslash")
            out.append(_ESCAPES[escaped])
        return "".join(out)

    def _check_keywords_last(self, arguments):
        seen_keyword = False
        for arg in arguments:
            if isinstance(arg, ast.Keyword):
                seen_keyword = True
            elif seen_keyword:
                raise NNError("a positional argument cannot follow a keyword argument", arg.span,
                              hint="put the positional arguments first")


_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


# ---------------------------------------------------------------- syntax errors

# Known mistakes, recognised by where the parser stopped and which token stopped it.
# Lark's `UnexpectedInput.match_examples` compares the whole parser stack, whose depth depends on
# how many statements came before the mistake, so it misses most real cases; comparing the LALR
# state on top of the stack and the token type is what identifies "the same mistake".
_MISTAKE_EXAMPLES = {
    "param-colon": ["model m {\n param w [2]\n}"],
    "input-equals": ["model m {\n input x = [N]\n}", "model m {\n target x = [N]\n}"],
    "chained-comparison": ["model m {\n y = a < b < c\n}"],
}

_CLOSER = {"(": ")", "[": "]", "{": "}"}

# How terminals are named in messages, besides literal strings (shown as `text`).
_TERMINAL_WORDS = {"NAME": "a name", "NUMBER": "a number", "STRING": "a string",
                   "COMPARE": "a comparison", "_NL": "a newline", "$END": "end of file"}

# Sets of terminals that read better as one word when all (or the key one) are expected.
_EXPRESSION_START = {"NAME", "NUMBER", "STRING", "TRUE", "FALSE", "LPAR", "LSQB", "MINUS"}
_OPERATORS = {"COMPARE", "PLUS", "MINUS", "STAR", "SLASH", "AT", "POW", "LPAR", "LSQB", "DOT"}
_STATEMENT_START = {"INPUT", "TARGET", "PARAM", "OUTPUT", "RETURN", "NAME"}
_STATEMENT_START_IN_SCAN = _STATEMENT_START | {"YIELD", "SCAN"}
_ITEM_START = {"IMPORT", "LAYER", "MODEL", "TRAIN"}
_MAX_EXPECTED = 5
# Closing brackets read first among literal terminals; the rest go alphabetically.
_ORDER = {"RPAR": -3, "RSQB": -3, "RBRACE": -3, "COMMA": -2}


def _syntax_error(err: UnexpectedInput, source: SourceFile) -> NNError:
    if isinstance(err, UnexpectedCharacters):
        return _bad_character(err, source)
    if isinstance(err, UnexpectedEOF) or err.token.type == "$END":
        return _unexpected_end(err, source)
    return _unexpected_token(err, source)


def _bad_character(err: UnexpectedCharacters, source: SourceFile) -> NNError:
    char = source.text[err.pos_in_stream]
    if char == '"':
        line_end = len(source.line(err.line)) + 1
        return NNError("unterminated string", Span(source, err.line, err.column, err.line, line_end),
                       hint='a string must end with `"` on the same line; write \\" for a quote inside it')
    span = Span(source, err.line, err.column, err.line, err.column + 1)
    hint = 'strings use double quotes: "like this"' if char == "'" else None
    return NNError(f"unexpected character `{char}`", span, hint)


def _unexpected_end(err: UnexpectedInput, source: SourceFile) -> NNError:
    # The end of the last line with text on it reads better than an empty line past it.
    text = source.text.rstrip()
    line = text.count("\n") + 1
    column = len(text) - (text.rfind("\n") + 1) + 1
    span = Span(source, line, column, line, column + 1)
    still_open = _open_brackets(source.text, len(source.text))
    if still_open:
        char, open_line, open_column = still_open[-1]
        return NNError(f"unexpected end of file; expected `{_CLOSER[char]}`", span,
                       hint=f"a `{char}` opened at {open_line}:{open_column} is never closed")
    expected = _accepted_before(None, err, source.text)
    return NNError(f"unexpected end of file; expected {_describe_expected(expected or set())}", span)


def _unexpected_token(err: UnexpectedToken, source: SourceFile) -> NNError:
    token = err.token
    if token.type == "_NL":     # the token runs on over blank lines; point at the line's end only
        span = Span(source, token.line, token.column, token.line, token.column + 1)
    else:
        span = Span(source, token.line, token.column, token.end_line, token.end_column)
    mistake = _known_mistakes().get((err.state.position, token.type))
    if mistake:
        return _explain_mistake(mistake, token, span, source)
    what = "newline" if token.type == "_NL" else f"`{token.value}`"
    expected = _accepted_before(token, err, source.text)
    return NNError(f"unexpected {what}; expected {_describe_expected(expected)}", span,
                   hint=_hint_for(token, expected, source))


def _accepted_before(token: Token | None, err: UnexpectedInput, text: str) -> set[str]:
    """The terminals the parser would have taken in place of `token` (None: the end of file).

    LALR reduces on a lookahead before it finds that the lookahead does not fit, so the state in
    `err` may have forgotten that, say, an operator could have continued an expression. Parsing
    again and stopping just before the token asks the state that still remembers.
    """
    parser = _lark().parse_interactive(text)
    try:
        for tok in parser.iter_parse():
            if token is not None and tok.start_pos == token.start_pos:
                return parser.accepts()
    except UnexpectedInput:       # the lexer rejected the token: err was raised before any reduction
        pass
    else:
        if token is None:
            return parser.accepts()
    accepts = err.accepts if isinstance(err, UnexpectedToken) else None
    return set(accepts or getattr(err, "expected", None) or ())


@lru_cache(maxsize=None)
def _known_mistakes() -> dict:
    table = {}
    for label, examples in _MISTAKE_EXAMPLES.items():
        for example in examples:
            try:
                _lark().parse(example)
            except UnexpectedToken as err:
                table[(err.state.position, err.token.type)] = label
            else:
                raise AssertionError(f"the mistake example {example!r} parses")
    return table


def _explain_mistake(label: str, token: Token, span: Span, source: SourceFile) -> NNError:
    if label == "chained-comparison":
        return NNError("comparisons cannot be chained: `a < b < c` is not allowed", span)
    # Show the declaration as it should read, rebuilt from the line: `param w [2, 3]` -> `param w: [2, 3]`.
    line = source.line(token.line)
    keyword, name = re.search(r"(\w+)\s+(\w+)\s*$", line[:token.column - 1]).groups()
    rest = line[token.column - 1:] if label == "param-colon" else line[token.end_column - 1:]
    shape = re.match(r"\s*(\[[^\]]*\](\s+[A-Za-z_]\w*)?)", rest)
    fixed = f"write `{keyword} {name}: {shape.group(1) if shape else '[...]'}`"
    if label == "param-colon":
        return NNError(f"missing `:` between the parameter `{name}` and its shape", span, hint=fixed)
    return NNError(f"{'an input' if keyword == 'input' else 'a target'}'s shape follows `:`, not `=`", span,
                   hint=f"{fixed}; its values come from the data")


def _hint_for(token: Token, expected: set[str], source: SourceFile) -> str | None:
    if token.type == "_NL" and "LBRACE" in expected:
        return "put `{` on the same line as the header"
    if token.type == "NAME":      # a misspelt keyword, such as `modle`
        terminals = {t.name: t for t in _lark().terminals}
        keywords = [terminals[n].pattern.value for n in expected
                    if n in terminals and terminals[n].pattern.value.isalpha()]
        return did_you_mean(token.value, keywords)
    if token.value in (")", "]", "}"):
        still_open = _open_brackets(source.text, token.start_pos)
        if _opener(token.value) not in (char for char, _, _ in still_open):
            return f"this `{token.value}` has no matching `{_opener(token.value)}`"
        char, line, column = still_open[-1]
        if _CLOSER[char] != token.value:
            return f"the `{char}` opened at {line}:{column} is never closed"
    return None


def _opener(closer: str) -> str:
    return next(o for o, c in _CLOSER.items() if c == closer)


def _open_brackets(text: str, end: int) -> list[tuple[str, int, int]]:
    """The brackets still open at offset `end`, innermost last, as (char, line, column)."""
    stack = []
    # Strings (even unterminated ones) and comments are matched whole so their brackets don't count.
    for match in re.finditer(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[()\[\]{}]', text[:end]):
        char = match.group()
        if char in _CLOSER:
            line = text.count("\n", 0, match.start()) + 1
            column = match.start() - text.rfind("\n", 0, match.start())
            stack.append((char, line, column))
        elif char in (")", "]", "}") and stack and _CLOSER[stack[-1][0]] == char:
            stack.pop()
    return stack


def _describe_expected(expected: set[str]) -> str:
    """`{"RPAR", "COMMA"}` -> "`)` or `,`": a few words for what the parser would have taken."""
    expected = set(expected)
    words = []
    if _EXPRESSION_START <= expected:
        expected -= _EXPRESSION_START
        words.append("an expression")
    if _STATEMENT_START <= expected:
        expected -= _STATEMENT_START_IN_SCAN      # `yield` and a bare `scan` start statements too
        words.append("a statement")
    if "STAR" in expected:
        expected -= _OPERATORS
        words.append("an operator")
    if words == ["a statement"] or _ITEM_START <= expected:
        expected -= {"_NL", "SEMICOLON"}     # blank lines are always fine where a statement starts
    if "_NL" in expected:
        expected.discard("SEMICOLON")        # `;` is the rare spelling of a newline
    terminals = {t.name: t for t in _lark().terminals}
    named = sorted((n for n in expected if n in terminals and terminals[n].pattern.type == "str"),
                   key=lambda n: (_ORDER.get(n, 0), terminals[n].pattern.value))
    words += [_TERMINAL_WORDS[n] for n in ("NAME", "NUMBER", "STRING", "COMPARE", "_NL") if n in expected]
    words += [f"`{terminals[n].pattern.value}`" for n in named]
    words += [_TERMINAL_WORDS["$END"]] if "$END" in expected else []
    words = words[:_MAX_EXPECTED]
    if not words:
        return "something else"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]

