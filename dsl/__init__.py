"""The .nn language: grammar, parser to a spanned AST, elaboration into the IR, and the standard library."""
