"""The parser: .nn text -> spanned AST, and syntax errors that point at the mistake."""
import glob

import pytest

from nngraph.diagnostics import NNError
from nngraph.dsl import ast
from nngraph.dsl.parser import parse

# The language tour: every construct once. Line and column numbers below refer to this text.
EXAMPLE = '''\
# comments run to end of line
import "layers/extra.nn"           # a path relative to the importing file

# a layer: compile-time arguments in [ ], tensor arguments in ( ), optional result shape
layer dense[units: int, act = identity](x: [..., n]) -> [..., units] {
    param w: [n, units] ~ glorot            # random initializer
    param b: [units] = 0                    # constant initializer: any expression
    return act(x @ w + b)
}
layer ssr(y, t) {                           # no [ ] part; tensor args without shapes
    return sum((y - t) ** 2)
}
layer two(x) { a, b = split(x, 2, axis = -1)
    return a, b }                           # return of a tuple

model squiggle {
    input  dose: [N, 1]                     # symbolic dims, ints, integer expressions
    input  labels: [N] int                  # optional dtype after the shape
    target observed: [N, 1]
    param scale: [] = 1.0                   # [] is a scalar shape
    param v: [4 * hidden, 2] ~ normal(std = 0.1)
    h = dense[2, softplus](dose)
    cell = dense[units = 4]                 # a layer bound to a name
    z = cell(h) + cell(h)
    y, c = two(z)                           # tuple destructuring
    output efficacy = dense[1](h)           # output with a value
    output y                                # output naming an existing value
    loss = ssr(efficacy, observed)          # plain assignment
    m = x[:, -1] + x[0, 1:3] + x[::2] + x[..., 0]
    k = -x ** 2                             # ** binds tighter than unary minus
    q = x < 2; r = true
    s = softmax(z, axis = -1)               # keyword arguments
    t = h.w                                 # attribute access
    lst = [1, 2.5, "a \\"b\\" \\\\"]             # list literals, string escapes
    u = (a + b) * 2e-3                      # parentheses, floats with exponents
}

train squiggle {                            # names the model it trains
    data = csv("data/dosage.csv", x = ["a", "b"])
    optimizer = sgd(lr = 0.1, momentum = 0.9)
    epochs = 2000
}
'''


@pytest.fixture(scope="module")
def module():
    return parse(EXAMPLE, "example.nn")


def model_stmt(module, target):
    """The statement of model `squiggle` that assigns or declares `target`."""
    for stmt in module.models[0].body:
        names = [t.id for t in stmt.targets] if isinstance(stmt, ast.Assign) else [getattr(stmt, "name", None)]
        if target in names:
            return stmt
    raise KeyError(target)


def where(node):
    return node.span.line, node.span.column, node.span.end_line, node.span.end_column


# Expected trees are built with span=None: spans are not part of AST equality.
def N(id):
    return ast.Name(id, span=None)


def Num(value):
    return ast.Number(value, isinstance(value, int), span=None)


# ---------------------------------------------------------------- structure

def test_items_are_sorted_by_kind_in_source_order(module):
    assert module.path == "example.nn"
    assert [i.path for i in module.imports] == ["layers/extra.nn"]
    assert [layer.name for layer in module.layers] == ["dense", "ssr", "two"]
    assert [m.name for m in module.models] == ["squiggle"]
    assert [t.model for t in module.trains] == ["squiggle"]


def test_layer_header(module):
    dense = module.layers[0]
    assert dense.cparams == [ast.CParam("units", "int", None, span=None),
                             ast.CParam("act", None, N("identity"), span=None)]
    [x] = dense.tparams
    assert x.name == "x" and x.shape.dims == [ast.Ellipsis_(span=None), N("n")]
    assert dense.result.dims == [ast.Ellipsis_(span=None), N("units")]
    assert where(dense) == (5, 1, 9, 2)
    assert where(dense.cparams[1]) == (5, 25, 5, 39)         # act = identity
    assert where(x.shape.dims[0]) == (5, 45, 5, 48)          # ...


def test_layer_without_compile_time_arguments_or_shapes(module):
    ssr = module.layers[1]
    assert ssr.cparams == [] and ssr.result is None
    assert [(t.name, t.shape) for t in ssr.tparams] == [("y", None), ("t", None)]


