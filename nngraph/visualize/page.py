"""One self-contained HTML page for a graph: the picture inline, pan and zoom, click a layer box
to open it and an open layer's frame to close it, hover for a value's type, `.nn` line and
statistics, search by name. No network: the script and style (page.js, page.css) are inlined.

Opening and closing swap pictures that are laid out beforehand: the default one and those with
one or more layer instances opened, breadth first, up to MAX_STATES pictures."""
from __future__ import annotations

import html
import json
from importlib import resources

from nngraph.ir import Graph
from nngraph.visualize.blocks import Plan
from nngraph.visualize.graphviz import COLOURS, INPUT, OUTPUT, PARAM, make_plan, picture
from nngraph.visualize.rendering import _count_nodes, render

MAX_STATES = 24
MAX_NODES = 300         # an opened picture bigger than this is not laid out (it takes dot too long)


def states(graph: Graph, plan: Plan, highlight=None, stats=None) -> list[dict]:
    """The pictures the page can show: {"expand": [...], "boxes": [...], "svg": "<svg ..."}."""
    repeats = bool(plan.repeats)
    out, seen, queue = [], set(), [plan.expand]
    while queue and len(out) < MAX_STATES:
        expand = queue.pop(0)
        if expand in seen:
            continue
        seen.add(expand)
        dot, boxes = picture(graph, plan=make_plan(graph, plan.depth, expand, repeats, plan.bodies), highlight=highlight,
                             stats=stats)
        if out and _count_nodes(dot) > MAX_NODES:
            continue
        svg = render(dot, "svg").decode()
        out.append({"expand": sorted(expand), "boxes": boxes, "svg": svg[svg.index("<svg"):]})
        queue += [expand | {box} for box in boxes]
    return out


def page(graph: Graph, plan: Plan, highlight=None, stats=None) -> str:
    data = {"name": graph.name, "states": states(graph, plan, highlight, stats)}
    # inside <script>, "</" would end the element early
    payload = json.dumps(data).replace("</", "<\\/")
    assets = resources.files("nngraph.visualize")
    legend = "".join(f'<span class="key" style="background:{colour}">{name}</span>' for name, colour in
                     [("forward", COLOURS["forward"]), ("gradient", COLOURS["backward"]),
                      ("optimizer", COLOURS["optimizer"]), ("input", INPUT), ("parameter", PARAM), ("output", OUTPUT)])
    return _TEMPLATE.format(title=html.escape(graph.name), css=assets.joinpath("page.css").read_text(),
                            js=assets.joinpath("page.js").read_text(), data=payload, legend=legend)


def notebook_html(graph: Graph, height: int = 640) -> str:
    """The page of `graph` at the default collapse level inside an iframe, for Jupyter's
    `_repr_html_`: its script and style stay apart from the notebook's."""
    from nngraph.visualize.rendering import auto_plan
    return iframe(page(graph, auto_plan(graph)), height)


def iframe(document: str, height: int = 640) -> str:
    return (f'<iframe srcdoc="{html.escape(document, quote=True)}" style="width:100%;height:{height}px;'
            'border:1px solid #cbd5e1" sandbox="allow-scripts"></iframe>')


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: nngraph</title>
<link rel="icon" href="data:,">
<style>{css}</style></head>
<body>
<header>
  <strong>{title}</strong>
  <input id="search" type="search" placeholder="search names, ops, layers" autocomplete="off">
  <span id="matches"></span>
  <button id="zoom-in" title="zoom in">+</button><button id="zoom-out" title="zoom out">&minus;</button>
  <button id="fit" title="fit the picture to the window">fit</button>
  <span class="legend">{legend}</span>
</header>
<div id="status">click a box to open it; click an open layer's frame to close it; drag to pan, wheel to zoom</div>
<main id="viewport"><div id="canvas"></div></main>
<pre id="info"></pre>
<script type="application/json" id="graph-data">{data}</script>
<script>{js}</script>
</body></html>
"""
