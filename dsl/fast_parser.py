"""The fast path of `nngraph.dsl.parser.parse`: a hand-written recursive-descent parser for the
grammar in grammar.lark that goes from tokens straight to the AST, with the spans Lark gives.

Lark's LALR parser builds a parse tree with positions that a transformer then turns into the AST:
about 0.25 ms per statement, 5 s for a 20,000-line model, and most of a CLI call's parse of the
standard library. This parser does the same about 7 times faster. It only has to be right on
valid input: at anything unexpected (a syntax error, a number too large, a bad escape, nesting
near the limit) it raises `Fallback` and the caller runs Lark, whose diagnostics are the ones users
see and the tests check. tests/dsl/test_fast_parser.py checks that both give equal ASTs, spans
included, on every shipped file and on hundreds of mutated ones.

Keywords are contextual, as with Lark's contextual lexer: a word is a keyword where the grammar
can take that keyword and a name elsewhere; where both fit (`input` at the start of a statement,
`reverse` after `scan`, `scan` after `=`), the keyword wins. `true` and `false` are always keywords.
"""
from __future__ import annotations

import math

from nngraph.diagnostics import SourceFile, Span
from nngraph.dsl import ast
from nngraph.dsl.fast_lexer import KEYWORDS_AFTER, Fallback, tokenize

# Deeper syntax trees than this are refused with a diagnostic: the tree -> AST transform and the
# elaborator recurse once per level, and Python's stack is finite. Real models nest a dozen levels;
# a sum of 150 terms, 150 parentheses or 150 calls inside each other is already past the limit.
# (Measured on Lark's tree, which lark_parser.py checks; the fast parser leaves deep text to it.)
MAX_NESTING = 150

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
_EXPR_START = frozenset({"NAME", "NUMBER", "STRING", "TRUE", "FALSE", "(", "[", "-"})
_INT64_MAX = 2**63 - 1
# How deep the parser itself may recurse (brackets, calls and unary minus inside each other) before
# it leaves the text to Lark; real models nest a dozen levels.
_MAX_RECURSION = 40


def parse_fast(text: str, path: str, max_nesting: int = MAX_NESTING) -> ast.Module:
    """The AST of `text`, or `Fallback` where Lark has to decide (and explain)."""
    try:
        return _Parser(text, path, max_nesting).module()
    except (Fallback, RecursionError):
        raise Fallback from None
    except (IndexError, ValueError, OverflowError) as err:   # e.g. running past EOF on odd input
        raise Fallback(str(err)) from None


