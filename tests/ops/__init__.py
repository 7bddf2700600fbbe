"""Op tests: gradients, shape rules against kernels, second order, kernels against their
definitions; the case table (cases.py)."""
