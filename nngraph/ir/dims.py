"""Arithmetic on symbolic dimensions, in a normal form: equal sizes print equally.

A dimension is an int or a string: a symbol (`"N"`) or an expression over symbols that a shape
rule derived (`"4*N"`, `"H-2"`, `"(H+1)//2+1"`, `"(3*N)/(2)"`). Shapes are compared by equality,
so an expression must have one spelling: `reshape(reshape(x [N, 16], [-1, 4]), [-1, 16])` is
`[N, 16]`, not `[(4*4*N)/(16), 16]`. Here an expression is a polynomial with integer coefficients
over atoms: symbols, floor divisions `(p)//k` by a positive integer, and exact divisions `(p)/(q)`
that could not be cancelled. Terms are collected, integer factors cancelled, and the result printed
in one order (higher degree first, the constant last, atoms sorted), or is an int when it is one.

`normalize(dim)` puts any dim in that form; `mul`, `add`, `floordiv` and `divide` compute with dims.
The tokenizer accepts only integers, identifiers, + - * / // and parentheses; anything else is kept
as an opaque name (it is never evaluated)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

Dim = int | str
_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_]\w*)|(//|[-+*/()]))")


# ---------------------------------------------------------------- the normal form
@dataclass(frozen=True)
class _Floor:
    num: Poly
    k: int

    def __str__(self) -> str:
        return f"({_text(self.num)})//{self.k}"


@dataclass(frozen=True)
class _Frac:
    num: Poly
    den: Poly

    def __str__(self) -> str:
        return f"({_text(self.num)})/({_text(self.den)})"


# A monomial is a sorted tuple of atoms (a symbol's name, a _Floor, a _Frac), repeated for powers;
# a polynomial maps monomials to non-zero integer coefficients (the empty monomial: the constant).
Poly = tuple[tuple[tuple, int], ...]


def _key(atom) -> str:
    return atom if isinstance(atom, str) else str(atom)


def _poly(terms: dict) -> Poly:
    """The canonical tuple of a {monomial: coefficient} dict: zero terms dropped, a fixed order."""
    items = [(m, c) for m, c in terms.items() if c != 0]
    # the constant last, and before it terms with a positive coefficient first: "T-N", not "-N+T"
    return tuple(sorted(items, key=lambda mc: (len(mc[0]) == 0, mc[1] < 0, -len(mc[0]), [_key(a) for a in mc[0]])))


def _const(poly: Poly) -> int | None:
    if not poly:
        return 0
    return poly[0][1] if len(poly) == 1 and poly[0][0] == () else None


def _text(poly: Poly) -> str:
    out = ""
    for monomial, coeff in poly:
        magnitude = abs(coeff)
        # a division stands alone or is bracketed: 2*((H+1)//2), and -((H+1)//2) (a leading minus binds tighter)
        alone = len(monomial) == 1 and magnitude == 1 and (coeff > 0 or bool(out))
        atoms = [_key(a) if isinstance(a, str) or alone else f"({a})" for a in monomial]
        body = "*".join(([str(magnitude)] if magnitude != 1 or not atoms else []) + atoms)
        out += ("-" if coeff < 0 else "+" if out else "") + body
    return out or "0"


# ---------------------------------------------------------------- arithmetic on polynomials
def _add(a: Poly, b: Poly, sign: int = 1) -> Poly:
    terms = dict(a)
    for m, c in b:
        terms[m] = terms.get(m, 0) + sign * c
    return _poly(terms)


def _scale(a: Poly, k: int) -> Poly:
    return _poly({m: c * k for m, c in a})


def _mul(a: Poly, b: Poly) -> Poly:
    terms: dict = {}
    for ma, ca in a:
        for mb, cb in b:
            for m, c in _cancel_fractions(tuple(sorted(ma + mb, key=_key)), ca * cb):
                terms[m] = terms.get(m, 0) + c
    return _poly(terms)


def _cancel_fractions(monomial: tuple, coeff: int) -> Poly:
    """A term with an exact division by an integer k and a coefficient that k divides loses the
    division: (3*N)/(2) * 2 is 3*N."""
    for i, atom in enumerate(monomial):
        k = _const(atom.den) if isinstance(atom, _Frac) else None
        if k and coeff % k == 0:
            return _mul(atom.num, ((monomial[:i] + monomial[i + 1:], coeff // k),))
    return ((monomial, coeff),)


def _content(a: Poly) -> int:
    """The gcd of the coefficients."""
    return math.gcd(*(c for _, c in a)) if a else 0


def _floordiv(a: Poly, k: int) -> Poly:
    """floor(a / k) for k > 0: the terms k divides come out exactly (a symbol's value is an
    integer), the rest stays in one floor atom with the common factor of it and k cancelled."""
    exact = _poly({m: c // k for m, c in a if c % k == 0})
    rest = _poly({m: c for m, c in a if c % k != 0})
    if not rest:
        return exact
    constant = _const(rest)
    if constant is not None:
        return _add(exact, _poly({(): constant // k}))
    g = math.gcd(_content(rest), k)
    rest, k = _scale_down(rest, g), k // g
    if k == 1:
        return _add(exact, rest)
    return _add(exact, ((((_Floor(rest, k),)), 1),))


def _scale_down(a: Poly, g: int) -> Poly:
    return _poly({m: c // g for m, c in a})


def _divide(a: Poly, b: Poly) -> Poly:
    """a / b, known to be a whole number: cancelled when b is a monomial dividing every term,
    else the atom (a)/(b) with common integer factors removed."""
    if not b:
        raise ZeroDivisionError("a dimension divided by 0")
    if len(b) == 1:
        (mb, cb), = b
        quotient: dict = {}
        for m, c in a:
            left = list(m)
            if c % cb or any(atom not in left or left.remove(atom) for atom in mb):
                break
            quotient[tuple(left)] = quotient.get(tuple(left), 0) + c // cb
        else:
            return _poly(quotient)
    g = math.gcd(_content(a), _content(b))
    a, b = _scale_down(a, g), _scale_down(b, g)
    if b[0][1] < 0:
        a, b = _scale(a, -1), _scale(b, -1)
    if _const(b) == 1:
        return a
    return ((((_Frac(a, b),)), 1),)


# ---------------------------------------------------------------- parsing
class _Unparsable(Exception):
    pass


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise _Unparsable(text)
        out.append(m.group(m.lastindex))
        pos = m.end()
    return out


def _parse(text: str) -> Poly:
    tokens, pos = _tokens(text), 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def expr() -> Poly:
        value = term()
        while peek() in ("+", "-"):
            sign = 1 if take() == "+" else -1
            value = _add(value, term(), sign)
        return value

    def term() -> Poly:
        value = factor()
        while peek() in ("*", "/", "//"):
            op, right = take(), factor()
            if op == "*":
                value = _mul(value, right)
            else:
                k = _const(right)
                if op == "//" and (k is None or k <= 0):
                    raise _Unparsable(text)      # floor division by a symbol: not a form shape rules make
                value = _floordiv(value, k) if op == "//" else _divide(value, right)
        return value

    def factor() -> Poly:
        token = take() if peek() is not None else None
        if token == "-":
            return _scale(factor(), -1)
        if token == "(":
            value = expr()
            if take() != ")":
                raise _Unparsable(text)
            return value
        if token is not None and token.isdigit():
            return _poly({(): int(token)})
        if token is not None and (token[0].isalpha() or token[0] == "_"):
            return (((token,), 1),)
        raise _Unparsable(text)

    try:
        value = expr()
    except (IndexError, ZeroDivisionError):
        raise _Unparsable(text) from None
    if pos != len(tokens):
        raise _Unparsable(text)
    return value


def _as_poly(d: Dim) -> Poly:
    if isinstance(d, int):
        return _poly({(): d})
    return _parse(d)


def _as_dim(p: Poly) -> Dim:
    constant = _const(p)
    return constant if constant is not None else _text(p)


# ---------------------------------------------------------------- the API shape rules use
@lru_cache(maxsize=8192)
def _normalize_text(text: str) -> Dim:
    try:
        return _as_dim(_parse(text))
    except (_Unparsable, RecursionError):
        return text


def normalize(d: Dim) -> Dim:
    """The normal form of a dim: ints and plain symbols as they are, expressions simplified."""
    if isinstance(d, int) or d.isidentifier():
        return d
    return _normalize_text(d)


def _apply(fn, *dims: Dim) -> Dim | None:
    try:
        return _as_dim(fn(*(_as_poly(d) for d in dims)))
    except (_Unparsable, RecursionError, ZeroDivisionError):
        return None


@lru_cache(maxsize=8192)     # shape rules ask the same sums and products again and again
def mul(*dims: Dim) -> Dim:
    """The product of dims (1 for none)."""
    if all(isinstance(d, int) for d in dims):
        return math.prod(dims)
    result = _apply(lambda *ps: _fold(_mul, ps, _poly({(): 1})), *dims)
    return result if result is not None else "*".join(f"({d})" for d in dims)


@lru_cache(maxsize=8192)
def add(*dims: Dim) -> Dim:
    if all(isinstance(d, int) for d in dims):
        return sum(dims)
    result = _apply(lambda *ps: _fold(_add, ps, ()), *dims)
    return result if result is not None else "+".join(f"({d})" for d in dims)


def floordiv(d: Dim, k: int) -> Dim:
    """floor(d / k) for an integer k > 0."""
    if isinstance(d, int):
        return d // k
    result = _apply(lambda p: _floordiv(p, k), d)
    return result if result is not None else f"({d})//{k}"


@lru_cache(maxsize=8192)
def divide(num: Dim, den: Dim) -> Dim:
    """num / den where the division is known to be exact (a reshape's inferred size)."""
    if isinstance(num, int) and isinstance(den, int) and den and num % den == 0:
        return num // den
    result = _apply(_divide, num, den)
    return result if result is not None else f"({num})/({den})"


def monomial(d: Dim) -> tuple[int, list[str]] | None:
    """d as an integer times a product of symbols (`4*N*T` is (4, ["N", "T"])), or None."""
    try:
        p = _as_poly(d)
    except (_Unparsable, RecursionError):
        return None
    if len(p) != 1 or not all(isinstance(a, str) for a in p[0][0]) or p[0][1] <= 0:
        return None
    return p[0][1], list(p[0][0])


def _fold(fn, polys, start: Poly) -> Poly:
    value = start
    for p in polys:
        value = fn(value, p)
    return value
