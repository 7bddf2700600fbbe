"""Grammar-aware mutations of .nn files and of exported ONNX models, for the fuzz tests and
bench/fuzz.py. Every mutation takes a `random.Random` so a case is reproduced from its seed.

A .nn mutant is made of the shipped model's tokens: deleted, swapped, duplicated, numbers made
huge, expressions nested deep, statements repeated thousands of times, imports of odd paths,
scans with odd carries. Each case runs `nngraph check` in-process (see `run_check`).
"""
from __future__ import annotations

import contextlib
import io
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODELS = sorted((ROOT / "models").glob("*.nn"))

TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|\d+\.\d+|\.\d+|\d+(?:[eE][+-]?\d+)?|[A-Za-z_]\w*|\*\*|->|\.\.\.'
                   r'|[<>=!]=|\n|[ \t]+|.', re.S)
HUGE_NUMBERS = ["0", "-1", "1e400", "1e-400", "10000000000", "9223372036854775808", "99999999999999999999999",
                "100000000", "3.5", "-0", "1e18", "4294967296", "65536", "2147483648"]
ODD_IMPORTS = ["/dev/zero", "/etc/passwd", "/", ".", "..", "../../etc/hosts.nn", "missing.nn", "data/iris.csv",
               "data/corpus.txt", "data/digits.npz", "SELF", "", "\\x", "a\\\\b.nn"]
VOCABULARY = ["(", ")", "[", "]", "{", "}", ",", ":", "=", "~", "->", "...", ";", "\n", "+", "-", "*", "/", "@",
              "**", "<", "==", ".", "scan", "carry", "yield", "reverse", "steps", "in", "layer", "model", "train",
              "input", "target", "param", "output", "return", "import", "true", "false", "N", "x", "loss",
              "0", "1", "-1", '"float"', '"int64"', "int", "fn", "zeros", "arange", "ones", "reshape", "sum", "mean",
              "softmax", "dense", "concat", "stack", "transpose", "epochs", "batch", "holdout", "data", "csv", "npz"]
# How many times `long_file` repeats a statement (the suite's fuzz test uses smaller numbers, to keep
# to about a minute: a 5,000-statement transformer takes some 25 s of CPU to check, linearly)
LONG_FILE_COPIES = (100, 1000, 5000)
ODD_SNIPPETS = [
    "h, c = scan x in xs carry (h = (a, b)) {\n h = (h, h)\n yield h\n}\n",
    "s = scan 0 steps carry (h = 1) {\n yield h\n}\n",
    "s = scan -5 steps carry (h = 1) {\n h = h\n yield h\n}\n",
    "s = scan 10000000000 steps carry (h = zeros[2]) {\n yield h\n}\n",
    "s = scan x in 3 {\n yield x\n}\n",
    "s = scan reverse x in [] carry () {\n}\n",
    "a = arange(10000000000)\n",
    "a = zeros[100000, 100000]\n",
    "a = ones[10000000000]\n",
    "a = reshape(zeros[4], [-1, -1])\n",
    "layer rec(x) { return rec(x) }\ny = rec(zeros[2])\n",
    "layer a1(x) { return b1(x) }\nlayer b1(x) { return a1(x) }\n",
    "a = 99999999999999999999999 + 1\n",
    "p = zeros[9223372036854775807]\n",
    "q = 1 / 0\n",
    "r = 2 ** 100000\n",
    "t = (1, 2)[5]\n",
    "u = [1, 2, 3][9223372036854775808]\n",
]


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def mutate_nn(text: str, rng: random.Random, steps: int | None = None) -> str:
    """Apply 1-3 random mutations to a .nn file's text."""
    toks = tokens(text)
    for _ in range(steps or rng.randint(1, 3)):
        toks = rng.choice(NN_MUTATIONS)(toks, rng)
    return "".join(toks)


def _significant(toks, rng):
    spots = [i for i, t in enumerate(toks) if not t.isspace() or t == "\n"]
    return rng.choice(spots) if spots else 0


def delete_token(toks, rng):
    i = _significant(toks, rng)
    return toks[:i] + toks[i + 1:]


def swap_tokens(toks, rng):
    i, j = _significant(toks, rng), _significant(toks, rng)
    toks = list(toks)
    if toks:
        toks[i], toks[j] = toks[j], toks[i]
    return toks


