"""Limits on what a model may ask the compiler to build, read where constants are made (the .nn
builtins, constant folding, the ONNX importer). Read through this module (`limits.MAX_...`) so
that a test or a program can change them at run time."""
from __future__ import annotations

import os

# A compile-time constant larger than this is an error, not a slow fold that fills the memory
# (`arange(10000000000)`, `ones[100000, 100000] * 2`, an ONNX ConstantOfShape of 2**40).
# The environment variable NNGRAPH_MAX_CONSTANT_ELEMENTS raises it.
MAX_CONSTANT_ELEMENTS = int(float(os.environ.get("NNGRAPH_MAX_CONSTANT_ELEMENTS", "1e8")))