def test_param_initializers(module):
    w, b, _ = module.layers[0].body
    assert (w.name, w.init_kind, w.init) == ("w", "~", N("glorot"))
    assert w.shape == ast.ShapeExpr([N("n"), N("units")], None, span=None)
    assert (b.init_kind, b.init) == ("=", Num(0))
    v = model_stmt(module, "v")
    assert v.init == ast.Call(N("normal"), [], [ast.Keyword("std", Num(0.1), span=None)], span=None)
    assert v.shape.dims[0] == ast.BinOp("*", Num(4), N("hidden"), span=None)
    assert where(w) == (6, 5, 6, 33)


def test_binop_spans_cover_exactly_their_text(module):
    ret = module.layers[0].body[2]
    call = ret.values[0]
    plus = call.args[0]                                       # x @ w + b
    assert plus == ast.BinOp("+", ast.BinOp("@", N("x"), N("w"), span=None), N("b"), span=None)
    assert where(plus) == (8, 16, 8, 25)
    assert plus.span.text() == "x @ w + b"
    assert where(plus.left) == (8, 16, 8, 21)
    assert where(plus.right) == (8, 24, 8, 25)
    assert where(call) == (8, 12, 8, 26)
    assert where(ret) == (8, 5, 8, 26)


def test_parenthesized_operand_counts_in_the_enclosing_span(module):
    u = model_stmt(module, "u").value
    assert u == ast.BinOp("*", ast.BinOp("+", N("a"), N("b"), span=None), Num(0.002), span=None)
    assert u.span.text() == "(a + b) * 2e-3"
    assert u.left.span.text() == "a + b"


def test_unary_minus_is_looser_than_power(module):
    k = model_stmt(module, "k").value
    assert k == ast.UnaryOp("-", ast.BinOp("**", N("x"), Num(2), span=None), span=None)
    assert k.span.text() == "-x ** 2" and k.operand.span.text() == "x ** 2"


@pytest.mark.parametrize("text, tree", [
    ("2 ** -1", ast.BinOp("**", Num(2), ast.UnaryOp("-", Num(1), span=None), span=None)),
    ("a ** b ** c", ast.BinOp("**", N("a"), ast.BinOp("**", N("b"), N("c"), span=None), span=None)),
    ("a - b - c", ast.BinOp("-", ast.BinOp("-", N("a"), N("b"), span=None), N("c"), span=None)),
    ("a + b * c", ast.BinOp("+", N("a"), ast.BinOp("*", N("b"), N("c"), span=None), span=None)),
    ("a / b @ c", ast.BinOp("@", ast.BinOp("/", N("a"), N("b"), span=None), N("c"), span=None)),
    ("a + 1 <= b", ast.BinOp("<=", ast.BinOp("+", N("a"), Num(1), span=None), N("b"), span=None)),
    ("-a * b", ast.BinOp("*", ast.UnaryOp("-", N("a"), span=None), N("b"), span=None)),
    ("f(x)[0]", ast.Subscript(ast.Call(N("f"), [N("x")], [], span=None), [Num(0)], span=None)),
    ("a.b.c", ast.Attribute(ast.Attribute(N("a"), "b", span=None), "c", span=None)),
    ("(a, b)", ast.TupleExpr([N("a"), N("b")], span=None)),
    ("(a,)", ast.TupleExpr([N("a")], span=None)),
    ("[]", ast.ListExpr([], span=None)),
    ("false != true", ast.BinOp("!=", ast.Bool(False, span=None), ast.Bool(True, span=None), span=None)),
])
def test_precedence_and_associativity(text, tree):
    value = parse(f"model m {{ e = {text} }}", "t.nn").models[0].body[0].value
    assert value == tree
    assert value.span.text() == text


@pytest.mark.parametrize("text, value, is_int", [
    ("3", 3, True), ("3.0", 3.0, False), (".5", 0.5, False), ("1e-3", 0.001, False),
    ("2.5E+4", 25000.0, False), ("10", 10, True),
])
def test_numbers(text, value, is_int):
    number = parse(f"model m {{ e = {text} }}", "t.nn").models[0].body[0].value
    assert (number.value, number.is_int) == (value, is_int)
    assert type(number.value) is (int if is_int else float)


def test_layer_with_arguments_then_call(module):
    h = model_stmt(module, "h").value                         # dense[2, softplus](dose)
    assert h == ast.Call(ast.Subscript(N("dense"), [Num(2), N("softplus")], span=None), [N("dose")], [],
                         span=None)
    assert h.span.text() == "dense[2, softplus](dose)"
    assert h.func.span.text() == "dense[2, softplus]"