def duplicate_tokens(toks, rng):
    i = _significant(toks, rng)
    n = rng.choice([1, 1, 2, 5, 20])
    return toks[:i] + toks[i:i + n] * rng.choice([2, 3, 50]) + toks[i:]


def insert_token(toks, rng):
    i = _significant(toks, rng)
    return toks[:i] + [rng.choice(VOCABULARY), " "] + toks[i:]


def huge_number(toks, rng):
    numbers = [i for i, t in enumerate(toks) if t[:1].isdigit() or t[:1] == "."]
    if not numbers:
        return insert_token(toks, rng)
    toks = list(toks)
    toks[rng.choice(numbers)] = rng.choice(HUGE_NUMBERS)
    return toks


def deep_nesting(toks, rng):
    names = [i for i, t in enumerate(toks) if re.fullmatch(r"[A-Za-z_]\w*", t)]
    if not names:
        return toks
    i = rng.choice(names)
    depth = rng.choice([50, 149, 151, 400, 1000, 3000])
    kind = rng.randrange(5)
    wrapped = {0: "(" * depth + toks[i] + ")" * depth,
               1: "-" * depth + toks[i],
               2: "+".join([toks[i]] * depth),
               3: "tanh(" * depth + toks[i] + ")" * depth,
               4: "[" * depth + toks[i] + "]" * depth}[kind]
    return toks[:i] + [wrapped] + toks[i + 1:]


def long_file(toks, rng):
    text = "".join(toks)
    lines = text.split("\n")
    stmt = [k for k, line in enumerate(lines) if "=" in line and "{" not in line and "}" not in line]
    if not stmt:
        return toks
    k = rng.choice(stmt)
    copies = rng.choice(LONG_FILE_COPIES)
    return tokens("\n".join(lines[:k + 1] + [lines[k]] * copies + lines[k + 1:]))


def bad_import(toks, rng):
    path = rng.choice(ODD_IMPORTS)
    return tokens(f'import "{path}"\n') + toks


def odd_snippet(toks, rng):
    text = "".join(toks)
    spots = [m.end() for m in re.finditer(r"\{\n", text)] or [len(text)]
    at = rng.choice(spots)
    return tokens(text[:at] + rng.choice(ODD_SNIPPETS) + text[at:])


def splice_line(toks, rng):
    lines = "".join(toks).split("\n")
    a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines.insert(a, lines[b])
    return tokens("\n".join(lines))


NN_MUTATIONS = [delete_token, swap_tokens, duplicate_tokens, insert_token, huge_number, huge_number, deep_nesting,
                long_file, bad_import, odd_snippet, odd_snippet, splice_line]


def nn_case(seed: int) -> tuple[str, str]:
    """(name of the shipped model, mutated text) for a seed."""
    rng = random.Random(seed)
    model = rng.choice(MODELS)
    text = model.read_text(encoding="utf-8")
    if "SELF" in text:
        text = text.replace("SELF", model.name)
    mutated = mutate_nn(text, rng)
    return model.name, mutated.replace('"SELF"', f'"{model.name}"')


def run_cli(argv: list[str]) -> tuple[int, str]:
    """`nngraph ARGV` in this process: (exit code, stderr). An exception escaping main is re-raised."""
    from nngraph.cli import main
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:     # argparse
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code, err.getvalue()


# ---------------------------------------------------------------- ONNX

def mutate_onnx(model_bytes: bytes, rng: random.Random) -> bytes:
    """Field-level mutations of an ONNX ModelProto: flip fields, drop nodes, wrong and huge dims."""
    import onnx
    model = onnx.ModelProto()
    model.ParseFromString(model_bytes)
    for _ in range(rng.randint(1, 3)):
        rng.choice(ONNX_MUTATIONS)(model, rng)
    try:
        return model.SerializeToString()
    except Exception:      # noqa: BLE001 - an unserialisable mutant is just skipped
        return model_bytes


def _drop_node(model, rng):
    if len(model.graph.node):
        del model.graph.node[rng.randrange(len(model.graph.node))]


def _dup_node(model, rng):
    if len(model.graph.node):
        model.graph.node.append(model.graph.node[rng.randrange(len(model.graph.node))])


def _wrong_dims(model, rng):
    inits = model.graph.initializer
    if len(inits):
        t = inits[rng.randrange(len(inits))]
        if len(t.dims):
            t.dims[rng.randrange(len(t.dims))] = rng.choice([0, 1, 3, 7, 2**31, 2**40, 2**62])
        else:
            t.dims.append(rng.choice([2, 2**40]))


