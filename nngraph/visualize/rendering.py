"""Rendering pictures to files, and the default collapse level.

A .dot file needs nothing more. SVG and PNG need a `dot` program: Graphviz's own when installed,
else `graphviz-pure`, a self-contained port of it that pip installs with nngraph.

The default picture is the least collapsed one that fits a screen: every node (repeated blocks
drawn once with "× N"), then the layer instances at the deepest nesting level as boxes, then one
level up, and so on to the model's own layers, until it has at most FIT_NODES_RENDERED nodes and
dot lays it out within FIT pixels (at 96 px per inch); without a renderer, until it has at most
FIT_NODES nodes. The last resort, whatever its size: the model's own layers as boxes and each
scan as one node, its body not drawn.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sysconfig

import pydot

from nngraph.diagnostics import NNError, did_you_mean
from nngraph.ir import Graph
from nngraph.visualize.blocks import Plan, all_scopes, max_depth
from nngraph.visualize.graphviz import make_plan, to_dot

FORMATS = ("dot", "svg", "png", "html")
RENDERERS = ("dot", "graphviz-pure")    # Graphviz itself first; the PyPI port when it is absent
FIT = (2000, 4000)                      # width, height in px that a default picture fits in
FIT_NODES = 60                          # without a renderer: the most nodes a default picture has
FIT_NODES_RENDERED = 150                # more than this is not laid out to be measured: it would not fit


def find_renderer() -> str | None:
    """Graphviz's `dot`, else graphviz-pure's; also looked for beside this Python's own scripts,
    where pip puts graphviz-pure even when that virtualenv is not activated."""
    search = os.pathsep.join(filter(None, [os.environ.get("PATH"), sysconfig.get_path("scripts")]))
    for program in RENDERERS:
        found = shutil.which(program, path=search)
        if found:
            return found
    return None


def render(dot: pydot.Dot, fmt: str) -> bytes:
    """SVG or PNG bytes of `dot` from the renderer `find_renderer` picks."""
    program = find_renderer()
    if program is None:
        raise NNError(f"drawing .{fmt} needs a Graphviz `dot` program, and neither Graphviz's `dot` nor "
                      "`graphviz-pure` is installed",
                      hint="install one: apt-get install graphviz (or brew install graphviz), or "
                           "pip install graphviz-pure; or write a .dot file and render it elsewhere")
    done = subprocess.run([program, f"-T{fmt}"], input=dot.to_string().encode(), capture_output=True)
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise NNError(f"{os.path.basename(program)} could not draw the graph: "
                      f"{message[0] if message else f'exit code {done.returncode}'}",
                      hint="write a .dot file to see what was sent to it")
    return done.stdout


def svg_size(svg: bytes | str) -> tuple[int, int]:
    """Width and height in px (96 per inch) of an SVG that dot wrote (in pt, 72 per inch)."""
    text = svg.decode(errors="replace") if isinstance(svg, bytes) else svg
    found = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', text)
    if found is None:
        raise ValueError("not an SVG from dot: no size in pt")
    return round(float(found.group(1)) * 96 / 72), round(float(found.group(2)) * 96 / 72)


def auto_plan(graph: Graph, expand=()) -> Plan:
    """The least collapsed plan whose picture fits FIT (see the module's docstring)."""
    has_renderer = find_renderer() is not None
    plan = make_plan(graph, 0, expand, repeats=True)
    for depth, bodies in [(0, True), *((d, True) for d in range(max_depth(graph), 0, -1)), (1, False)]:
        plan = make_plan(graph, depth, expand, repeats=True, bodies=bodies)
        dot = to_dot(graph, plan=plan)
        nodes = _count_nodes(dot)
        if nodes > FIT_NODES_RENDERED:
            continue            # too many to fit, and slow to lay out
        if has_renderer:
            width, height = svg_size(render(dot, "svg"))
            if width <= FIT[0] and height <= FIT[1]:
                return plan
        elif nodes <= FIT_NODES:
            return plan
    return plan


def _count_nodes(g) -> int:
    return len([n for n in g.get_nodes() if n.get_name() not in ("node", "edge", "graph")]) + \
        sum(_count_nodes(sub) for sub in g.get_subgraphs())


def plan_for(graph: Graph, collapse: int | None = None, expand=()) -> Plan:
    """`collapse` None: the default (auto_plan); 0: every node; N: layer instances N deep as boxes."""
    known = all_scopes(graph)
    for name in expand:
        if name not in known:
            raise NNError(f"cannot expand `{name}`: {graph.name} has no layer instance of that name",
                          hint=did_you_mean(name, known) or f"its layer instances: {', '.join(sorted(known)[:12])}")
    if collapse is None:
        return auto_plan(graph, expand)
    return make_plan(graph, collapse, expand, repeats=False)