def test_keyword_arguments(module):
    cell = model_stmt(module, "cell").value
    assert cell == ast.Subscript(N("dense"), [ast.Keyword("units", Num(4), span=None)], span=None)
    assert cell.items[0].span.text() == "units = 4"
    s = model_stmt(module, "s").value
    assert s.args == [N("z")]
    assert s.kwargs == [ast.Keyword("axis", ast.UnaryOp("-", Num(1), span=None), span=None)]


def test_slices_and_ellipsis(module):
    m = model_stmt(module, "m").value
    rest, last = m.left, m.right
    rest, step = rest.left, rest.right
    first, second = rest.left, rest.right
    assert first.items == [ast.Slice(None, None, None, span=None), ast.UnaryOp("-", Num(1), span=None)]
    assert second.items == [Num(0), ast.Slice(Num(1), Num(3), None, span=None)]
    assert step.items == [ast.Slice(None, None, Num(2), span=None)]
    assert last.items == [ast.Ellipsis_(span=None), Num(0)]
    assert first.items[0].span.text() == ":"
    assert second.items[1].span.text() == "1:3"
    assert step.items[0].span.text() == "::2"


def test_inputs_and_dtypes(module):
    body = module.models[0].body
    dose, labels, observed = body[:3]
    assert (dose.kind, dose.name, dose.shape.dims, dose.shape.dtype) == ("input", "dose", [N("N"), Num(1)], None)
    assert (labels.kind, labels.shape.dtype) == ("input", "int")
    assert labels.shape.span.text() == "[N] int"
    assert (observed.kind, observed.name) == ("target", "observed")
    assert where(dose) == (17, 5, 17, 24)
    scale = model_stmt(module, "scale")
    assert scale.shape.dims == [] and scale.init == Num(1.0)


def test_tuples(module):
    a_b, ret = module.layers[2].body
    assert a_b.targets == [N("a"), N("b")]
    assert [where(t) for t in a_b.targets] == [(13, 16, 13, 17), (13, 19, 13, 20)]
    assert ret == ast.Return([N("a"), N("b")], span=None)
    assert model_stmt(module, "c").targets == [N("y"), N("c")]


def test_outputs(module):
    outputs = [s for s in module.models[0].body if isinstance(s, ast.OutputDecl)]
    assert [(o.name, o.value is None) for o in outputs] == [("efficacy", False), ("y", True)]
    assert outputs[1].span.text() == "output y"


def test_literals_and_attributes(module):
    assert model_stmt(module, "t").value == ast.Attribute(N("h"), "w", span=None)
    lst = model_stmt(module, "lst").value
    assert lst == ast.ListExpr([Num(1), Num(2.5), ast.String('a "b" \\', span=None)], span=None)
    assert model_stmt(module, "r").value == ast.Bool(True, span=None)
    assert model_stmt(module, "q").value == ast.BinOp("<", N("x"), Num(2), span=None)


def test_train_settings_are_single_assignments(module):
    train = module.trains[0]
    assert [s.targets for s in train.settings] == [[N("data")], [N("optimizer")], [N("epochs")]]
    data = train.settings[0].value
    assert data.args == [ast.String("data/dosage.csv", span=None)]
    assert data.kwargs[0].value == ast.ListExpr([ast.String("a", span=None), ast.String("b", span=None)],
                                                span=None)
    assert where(train) == (38, 1, 42, 2)


def test_layout_newlines_wrap_inside_brackets_and_semicolons_separate():
    text = ('model m {\n'
            '    h = f(a,   # comment\n'
            '\n'
            '          [1,\n'
            '           2],\n'
            '          k = 3)\n'
            '\n'
            '    ; x = 1;; y = 2 }\n')
    h, x, y = parse(text, "t.nn").models[0].body
    assert h.value == ast.Call(N("f"), [N("a"), ast.ListExpr([Num(1), Num(2)], span=None)],
                               [ast.Keyword("k", Num(3), span=None)], span=None)
    assert where(h.value) == (2, 9, 6, 17)            # through the `)`
    assert (x.value, y.value) == (Num(1), Num(2))


def test_keywords_are_names_where_no_keyword_fits():
    # The stdlib names a layer argument `target`.
    layer = parse("layer bce(p, target) { return target * p }", "t.nn").layers[0]
    assert [t.name for t in layer.tparams] == ["p", "target"]
    assert layer.body[0].values[0].left == N("target")


def test_empty_file():
    module = parse("# nothing here\n", "empty.nn")
    assert (module.imports, module.layers, module.models, module.trains) == ([], [], [], [])