def _huge_input_dim(model, rng):
    values = list(model.graph.input) + list(model.graph.output)
    if values:
        dims = values[rng.randrange(len(values))].type.tensor_type.shape.dim
        if len(dims):
            dims[rng.randrange(len(dims))].dim_value = rng.choice([0, 2**40, 2**62, 5])


def _rename_io(model, rng):
    nodes = model.graph.node
    if len(nodes):
        node = nodes[rng.randrange(len(nodes))]
        field = node.input if rng.random() < 0.5 and len(node.input) else node.output
        if len(field):
            field[rng.randrange(len(field))] = rng.choice(["", "nope", "x", field[0]])


def _op_type(model, rng):
    nodes = model.graph.node
    if len(nodes):
        nodes[rng.randrange(len(nodes))].op_type = rng.choice(
            ["Concat", "Range", "ConstantOfShape", "Reshape", "MatMul", "Gemm", "Relu", "Nope", "Scan", "Loop", "If",
             "Gather", "Slice", "Transpose", "Softmax", "Add", "Expand", "Tile", ""])


def _attribute(model, rng):
    nodes = [n for n in model.graph.node if len(n.attribute)]
    if nodes:
        attr = rng.choice(nodes).attribute
        a = attr[rng.randrange(len(attr))]
        choice = rng.randrange(4)
        if choice == 0:
            a.i = rng.choice([-2**62, -1, 0, 5, 2**40])
        elif choice == 1:
            a.ints.extend([rng.choice([-1, 0, 9, 2**40])])
        elif choice == 2:
            a.type = rng.randrange(1, 15)
        else:
            a.name = rng.choice(["axis", "perm", "nope", ""])


def _data_type(model, rng):
    inits = model.graph.initializer
    if len(inits):
        inits[rng.randrange(len(inits))].data_type = rng.choice([0, 1, 2, 6, 7, 8, 9, 10, 11, 16, 99])


def _truncate_data(model, rng):
    inits = model.graph.initializer
    if len(inits):
        t = inits[rng.randrange(len(inits))]
        if t.raw_data:
            t.raw_data = t.raw_data[:rng.randrange(len(t.raw_data))]
        elif len(t.float_data):
            del t.float_data[rng.randrange(len(t.float_data)):]


def _constant_of_shape(model, rng):
    import onnx
    from onnx import helper
    g = model.graph
    shape = helper.make_tensor("huge_shape", onnx.TensorProto.INT64, [2], [rng.choice([2**20, 2**31, -1]), 2**20])
    g.initializer.append(shape)
    g.node.append(helper.make_node(rng.choice(["ConstantOfShape", "Reshape", "Expand", "Tile"]),
                                   ["huge_shape"] if rng.random() < 0.5 else [g.input[0].name if len(g.input) else "x",
                                                                            "huge_shape"], ["huge_out"]))
    g.output.append(helper.make_tensor_value_info("huge_out", onnx.TensorProto.FLOAT, None))


def _range(model, rng):
    import onnx
    from onnx import helper
    g = model.graph
    for name, value in (("r0", 0.0), ("r1", rng.choice([1e12, 1e20, float("inf"), float("nan")])), ("rd", 1.0)):
        g.initializer.append(helper.make_tensor(name, onnx.TensorProto.FLOAT, [], [value]))
    g.node.append(helper.make_node("Range", ["r0", "r1", "rd"], ["range_out"]))
    g.output.append(helper.make_tensor_value_info("range_out", onnx.TensorProto.FLOAT, None))


def _wide_concat(model, rng):
    import onnx
    from onnx import helper
    g = model.graph
    g.initializer.append(helper.make_tensor("one", onnx.TensorProto.FLOAT, [1], [1.0]))
    g.node.append(helper.make_node("Concat", ["one"] * rng.choice([2, 20000]), ["cat_out"], axis=0))
    g.output.append(helper.make_tensor_value_info("cat_out", onnx.TensorProto.FLOAT, None))


def _opset(model, rng):
    if len(model.opset_import):
        model.opset_import[0].version = rng.choice([1, 7, 13, 17, 99, -1])


ONNX_MUTATIONS = [_drop_node, _dup_node, _wrong_dims, _huge_input_dim, _rename_io, _op_type, _attribute, _data_type,
                  _truncate_data, _constant_of_shape, _range, _wide_concat, _opset]


# ---------------------------------------------------------------- running one case

