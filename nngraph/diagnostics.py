"""Source spans and user-facing diagnostics.

Every error a user can cause is an `NNError` carrying a `Span`; the CLI renders it as
``file:line:col: error: message``, the source line, a caret under the span, and a hint.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True)
class SourceFile:
    path: str
    text: str

    def line(self, number: int) -> str:
        lines = self._lines
        return lines[number - 1] if 1 <= number <= len(lines) else ""

    @cached_property
    def _lines(self) -> list[str]:     # split once: spans read lines often, and a file can be long
        return self.text.splitlines()


@dataclass(frozen=True)
class Span:
    """A 1-based, end-inclusive-of-start region of a source file."""
    source: SourceFile = field(repr=False, compare=False)
    line: int
    column: int
    end_line: int
    end_column: int  # exclusive
    # Set by the elaborator on spans inside a layer body: the user's call that brought the layer in
    # (the outermost one, so for nested layers the model's own line) and the name of the layer
    # whose body this is. Graph pictures show them in tooltips; comparisons ignore them.
    call_site: Span | None = field(default=None, repr=False, compare=False)
    layer: str | None = field(default=None, repr=False, compare=False)

    @property
    def file(self) -> str:
        return self.source.path

    def __str__(self) -> str:
        return f"{self.source.path}:{self.line}:{self.column}"

    def text(self) -> str:
        if self.line != self.end_line:
            return self.source.line(self.line)[self.column - 1:]
        return self.source.line(self.line)[self.column - 1:self.end_column - 1]


class NNError(Exception):
    """A diagnosed error in the user's input: rendered for people, exit code 1."""

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None,
                 notes: list[tuple[str, Span | None]] | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.notes = notes or []

    def render(self) -> str:
        out = [_headline("error", self.message, self.span)]
        out += _excerpt(self.span)
        for note, span in self.notes:
            out.append(_headline("note", note, span))
            out += _excerpt(span)
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)

    def __str__(self) -> str:
        return f"{self.span}: {self.message}" if self.span else self.message


def _headline(kind: str, message: str, span: Span | None) -> str:
    return f"{span}: {kind}: {message}" if span else f"{kind}: {message}"


def _excerpt(span: Span | None) -> list[str]:
    if span is None:
        return []
    source_line = span.source.line(span.line)
    width = (span.end_column - span.column) if span.end_line == span.line else len(source_line) - span.column + 1
    gutter = f"{span.line:>4} | "
    caret = " " * (len(gutter) + span.column - 1) + "^" + "~" * max(0, width - 1)
    return [gutter + source_line, caret]


def did_you_mean(name: str, candidates) -> str | None:
    """A hint naming the closest known spelling, if one is close enough."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None
