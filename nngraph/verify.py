"""The IR verifier: structural invariants every pass must keep. Tests run it between passes."""
from __future__ import annotations

from nngraph.ir import Graph
from nngraph.ir.registry import OPS


class VerifyError(Exception):
    pass


def verify(graph: Graph) -> None:
    defined = {v.uid for v in graph.inputs + graph.params}
    names = [v.name for v in graph.inputs + graph.params]
    for index, node in enumerate(graph.nodes):
        where = f"node {index} ({node.op})"
        if node.op not in OPS:
            raise VerifyError(f"{where}: unknown op")
        opdef = OPS[node.op]
        if opdef.arity is not None and len(node.inputs) != opdef.arity:
            raise VerifyError(f"{where}: takes {opdef.arity} inputs, has {len(node.inputs)}")
        for v in node.inputs:
            if v.uid not in defined:
                raise VerifyError(f"{where}: input %{v.name} is used before it is defined")
        expected = opdef.infer([v.type for v in node.inputs], node.attrs)
        actual = [v.type for v in node.outputs]
        if expected != actual:
            raise VerifyError(f"{where}: output types {actual} differ from the shape rule's {expected}")
        for v in node.outputs:
            if v.node is not node:
                raise VerifyError(f"{where}: output %{v.name} does not point back at its node")
            defined.add(v.uid)
            names.append(v.name)
        for sub in node.attrs.values():
            if isinstance(sub, Graph):
                verify(sub)
    for name, v in graph.outputs.items():
        if v.uid not in defined:
            raise VerifyError(f"output {name} (%{v.name}) is not defined in the graph")
    if len(names) != len(set(names)):
        raise VerifyError("value names are not unique")
    if graph.loss is not None and graph.loss not in graph.outputs:
        raise VerifyError(f"the loss {graph.loss!r} is not an output")
