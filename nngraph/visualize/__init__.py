"""Pictures of the IR: Graphviz pictures with pydot (graphviz.py), which layers are drawn as
boxes (blocks.py), labels and tooltips in the model's own words (labels.py), rendering and the
default collapse level (rendering.py), a self-contained interactive HTML page (page.py), and
write_picture (write.py), which writes any of them to a file."""
from nngraph.visualize.blocks import Plan, find_repeats
from nngraph.visualize.graphviz import COLOURS, HOT, make_plan, picture, to_dot
from nngraph.visualize.labels import value_statistics
from nngraph.visualize.page import notebook_html, page
from nngraph.visualize.rendering import FIT, FORMATS, auto_plan, find_renderer, plan_for, render, svg_size
from nngraph.visualize.write import write_picture

__all__ = ["COLOURS", "FIT", "FORMATS", "HOT", "Plan", "auto_plan", "find_renderer", "find_repeats", "make_plan",
           "notebook_html", "page", "picture", "plan_for", "render", "svg_size", "to_dot", "value_statistics",
           "write_picture"]
