"""Which layer instances a picture draws as one box: those at or below the collapse depth, and
repeated blocks, a chain of instances of one layer with the same arguments and the same
structure, each feeding the next (a transformer's blocks), drawn once with "× N". A name in
`expand` opens its block (and the blocks around it); opening a member of a chain undoes the chain."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from nngraph.ir import Graph, Node
from nngraph.visualize.labels import shape

_NUMBERED = re.compile(r"\d+(?=\.|$)")


@dataclass(frozen=True)
class Repeat:
    members: tuple[str, ...]        # the chain's scopes in order; the first one names the box
    layer: str                      # "encoder_block[4, 48, 96]"


@dataclass
class Plan:
    depth: int = 0                              # collapse layer instances this deep (1: the model's own); 0: none
    expand: frozenset[str] = frozenset()        # layer instances drawn open whatever the depth
    repeats: dict[str, Repeat] = field(default_factory=dict)    # each chain member -> its chain
    bodies: bool = True                         # draw scan bodies (False: a scan is one node)

    def is_open(self, scope: str) -> bool:
        return any(e == scope or e.startswith(scope + ".") for e in self.expand)

    def box(self, scope: str) -> str | None:
        """The scope of the box that draws a node of `scope`, or None when it is drawn itself."""
        parts = scope.split(".") if scope else []
        for k in range(1, len(parts) + 1):
            outer = ".".join(parts[:k])
            if self.is_open(outer):
                continue
            if outer in self.repeats:
                return self.repeats[outer].members[0]
            if self.depth and k >= self.depth:
                return outer
        return None


def nodes_within(nodes: list[Node]):
    """The nodes and those of their scan bodies, depth first."""
    for node in nodes:
        yield node
        if node.op == "scan":
            yield from nodes_within(node.attrs["body"].nodes)


def all_scopes(graph: Graph) -> set[str]:
    """Every layer instance, the enclosing ones of nested layers included."""
    leaves = {n.scope for n in nodes_within(graph.nodes)} | {p.name.rpartition(".")[0] for p in graph.params}
    return {s.rsplit(".", k)[0] for s in leaves if s for k in range(s.count(".") + 1)}


def max_depth(graph: Graph) -> int:
    return max((s.count(".") + 1 for s in all_scopes(graph)), default=0)


def find_repeats(graph: Graph, expand=frozenset()) -> dict[str, Repeat]:
    """Each member of a chain of identical sibling layer instances -> its chain."""
    nodes = list(nodes_within(graph.nodes))
    inside: dict[str, list[Node]] = {}
    for node in nodes:
        parts = node.scope.split(".") if node.scope else []
        for k in range(1, len(parts) + 1):
            inside.setdefault(".".join(parts[:k]), []).append(node)
    # constants do not count as feeding: the passes share equal ones between blocks
    made_in = {v.uid: node.scope for node in nodes if node.op != "constant" for v in node.outputs}
    groups: dict[tuple, list[str]] = {}
    for scope, members in inside.items():
        layer = graph.scope_labels.get(scope)
        if layer is None:
            continue
        signature = (scope.rpartition(".")[0], layer, _structure(scope, members, graph))
        groups.setdefault(signature, []).append(scope)
    open_ = Plan(expand=frozenset(expand))
    repeats: dict[str, Repeat] = {}
    for (_, layer, _), scopes in groups.items():
        for chain in _chains(scopes, inside, made_in):
            if len(chain) < 2:
                continue
            if not any(open_.is_open(s) for s in chain):
                repeat = Repeat(tuple(chain), layer)
                repeats.update((s, repeat) for s in chain)
            else:       # one member opened: the others stay boxes, each on its own
                repeats.update((s, Repeat((s,), layer)) for s in chain if not open_.is_open(s))
    return repeats


def _structure(scope: str, nodes: list[Node], graph: Graph) -> tuple:
    """What an instance is made of, whatever it is called: its nodes (by op, inner layer and
    shapes) and parameters. Constants are left out: the passes share equal ones between blocks;
    so are the numbers that name anonymous inner layers (`split_heads2`)."""
    cut = len(scope) + 1

    def local(name: str) -> str:
        return _NUMBERED.sub("#", name[cut:])
    ops = sorted((local(n.scope), n.op, n.role, tuple(shape(v) for v in n.outputs)) for n in nodes
                 if n.op != "constant")
    params = sorted((local(p.name), shape(p)) for p in graph.params if p.name.startswith(scope + "."))
    return tuple(ops), tuple(params)


def _chains(scopes: list[str], inside: dict[str, list[Node]], made_in: dict[int, str]) -> list[list[str]]:
    """Split same-looking instances into runs where each one reads what the one before made."""
    def feeds(a: str, b: str) -> bool:
        made = (made_in.get(v.uid) for n in inside[b] for v in n.inputs)
        return any(m is not None and (m == a or m.startswith(a + ".")) for m in made)

    chains: list[list[str]] = []
    for scope in scopes:            # in the order their first nodes were made
        if chains and feeds(chains[-1][-1], scope):
            chains[-1].append(scope)
        else:
            chains.append([scope])
    return chains
