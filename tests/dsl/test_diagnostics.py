"""Every user error is a diagnostic: message, line and column asserted, never a traceback."""
import numpy as np
import pytest

import nngraph
from nngraph.cli import main

CASES = [
    # (name, source, line, column, message, hint or None)
    ("unknown-name", "model m {\n    input x: [N, 2]\n    output y = sigmoud(x)\n}\n",
     3, 16, "unknown name `sigmoud`", "did you mean `sigmoid`?"),
    ("matmul-shapes", "model m {\n    input x: [N, 3]\n    param w: [4, 2] ~ glorot\n    output y = x @ w\n}\n",
     4, 16, "`@` contracts the last axis of [N, 3] with the second-to-last of [4, 2]: 3 != 4: "
            "x is float32[N, 3], w is float32[4, 2]", None),
    ("broadcast", "model m {\n    input x: [N, 3]\n    input z: [N, 4]\n    output y = x + z\n}\n",
     4, 16, "cannot broadcast shapes [N, 3] and [N, 4]: x is float32[N, 3], z is float32[N, 4]", None),
    ("too-many-args", "model m {\n    input x: [N, 3]\n    output y = softmax(x, 1, 2)\n}\n",
     3, 30, "`softmax` takes 2 arguments (x, axis), got 3", None),
    ("unknown-keyword", "model m {\n    input x: [N, 3]\n    output y = softmax(x, axs = 0)\n}\n",
     3, 27, "`softmax` has no argument `axs`", "did you mean `axis`?"),
    ("layer-needs-args", "model m {\n    input x: [N, 3]\n    output y = dense(x)\n}\n",
     3, 16, "layer `dense` needs its compile-time argument `units`", "write dense[units](...), e.g. dense[4](x)"),
    ("layer-arg-shape", "layer f(x: [..., 2]) { return x }\nmodel m {\n    input x: [N, 3]\n    output y = f(x)\n}\n",
     4, 18, "argument `x` of layer `f` must have shape [..., 2], got float32[N, 3]", None),
    ("loss-not-scalar", "model m {\n    input x: [N, 3]\n    output y = x\n    loss = x\n}\n",
     4, 12, "the loss must be a float scalar, got type float32[N, 3]",
     "reduce it to one number, e.g. with sum(...) or mean(...)"),
    ("int-plus-float", "model m {\n    input x: [N, 3] int\n    output y = x + 1.5\n}\n",
     3, 16, "cannot combine the float 1.5 with a tensor of int64", 'cast the tensor first: cast(x, "float")'),
    ("compile-time-type", "model m {\n    input x: [N, 3]\n    output y = dense[relu](x)\n}\n",
     3, 16, "compile-time argument `units` must be int, got the function `relu`", None),
    ("unknown-initializer", "model m {\n    input x: [N, 3]\n    param w: [3] ~ gloroot\n    output y = x * w\n}\n",
     3, 20, "unknown initializer `gloroot`", "did you mean `glorot`?"),
    ("unpack", "model m {\n    input x: [N, 3]\n    a, b = x\n    output y = a\n}\n",
     3, 12, "cannot unpack 1 value into 2 names", None),
    ("train-setting", "model m {\n    input x: [N, 3]\n    output y = x\n}\ntrain m {\n    epoch = 3\n}\n",
     6, 5, "unknown training setting `epoch`", "did you mean `epochs`?"),
    ("symbolic-param", "model m {\n    input x: [N, 3]\n    param w: [N, 3] ~ glorot\n    output y = x * w\n}\n",
     3, 15, "the size `N` is not known here",
     "parameter shapes are fixed at compile time: use integers or layer arguments"),
    ("dimension-div-zero", "model m {\n    input x: [N, 3]\n    param w: [4 / 0] = 0\n    output y = x\n}\n",
     3, 15, "division by zero in a dimension", None),
    ("constant-overflow", "model m {\n    input x: [N, 3]\n    output y = x * 2 ** 2000.5\n}\n",
     3, 20, "cannot compute 2 ** 2000.5", None),
    ("no-output", "model m {\n    input x: [N, 3]\n}\n", 1, 1, "model `m` declares no output",
     "mark a result with `output NAME = expression`"),
    ("missing-import", 'import "nope.nn"\nmodel m {\n    input x: [N, 3]\n    output y = x\n}\n',
     1, 1, "no such file: ", None),
    # images, indexing, lookup
    ("conv-channels", "model m {\n    input x: [N, 3, 8, 8]\n    param w: [4, 2, 3, 3] ~ he\n    output y = conv(x, w)\n}\n",
     4, 16, "`conv2d` filters [4, 2, 3, 3] read 2 channels per group (1 group, 2 in all), but the input "
            "[N, 3, 8, 8] has 3", None),
    ("conv-not-an-image", "model m {\n    input x: [N, 8]\n    param w: [4, 1, 3, 3] ~ he\n    output y = conv(x, w)\n}\n",
     4, 21, "`conv` needs an image batch of shape [N, C, H, W], got float32[N, 8]", None),
    ("conv-same-stride-symbolic",
     'model m {\n    input x: [N, 1, H, 8]\n    param w: [4, 1, 3, 3] ~ he\n'
     '    output y = conv(x, w, stride = 2, padding = "same")\n}\n',
     4, 49, 'padding "same" with stride 2 needs the input\'s height at compile time, but it is H',
     "give the padding as numbers, or use stride 1"),
    ("pool-window-too-large", "model m {\n    input x: [N, 1, 3, 3]\n    output y = max_pool2d(x, 4)\n}\n",
     3, 16, "`max_pool2d`: the input's height 3 is smaller than the window's 4", None),
    ("pool-padding", "model m {\n    input x: [N, 1, 6, 6]\n    output y = avg_pool2d(x, 2, padding = 2)\n}\n",
     3, 16, "`avg_pool2d` needs each padding smaller than the kernel, got padding (2, 2, 2, 2) for kernel (2, 2)", None),
    ("index-out-of-range", "model m {\n    input x: [N, 3]\n    output y = x[:, 3]\n}\n",
     3, 21, "index 3 is out of range for axis 1 of x, which has size 3 (float32[N, 3])",
     "valid indices are 0 to 2, or -3 to -1 from the end"),
    ("index-negative-out-of-range", "model m {\n    input x: [N, 3, 2]\n    output y = x[..., -3]\n}\n",
     3, 23, "index -3 is out of range for axis 2 of x, which has size 2 (float32[N, 3, 2])",
     "valid indices are 0 to 1, or -2 to -1 from the end"),
    ("slice-step-zero", "model m {\n    input x: [N, 3]\n    output y = x[::0]\n}\n",
     3, 20, "a slice step cannot be zero", None),
    ("slice-selects-nothing", "model m {\n    input x: [N, 3]\n    output y = x[:, 3:]\n}\n",
     3, 16, "the slice 3: of axis 1 (size 3) selects nothing", None),
    ("too-many-indices", "model m {\n    input x: [N, 3]\n    output y = x[0, 1, 2]\n}\n",
     3, 16, "too many indices: x is float32[N, 3] with 2 axes, indexed with 3", None),
    ("tensor-index", "model m {\n    input x: [N, 3]\n    input i: [2] int\n    output y = x[i]\n}\n",
     4, 18, "an index must be an integer known at compile time, got a tensor of type int64[2]",
     "to pick positions given by a tensor, use gather(x, indices, axis)"),
    ("split-unequal", "model m {\n    input x: [N, 5]\n    a, b = split(x, 2, axis = 1)\n    output y = a\n}\n",
     3, 21, "`split` cannot cut axis 1 of float32[N, 5] into 2 equal parts", "list the sizes of the parts instead"),
    ("gather-float-indices", "model m {\n    input x: [N, 3]\n    param t: [4, 2] ~ glorot\n    output y = gather(t, x)\n}\n",
     4, 26, "`gather` needs integer indices, got float32[N, 3]", 'cast them first: cast(i, "int64")'),
]