@pytest.mark.parametrize("path", sorted(glob.glob("models/*.nn") + glob.glob("dsl/stdlib/*.nn")))
def test_shipped_files_parse(path):
    with open(path, encoding="utf-8") as f:
        parse(f.read(), path)


# ---------------------------------------------------------------- syntax errors

def error(text: str) -> NNError:
    with pytest.raises(NNError) as info:
        parse(text, "bad.nn")
    return info.value


def headline(text: str) -> str:
    return error(text).render().splitlines()[0]


def test_stray_closing_paren():
    err = error("model m {\n    h = dense[2](x))\n}\n")
    assert err.render().splitlines()[0] == \
        "bad.nn:2:20: error: unexpected `)`; expected an operator, a newline or `}`"
    assert err.hint == "this `)` has no matching `(`"


def test_closing_paren_where_an_expression_belongs():
    assert headline("model m {\n    h = )\n}") == "bad.nn:2:9: error: unexpected `)`; expected an expression or `scan`"


def test_missing_closing_brace_at_end_of_file():
    err = error("model m {\n    x = 1\n    y = f(x)\n\n")
    assert err.render().splitlines()[0] == "bad.nn:3:13: error: unexpected end of file; expected `}`"
    assert err.hint == "a `{` opened at 1:9 is never closed"


def test_param_without_colon():
    err = error("layer l(x) {\n    param w [2, 3] ~ glorot\n    return x\n}")
    assert err.render().splitlines()[0] == \
        "bad.nn:2:13: error: missing `:` between the parameter `w` and its shape"
    assert err.hint == "write `param w: [2, 3]`"


def test_param_without_colon_is_recognised_after_other_statements():
    err = error("model m {\n    x = 1\n    y = 2\n    param w [2]\n}")
    assert err.hint == "write `param w: [2]`"


def test_input_with_equals_instead_of_colon():
    err = error("model m {\n    input x = [N]\n}")
    assert err.render().splitlines()[0] == "bad.nn:2:13: error: an input's shape follows `:`, not `=`"
    assert err.hint == "write `input x: [N]`; its values come from the data"
    assert error("model m { target y = [N] int }").hint.startswith("write `target y: [N] int`")


def test_unterminated_string():
    err = error('train t {\n    data = csv("data.csv)\n}')
    assert err.render().splitlines()[0] == "bad.nn:2:16: error: unterminated string"
    assert err.span.end_column == len('    data = csv("data.csv)') + 1


def test_unknown_character():
    assert headline("model m {\n    x = $y\n}") == "bad.nn:2:9: error: unexpected character `$`"


def test_brace_on_the_next_line():
    err = error("model m\n{\n}")
    assert err.render().splitlines()[0] == "bad.nn:1:8: error: unexpected newline; expected `{`"
    assert err.hint == "put `{` on the same line as the header"


def test_chained_comparison():
    assert headline("model m {\n    c = a < b < 3\n}") == \
        "bad.nn:2:15: error: comparisons cannot be chained: `a < b < c` is not allowed"


def test_unclosed_paren_before_brace():
    err = error("model m {\n    x = f(a,\n}")
    assert err.render().splitlines()[0] == "bad.nn:3:1: error: unexpected `}`; expected an expression or `)`"
    assert err.hint == "the `(` opened at 2:10 is never closed"


def test_misspelt_keyword():
    err = error("modle m {\n}")
    assert err.render().splitlines()[0] == \
        "bad.nn:1:1: error: unexpected `modle`; expected `import`, `layer`, `model`, `train` or end of file"
    assert err.hint == "did you mean `model`?"


def test_statements_need_a_separator():
    assert headline("model m { x = 1 y = 2 }") == \
        "bad.nn:1:17: error: unexpected `y`; expected an operator, a newline or `}`"


def test_reserved_literals_cannot_be_assigned():
    assert headline("model m { true = 1 }") == "bad.nn:1:11: error: unexpected `true`; expected a statement or `}`"


def test_unknown_escape():
    err = error('model m { s = "a\\qb" }')
    assert err.render().splitlines()[0] == "bad.nn:1:17: error: unknown escape `\\q` in a string"


def test_positional_after_keyword_argument():
    assert headline("model m { y = f(a = 1, b) }") == \
        "bad.nn:1:24: error: a positional argument cannot follow a keyword argument"


def test_no_lark_exception_escapes_on_truncated_input():
    for end in range(0, len(EXAMPLE), 3):
        try:
            parse(EXAMPLE[:end], "cut.nn")
        except NNError as err:
            assert err.span is not None and err.span.line >= 1 and err.span.column >= 1