class _Parser:
    def __init__(self, text: str, path: str, max_nesting: int):
        self.source = SourceFile(path, text)
        self.toks = tokenize(text)
        self.i = 0
        self.recursion = 0
        # Lark's tree has a few levels above an expression (file, item, body, statement); a margin
        # on top: nesting close to the limit is left to Lark's exact check and its message.
        self.max_depth = max_nesting - 8

    # ---- tokens
    def span(self, first: int, last: int) -> Span:
        a, b = self.toks[first], self.toks[last]
        return Span(self.source, a[2], a[3], b[2], b[4])

    def expect(self, kind: str) -> int:
        i = self.i
        if self.toks[i][0] != kind:
            raise Fallback(kind)
        self.i = i + 1
        return i

    def take_name(self) -> int:
        """A word read as a name: where Lark's contextual lexer could read it as a keyword, Lark decides."""
        i = self.i
        tok = self.toks[i]
        if tok[0] != "NAME" or (tok[1] in KEYWORDS_AFTER["ANY"] and tok[1] in KEYWORDS_AFTER.get(self.kind_before(i), ())):
            raise Fallback("a name")
        self.i = i + 1
        return i

    def kind_before(self, i: int) -> str:
        """The kind of token i - 1, keywords by their word (as KEYWORDS_AFTER is keyed)."""
        kind, value = self.toks[i - 1][:2] if i else ("START", None)
        return value if kind == "NAME" and value in KEYWORDS_AFTER["ANY"] else kind

    def keyword(self, word: str) -> int:
        i = self.i
        tok = self.toks[i]
        if tok[0] != "NAME" or tok[1] != word:
            raise Fallback(word)
        self.i = i + 1
        return i

    def is_word(self, word: str, offset: int = 0) -> bool:
        tok = self.toks[self.i + offset]
        return tok[0] == "NAME" and tok[1] == word

    def skip_separators(self) -> bool:
        toks, i = self.toks, self.i
        while toks[i][0] in ("NL", ";"):
            i += 1
        skipped = i != self.i
        self.i = i
        return skipped

    def check_depth(self, depth: int, base: int) -> None:
        if depth + base > self.max_depth:
            raise Fallback("nesting")

    # ---- a file
    def module(self) -> ast.Module:
        imports, layers, models, trains = [], [], [], []
        self.skip_separators()
        while self.toks[self.i][0] != "EOF":
            tok = self.toks[self.i]
            word = tok[1] if tok[0] == "NAME" else None
            if word == "import":
                imports.append(self.import_stmt())
            elif word == "layer":
                layers.append(self.layer_def())
            elif word == "model":
                models.append(self.model_def())
            elif word == "train":
                trains.append(self.train_def())
            else:
                raise Fallback("an item")
            if not self.skip_separators() and self.toks[self.i][0] != "EOF":
                raise Fallback("a separator")
        text = self.source.text
        end = Span(self.source, 1, 1, text.count("\n") + 1, len(text) - (text.rfind("\n") + 1) + 1)
        return ast.Module(self.source.path, imports=imports, layers=layers, models=models, trains=trains, span=end)

    def import_stmt(self) -> ast.Import:
        first = self.keyword("import")
        last = self.expect("STRING")
        return ast.Import(self.unquote(self.toks[last][1]), span=self.span(first, last))

    def layer_def(self) -> ast.LayerDef:
        first = self.keyword("layer")
        name = self.toks[self.take_name()][1]
        cparams = []
        if self.toks[self.i][0] == "[":
            self.i += 1
            cparams = self.comma_list(self.cparam, "]", allow_empty=True)
            self.expect("]")
        self.expect("(")
        tparams = self.comma_list(self.tparam, ")", allow_empty=True)
        self.expect(")")
        result = None
        if self.toks[self.i][0] == "->":
            self.i += 1
            result, _ = self.shape(3)
        body, last = self.body(4)
        return ast.LayerDef(name, cparams, tparams, result, body, span=self.span(first, last))

    def cparam(self) -> ast.CParam:
        first = last = self.take_name()
        type_ = default = None
        if self.toks[self.i][0] == ":":
            self.i += 1
            last = self.take_name()
            type_ = self.toks[last][1]
        if self.toks[self.i][0] == "=":
            self.i += 1
            default, _, last, depth = self.expr()
            self.check_depth(depth, 4)
        return ast.CParam(self.toks[first][1], type_, default, span=self.span(first, last))

    def tparam(self) -> ast.TParam:
        first = last = self.take_name()
        shape = None
        if self.toks[self.i][0] == ":":
            self.i += 1
            shape, last = self.shape(4)
        return ast.TParam(self.toks[first][1], shape, span=self.span(first, last))

    def model_def(self) -> ast.ModelDef:
        first = self.keyword("model")
        name = self.toks[self.take_name()][1]
        body, last = self.body(4)
        return ast.ModelDef(name, body, span=self.span(first, last))

    def train_def(self) -> ast.TrainDef:
        first = self.keyword("train")
        model = self.toks[self.take_name()][1]
        self.expect("{")
        settings = []
        self.skip_separators()
        while self.toks[self.i][0] != "}":
            name = self.take_name()
            self.expect("=")
            value, _, last, depth = self.expr()
            self.check_depth(depth, 4)
            settings.append(ast.Assign([self.name_of(name)], value, span=self.span(name, last)))
            if not self.skip_separators() and self.toks[self.i][0] != "}":
                raise Fallback("a separator")
        last = self.expect("}")
        return ast.TrainDef(model, settings, span=self.span(first, last))

    # ---- statements
    def body(self, base: int) -> tuple[list[ast.Stmt], int]:
        """`{ statements }`; `base` is how deep its statements sit in Lark's tree."""
        self.expect("{")
        stmts = []
        self.skip_separators()
        toks = self.toks
        while toks[self.i][0] != "}":
            stmts.append(self.statement(base))
            if not self.skip_separators() and toks[self.i][0] != "}":
                raise Fallback("a separator")
        return stmts, self.expect("}")

    def statement(self, base: int) -> ast.Stmt:
        tok = self.toks[self.i]
        if tok[0] != "NAME":
            raise Fallback("a statement")
        word = tok[1]
        if word == "input" or word == "target":
            return self.input_decl(base)
        if word == "param":
            return self.param_decl(base)
        if word == "output":
            return self.output_decl(base)
        if word == "return" or word == "yield":
            return self.results(word, base)
        if word == "scan":
            scan, first, last = self.scan(base)
            return ast.Assign([], scan, span=self.span(first, last))
        return self.assign(base)

    def input_decl(self, base: int) -> ast.InputDecl:
        first = self.i
        self.i += 1
        name = self.toks[self.take_name()][1]
        self.expect(":")
        shape, last = self.shape(base + 1)
        return ast.InputDecl(self.toks[first][1], name, shape, span=self.span(first, last))

    def param_decl(self, base: int) -> ast.ParamDecl:
        first = self.keyword("param")
        name = self.toks[self.take_name()][1]
        self.expect(":")
        shape, last = self.shape(base + 1)
        init = kind = None
        if self.toks[self.i][0] in ("~", "="):
            kind = self.toks[self.i][0]
            self.i += 1
            init, _, last, depth = self.expr()
            self.check_depth(depth, base + 1)
        return ast.ParamDecl(name, shape, init, kind, span=self.span(first, last))

    def output_decl(self, base: int) -> ast.OutputDecl:
        first = self.keyword("output")
        last = self.take_name()
        value = None
        if self.toks[self.i][0] == "=":
            self.i += 1
            value, _, last, depth = self.expr()
            self.check_depth(depth, base)
        return ast.OutputDecl(self.toks[first + 1][1], value, span=self.span(first, last))

    def results(self, word: str, base: int) -> ast.Stmt:
        first = self.i
        self.i += 1
        values = []
        while True:
            value, _, last, depth = self.expr()
            self.check_depth(depth, base)
            values.append(value)
            if self.toks[self.i][0] != ",":
                break
            self.i += 1
        cls = ast.Return if word == "return" else ast.Yield
        return cls(values, span=self.span(first, last))

    def assign(self, base: int) -> ast.Assign:
        first = self.i
        names = [self.name_of(self.take_name())]
        while self.toks[self.i][0] == ",":
            self.i += 1
            names.append(self.name_of(self.take_name()))
        self.expect("=")
        if self.is_word("scan"):
            value, _, last = self.scan(base)
        else:
            value, _, last, depth = self.expr()
            self.check_depth(depth, base)
        return ast.Assign(names, value, span=self.span(first, last))

    def scan(self, base: int) -> tuple[ast.Scan, int, int]:
        first = self.keyword("scan")
        inner = base + 3            # scan, its body, its statements: three more levels in Lark's tree
        reverse = self.is_word("reverse")
        if reverse:
            self.i += 1
        sequences, steps = [], None
        if self.toks[self.i][0] == "NAME" and self.is_word("in", 1):
            while True:
                name = self.name_of(self.take_name())
                self.keyword("in")
                sequence, _, _, depth = self.expr()
                self.check_depth(depth, inner)
                sequences.append((name, sequence))
                if self.toks[self.i][0] != ",":
                    break
                self.i += 1
                if self.is_word("carry") or self.toks[self.i][0] == "{":    # a trailing comma
                    break
        else:
            steps, _, _, depth = self.expr()
            self.check_depth(depth, inner)
            self.keyword("steps")
        carries = []
        if self.is_word("carry"):
            self.i += 1
            self.expect("(")
            carries = self.comma_list(lambda: self.carry_item(inner), ")", allow_empty=False)
            self.expect(")")
        body, last = self.body(inner)
        return ast.Scan(reverse, sequences, steps, carries, body, span=self.span(first, last)), first, last

    def carry_item(self, base: int) -> tuple[ast.Name, ast.Expr]:
        name = self.name_of(self.take_name())
        self.expect("=")
        value, _, _, depth = self.expr()
        self.check_depth(depth, base)
        return name, value

    # ---- shapes
    def shape(self, base: int) -> tuple[ast.ShapeExpr, int]:
        first = self.expect("[")
        dims = self.comma_list(lambda: self.dim(base + 1), "]", allow_empty=True)
        last = self.expect("]")
        dtype = None
        if self.toks[self.i][0] == "NAME":        # `[N] int`: after a shape, a word is its dtype
            last = self.take_name()
            dtype = self.toks[last][1]
        return ast.ShapeExpr(dims, dtype, span=self.span(first, last)), last

    def dim(self, base: int) -> ast.Expr:
        if self.toks[self.i][0] == "...":
            i = self.i
            self.i += 1
            return ast.Ellipsis_(span=self.span(i, i))
        value, _, _, depth = self.expr()
        self.check_depth(depth, base)
        return value

    # ---- helpers
    def comma_list(self, item, closer: str, allow_empty: bool) -> list:
        """`item ("," item)* ","?`, ending before `closer` (which the caller then expects)."""
        items = []
        toks = self.toks
        if toks[self.i][0] == closer and allow_empty:
            return items
        while True:
            items.append(item())
            if toks[self.i][0] != ",":
                return items
            self.i += 1
            if toks[self.i][0] == closer:
                return items

    def name_of(self, i: int) -> ast.Name:
        tok = self.toks[i]
        return ast.Name(tok[1], span=Span(self.source, tok[2], tok[3], tok[2], tok[4]))

    def unquote(self, quoted: str) -> str:
        body = quoted[1:-1]
        if "\\" not in body:
            return body
        out, chars = [], iter(body)
        for char in chars:
            if char == "\\":
                escaped = next(chars)
                if escaped not in _ESCAPES:
                    raise Fallback("an unknown escape")
                char = _ESCAPES[escaped]
            out.append(char)
        return "".join(out)

    # ---- expressions: each returns (node, first token, last token, depth in Lark's tree)
    def expr(self) -> tuple:
        left = self.sum()
        tok = self.toks[self.i]
        if tok[0] != "COMPARE":
            return left
        self.i += 1
        right = self.sum()
        if self.toks[self.i][0] == "COMPARE":
            raise Fallback("a chained comparison")
        return (ast.BinOp(tok[1], left[0], right[0], span=self.span(left[1], right[2])),
                left[1], right[2], max(left[3], right[3]) + 1)

    def sum(self) -> tuple:
        left = self.product()
        toks = self.toks
        while toks[self.i][0] in ("+", "-"):
            op = toks[self.i][1]
            self.i += 1
            right = self.product()
            left = (ast.BinOp(op, left[0], right[0], span=self.span(left[1], right[2])),
                    left[1], right[2], max(left[3], right[3]) + 1)
        return left

    def product(self) -> tuple:
        left = self.unary()
        toks = self.toks
        while toks[self.i][0] in ("*", "/", "@"):
            op = toks[self.i][1]
            self.i += 1
            right = self.unary()
            left = (ast.BinOp(op, left[0], right[0], span=self.span(left[1], right[2])),
                    left[1], right[2], max(left[3], right[3]) + 1)
        return left

    def unary(self) -> tuple:
        self.recursion += 1
        if self.recursion > _MAX_RECURSION:
            raise Fallback("nesting")
        try:
            if self.toks[self.i][0] == "-":
                first = self.i
                self.i += 1
                operand = self.unary()
                return (ast.UnaryOp("-", operand[0], span=self.span(first, operand[2])),
                        first, operand[2], operand[3] + 1)
            base = self.postfix()
            if self.toks[self.i][0] != "**":
                return base
            self.i += 1
            exponent = self.unary()
            return (ast.BinOp("**", base[0], exponent[0], span=self.span(base[1], exponent[2])),
                    base[1], exponent[2], max(base[3], exponent[3]) + 1)
        finally:
            self.recursion -= 1

    def postfix(self) -> tuple:
        node, first, last, depth = self.atom()
        toks = self.toks
        while True:
            kind = toks[self.i][0]
            if kind == "(":
                self.i += 1
                args = self.comma_list(self.argument, ")", allow_empty=True)
                last = self.expect(")")
                depth = max([depth] + [a[1] for a in args]) + 1
                node = self.make_call(node, [a[0] for a in args], first, last)
            elif kind == "[":
                self.i += 1
                items = self.comma_list(self.index, "]", allow_empty=False)
                last = self.expect("]")
                depth = max([depth] + [a[1] for a in items]) + 1
                node = ast.Subscript(node, self.keywords_last([a[0] for a in items]), span=self.span(first, last))
            elif kind == ".":
                self.i += 1
                last = self.take_name()
                depth += 1
                node = ast.Attribute(node, toks[last][1], span=self.span(first, last))
            else:
                return node, first, last, depth

    def make_call(self, func, arguments: list, first: int, last: int) -> ast.Call:
        self.keywords_last(arguments)
        args = [a for a in arguments if not isinstance(a, ast.Keyword)]
        kwargs = [a for a in arguments if isinstance(a, ast.Keyword)]
        return ast.Call(func, args, kwargs, span=self.span(first, last))

    @staticmethod
    def keywords_last(arguments: list) -> list:
        seen_keyword = False
        for arg in arguments:
            if isinstance(arg, ast.Keyword):
                seen_keyword = True
            elif seen_keyword:
                raise Fallback("a positional argument after a keyword argument")
        return arguments

    def argument(self) -> tuple:
        """(node, depth): an expression, or a keyword argument `name = value`."""
        if self.toks[self.i][0] == "NAME" and self.toks[self.i + 1][0] == "=":
            return self.keyword_argument()
        node, _, _, depth = self.expr()
        return node, depth

    def keyword_argument(self) -> tuple:
        first = self.take_name()
        self.i += 1
        value, _, last, depth = self.expr()
        return ast.Keyword(self.toks[first][1], value, span=self.span(first, last)), depth + 1

    def index(self) -> tuple:
        """(node, depth): in `x[...]`, an index, a slice, `...` or a keyword argument."""
        toks = self.toks
        kind = toks[self.i][0]
        if kind == "...":
            self.i += 1
            return ast.Ellipsis_(span=self.span(self.i - 1, self.i - 1)), 1
        if kind == "NAME" and toks[self.i + 1][0] == "=":
            return self.keyword_argument()
        start = None
        if kind != ":":
            start = self.expr()
            if toks[self.i][0] != ":":
                return start[0], start[3]
        return self.slice(start)

    def slice(self, start) -> tuple:
        toks = self.toks
        colon = self.expect(":")
        first = start[1] if start else colon
        last, depth = colon, start[3] if start else 0
        parts = [start[0] if start else None, None, None]
        if toks[self.i][0] in _EXPR_START:
            stop = self.expr()
            parts[1], last, depth = stop[0], stop[2], max(depth, stop[3])
        if toks[self.i][0] == ":":
            last = self.i
            self.i += 1
            if toks[self.i][0] in _EXPR_START:
                step = self.expr()
                parts[2], last, depth = step[0], step[2], max(depth, step[3])
        return ast.Slice(*parts, span=self.span(first, last)), depth + 1

    def atom(self) -> tuple:
        i = self.i
        tok = self.toks[i]
        kind = tok[0]
        if kind == "NAME":
            if tok[1] in KEYWORDS_AFTER["ANY"]:
                self.take_name()
            self.i = i + 1
            return ast.Name(tok[1], span=Span(self.source, tok[2], tok[3], tok[2], tok[4])), i, i, 1
        if kind == "NUMBER":
            self.i = i + 1
            return self.number(tok), i, i, 1
        if kind == "STRING":
            self.i = i + 1
            return ast.String(self.unquote(tok[1]), span=self.span(i, i)), i, i, 1
        if kind == "TRUE" or kind == "FALSE":
            self.i = i + 1
            return ast.Bool(kind == "TRUE", span=self.span(i, i)), i, i, 1
        if kind == "[":
            self.i = i + 1
            items = self.comma_list(self.expr, "]", allow_empty=True)
            last = self.expect("]")
            depth = max([0] + [e[3] for e in items]) + 1
            return ast.ListExpr([e[0] for e in items], span=self.span(i, last)), i, last, depth
        if kind == "(":
            self.i = i + 1
            inner = self.expr()
            if self.toks[self.i][0] == ")":
                last = self.i
                self.i += 1
                return inner[0], i, last, inner[3] + 1       # the parentheses count in enclosing spans
            self.expect(",")
            items = [inner]
            if self.toks[self.i][0] != ")":
                items += self.comma_list(self.expr, ")", allow_empty=False)
            last = self.expect(")")
            depth = max(e[3] for e in items) + 1
            return ast.TupleExpr([e[0] for e in items], span=self.span(i, last)), i, last, depth
        raise Fallback("an expression")

    def number(self, tok: tuple) -> ast.Number:
        text = tok[1]
        is_int = "." not in text and "e" not in text and "E" not in text
        if is_int:
            if len(text) > 19:
                raise Fallback("a large integer")
            value = int(text)
            if value > _INT64_MAX:
                raise Fallback("a large integer")
        else:
            value = float(text)
            if not math.isfinite(value):
                raise Fallback("a large float")
        return ast.Number(value, is_int, span=Span(self.source, tok[2], tok[3], tok[2], tok[4]))