@pytest.mark.parametrize("name,source,line,column,message,hint", CASES, ids=[c[0] for c in CASES])
def test_diagnostic(tmp_path, name, source, line, column, message, hint):
    path = tmp_path / f"{name}.nn"
    path.write_text(source)
    with pytest.raises(nngraph.NNError) as info:
        nngraph.load(str(path))
    err = info.value
    assert err.message.startswith(message)
    assert (err.span.line, err.span.column) == (line, column)
    assert err.hint == hint
    rendered = err.render().splitlines()
    assert rendered[0] == f"{path}:{line}:{column}: error: {err.message}"
    assert rendered[1].endswith(source.splitlines()[line - 1])
    assert rendered[2].index("^") == len(rendered[1]) - len(source.splitlines()[line - 1]) + column - 1


# ---- the CLI: exit codes, and no tracebacks for bad inputs ----
def run_cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_reports_syntax_error_with_exit_1(tmp_path, capsys):
    bad = tmp_path / "bad.nn"
    bad.write_text("model m {\n    input x: [N, 3]\n    output y = (x +\n}\n")
    code, out, err = run_cli(["check", str(bad)], capsys)
    assert code == 1
    assert err.startswith(f"{bad}:4:1: error: ")
    assert "Traceback" not in err


def test_cli_missing_model_file(capsys):
    code, _, err = run_cli(["check", "no/such/model.nn"], capsys)
    assert (code, err.strip()) == (1, "error: no such file: no/such/model.nn")


