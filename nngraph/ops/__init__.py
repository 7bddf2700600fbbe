"""What each op MEANS, by family: its shape/type rule and its symbolic VJP, registered in the op
table (nngraph/ir/registry.py). Nothing here computes numbers or knows a backend. Importing this
package registers every op."""
from nngraph.ops import elementwise, fused, images, indexing, linalg, normalization, recurrence, reductions, sampling, shapes  # noqa: F401
