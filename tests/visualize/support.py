"""Reading pictures back: clusters and nodes of a pydot graph, groups of an SVG, what a model's
graph should draw (its layer instances, scan bodies, node counts)."""
import xml.etree.ElementTree as ET

from nngraph.ops.recurrence import scan_parts

SVG = "{http://www.w3.org/2000/svg}"


def all_clusters(g) -> set[str]:
    names = set()
    for sub in g.get_subgraphs():
        names |= {sub.get_name()} | all_clusters(sub)
    return names


def all_nodes(g) -> list:
    nodes = [n for n in g.get_nodes() if n.get_name() not in ("node", "edge", "graph")]
    for sub in g.get_subgraphs():
        nodes += all_nodes(sub)
    return nodes


def layer_scopes(graph) -> set[str]:
    """Every layer instance of the graph, the enclosing ones of nested layers included."""
    return layer_scopes_of({n.scope for n in graph.nodes} | {p.name.rpartition(".")[0] for p in graph.params})


def layer_scopes_of(scopes) -> set[str]:
    return {s.rsplit(".", k)[0] for s in scopes if s for k in range(s.count(".") + 1)}


def cluster_id(scope: str) -> str:
    return "cluster_" + scope.replace(".", "_").replace("/", "_")


def scans_in_drawing_order(graph, prefix=""):
    """(prefix of the body's names, scan node) for every scan, nested ones right after their own."""
    for node in graph.nodes:
        if node.op == "scan":
            scans_in_drawing_order.count += 1
            inner = f"{prefix}scan{scans_in_drawing_order.count}/"
            yield inner, node
            yield from scans_in_drawing_order(node.attrs["body"], inner)


def expected_clusters(graph) -> list[str]:
    """A cluster per layer instance; a cluster per scan body, with its own layer clusters inside."""
    clusters = [cluster_id(s) for s in layer_scopes(graph)]
    scans_in_drawing_order.count = 0
    for prefix, scan in scans_in_drawing_order(graph):
        clusters.append(cluster_id(prefix.rstrip("/")))
        cut = len(scan.scope) + 1 if scan.scope else 0
        inner = {n.scope[cut:] for n in scan.attrs["body"].nodes if n.scope != scan.scope}
        clusters += [cluster_id(prefix + s) for s in layer_scopes_of(inner)]
    return clusters


def nodes_within(graph):
    """The graph's nodes and those of its scan bodies."""
    for node in graph.nodes:
        yield node
        if node.op == "scan":
            yield from nodes_within(node.attrs["body"])


def drawn_count(graph) -> int:
    """Picture nodes: every node, input, parameter and output, and inside each scan body its
    carries, steps, nodes and yields (a captured value is drawn once, where it is made)."""
    count = len(graph.nodes) + len(graph.inputs) + len(graph.params) + len(graph.outputs)
    for node in graph.nodes:
        if node.op == "scan":
            body = node.attrs["body"]
            count += drawn_count(body) - len(body.params) - len(scan_parts(body.inputs, node.attrs)[2])
    return count


def svg_groups(path, kind: str) -> list[str]:
    """The titles of the SVG's <g class=kind> groups (Graphviz titles each node, cluster and edge)."""
    root = ET.parse(path).getroot()
    return [g.find(SVG + "title").text for g in root.iter(SVG + "g") if g.get("class") == kind]


def svg_px(path) -> tuple[float, float]:
    """Width and height in px (96 per inch) of an SVG that dot wrote in pt (72 per inch)."""
    root = ET.parse(path).getroot()
    return tuple(float(root.get(side).removesuffix("pt")) * 96 / 72 for side in ("width", "height"))


def compile_args(path, name, *flags):
    return ["compile", path, "--model-name", name, *flags]