def test_cli_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "models/iris.nn", "--epochs", "-3"])
    assert info.value.code == 2


def test_run_rejects_wrong_input_name(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 4)))
    code, _, err = run_cli(["run", "models/iris.nn", "--input", f"xs={tmp_path / 'x.npy'}"], capsys)
    assert code == 1
    assert "error: model `iris` has no input `xs`" in err
    assert "did you mean `x`?" in err


def test_run_rejects_wrong_shape_pointing_at_the_declaration(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 5)))
    code, _, err = run_cli(["run", "models/iris.nn", "--input", f"x={tmp_path / 'x.npy'}"], capsys)
    assert code == 1
    first = next(line for line in err.splitlines() if "error:" in line)
    assert first == ("models/iris.nn:7:5: error: input `x` must have shape [N, 4], got [2, 5]: "
                     "axis 1 is 5, expected 4")


def test_run_rejects_wrong_dtype(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 4), dtype=bool))
    code, _, err = run_cli(["run", "models/iris.nn", "--input", f"x={tmp_path / 'x.npy'}"], capsys)
    assert code == 1
    assert "error: input `x` must be float32, got an array of bool" in err


def test_run_rejects_missing_npy_and_pickles(tmp_path, capsys):
    code, _, err = run_cli(["run", "models/iris.nn", "--input", f"x={tmp_path / 'none.npy'}"], capsys)
    assert code == 1 and "no such file" in err
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, _, err = run_cli(["run", "models/iris.nn", "--input", f"x={tmp_path / 'obj.npy'}"], capsys)
    assert code == 1 and "cannot read" in err


def test_weights_file_with_wrong_shape(tmp_path, capsys):
    params = nngraph.load("models/iris.nn").init(0)
    params["hidden.w"] = np.zeros((3, 3), np.float32)
    nngraph.save_npz(str(tmp_path / "w.npz"), params)
    code, _, err = run_cli(["run", "models/iris.nn", "--params", str(tmp_path / "w.npz")], capsys)
    assert code == 1
    assert "parameter `hidden.w` is declared float32[4, 8] but the weights file holds shape [3, 3]" in err


def test_error_inside_a_layer_also_points_at_the_call(tmp_path):
    path = tmp_path / "m.nn"
    path.write_text("model m {\n    input x: [N, 3]\n    output y = dense[-1](x)\n}\n")
    with pytest.raises(nngraph.NNError) as info:
        nngraph.load(str(path))
    err = info.value
    assert err.message == "parameter `w` would have shape [3, -1]; every size must be positive"
    assert err.span.file.endswith("stdlib/layers.nn")
    note, span = err.notes[-1]
    assert note == "in layer `dense` called here" and (span.file, span.line, span.column) == (str(path), 3, 16)


def test_runtime_size_clash_names_the_node(tmp_path):
    path = tmp_path / "m.nn"
    path.write_text("model m {\n    input x: [N, 3]\n    output y = reshape(x, [5, 7])\n}\n")
    model = nngraph.load(str(path))
    with pytest.raises(nngraph.NNError) as info:
        model.run({}, {"x": np.ones((2, 3))})
    assert info.value.message.startswith("`reshape` failed on inputs of shape [2, 3] (N = 2): ")
    assert (info.value.span.line, info.value.span.column) == (3, 16)