class CaseTimeout(BaseException):
    """Raised by the alarm: a BaseException, so that no `except Exception` in nngraph swallows it."""


def _alarm(signum, frame):
    raise CaseTimeout()


def prepare_workdir(folder: Path) -> Path:
    """A folder with the models' data beside it, so mutants' csv(...)/npz(...) paths resolve inside."""
    import shutil
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "data").exists():
        shutil.copytree(ROOT / "models" / "data", folder / "data")
    return folder


def onnx_bases(folder: Path, names=("iris", "squiggle", "cnn_xo", "rnn", "lstm", "transformer")) -> dict[str, bytes]:
    """ONNX files exported from shipped models (`nngraph compile models/X.nn -o X.onnx`)."""
    out = {}
    for name in names:
        path = folder / f"{name}.onnx"
        if not path.exists():
            code, err = run_cli(["compile", str(ROOT / "models" / f"{name}.nn"), "-o", str(path)])
            if code != 0:
                continue
        out[name] = path.read_bytes()
    return out


def classify(code: int, stderr: str) -> str:
    if "(MemoryError)" in stderr:     # `nngraph check` must never run out of memory, whatever its exit code
        return "memory"
    if code in (0, 1):
        return "ok" if code == 0 else "diagnostic"
    return "traceback"


def run_case(kind: str, seed: int, workdir: Path, bases: dict[str, bytes] | None = None,
             seconds: int = 10) -> tuple[str, str, str]:
    """(outcome, what was run, detail): outcome is ok, diagnostic, traceback, timeout or memory.
    The mutant is left in `workdir` as case-K.nn / case-K.onnx to reproduce."""
    model, data = make_case(kind, seed, bases)
    path = workdir / f"case-{seed % 4}.{kind}"
    path.write_bytes(data)
    outcome, detail = check_file(path, seconds)
    return outcome, f"{kind} seed {seed} from {model}", detail


def make_case(kind: str, seed: int, bases: dict[str, bytes] | None = None) -> tuple[str, bytes]:
    """(the shipped model it comes from, the mutant's bytes) for a seed: "nn" or "onnx"."""
    if kind == "nn":
        model, text = nn_case(seed)
        return model, text.encode("utf-8", errors="surrogatepass")
    rng = random.Random(seed)
    model = rng.choice(sorted(bases))
    return model, mutate_onnx(bases[model], rng)


def check_file(path: Path, seconds: int = 10) -> tuple[str, str]:
    """`nngraph --debug check PATH` in this process under a CPU-time limit: (outcome, stderr or traceback).
    CPU time, not wall time: the machine may be shared, and a hang burns CPU (a process stuck waiting
    is caught by bench/fuzz.py's wall-clock guard)."""
    import signal
    import traceback
    old = signal.signal(signal.SIGVTALRM, _alarm)
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        code, err = run_cli(["--debug", "check", str(path)])
        outcome, detail = classify(code, err), err
        if outcome == "ok" and str(path).endswith(".onnx"):
            outcome, detail = run_onnx(path)
    except CaseTimeout:
        outcome, detail = "timeout", f"over {seconds} s of CPU time"
    except MemoryError:
        outcome, detail = "memory", traceback.format_exc()
    except Exception:     # noqa: BLE001 - escaped main(): the worst case
        outcome, detail = "traceback", traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, old)
    return outcome, detail


RUN_ELEMENTS = 10**6     # inputs a mutant declares bigger than this are not made up (the harness's memory, not nngraph's)


def run_onnx(path: Path) -> tuple[str, str]:
    """An imported ONNX model that checks is also run (NumPy backend) on made-up inputs: symbolic
    sizes 2, floats from a normal distribution, integers and booleans 0 (valid indices).
    (outcome, detail) as check_file; an NNError is a diagnostic."""
    import numpy as np

    from nngraph.api import load
    from nngraph.diagnostics import NNError
    try:
        model = load(str(path))
        inputs = {}
        for v in model.graph.inputs:
            shape = tuple(d if isinstance(d, int) else 2 for d in v.type.shape)
            if np.prod(shape, dtype=float) > RUN_ELEMENTS:
                return "ok", f"not run: input {v.name} declares {shape}"
            inputs[v.name] = (np.random.default_rng(0).standard_normal(shape).astype(v.type.dtype)
                              if v.type.is_float else np.zeros(shape, v.type.dtype))
        model.run(None, inputs)
        return "ok", "ran"
    except NNError as err:
        return "diagnostic", err.render()
