"""The language: parser, diagnostics, properties of the whole pipeline on random programs, indexing and layers."""
