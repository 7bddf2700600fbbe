"""ONNX RNN, GRU and LSTM import as scans over cells: the variants onnx's node tests leave out
(sequence lengths in every direction, activations with their alphas and betas, clip, GRU's reset
before the product, LSTM's peepholes and coupled gates, batch-first states) against onnxruntime
(onnx's reference evaluator for batch first, which onnxruntime does not run),
backpropagation through time against finite differences in float64, and the refusals."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import nngraph
from nngraph.onnx.context import UnsupportedONNX
from nngraph.onnx.importer import import_onnx
from nngraph.runtime.numpy.executor import Plan
from tests.helpers import assert_close, central_difference, run_ort

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
T, B, IN, H = 4, 3, 2, 3             # steps, batch, input features, hidden size


def recurrent(kind, direction="forward", layout=0, lengths=None, states=False, peepholes=False,
              dtype=TensorProto.FLOAT, weights_as_params=False, seed=0, **attrs):
    """One RNN/GRU/LSTM node over X, with W, R, B (and P) as graph inputs or initializers; loss =
    sum(Y * r) + sum(Y_h) (+ sum(Y_c)) with a fixed random r."""
    rng = np.random.default_rng(seed)
    np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
    D, G = (2 if direction == "bidirectional" else 1), GATES[kind]
    arrays = {"W": rng.normal(0, 0.6, (D, G * H, IN)), "R": rng.normal(0, 0.6, (D, G * H, H)),
              "B": rng.normal(0, 0.3, (D, 2 * G * H))}
    if peepholes:
        arrays["P"] = rng.normal(0, 0.5, (D, 3 * H))
    x_shape = [B, T, IN] if layout else [T, B, IN]
    state_shape = [B, D, H] if layout else [D, B, H]
    names = ["X", "W", "R", "B", "sequence_lens" if lengths is not None else "",
             "initial_h" if states else "", "initial_c" if states and kind == "LSTM" else "", "P" if peepholes else ""]
    while not names[-1]:
        names.pop()
    outs = ["Y", "Y_h"] + (["Y_c"] if kind == "LSTM" else [])
    y_shape = [B, T, D, H] if layout else [T, D, B, H]
    nodes = [helper.make_node(kind, names, outs, hidden_size=H, direction=direction, layout=layout, **attrs),
             helper.make_node("Mul", ["Y", "r"], ["yr"]), helper.make_node("ReduceSum", ["yr"], ["a"], keepdims=0)]
    last = "a"
    for state in outs[1:]:
        nodes += [helper.make_node("ReduceSum", [state], [f"s_{state}"], keepdims=0),
                  helper.make_node("Add", [last, f"s_{state}"], [f"acc_{state}"])]
        last = f"acc_{state}"
    nodes.append(helper.make_node("Identity", [last], ["loss"]))
    inits = [numpy_helper.from_array(rng.normal(size=y_shape).astype(np_dtype), "r")]
    inputs = [helper.make_tensor_value_info("X", dtype, x_shape)]
    if weights_as_params:
        inits += [numpy_helper.from_array(a.astype(np_dtype), k) for k, a in arrays.items()]
    else:
        inputs += [helper.make_tensor_value_info(k, dtype, list(a.shape)) for k, a in arrays.items()]
    if lengths is not None:
        inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, [B]))
    if states:
        inputs += [helper.make_tensor_value_info(n, dtype, state_shape) for n in names[5:7] if n]
    outputs = [helper.make_tensor_value_info(o, dtype, None) for o in outs] + \
        [helper.make_tensor_value_info("loss", dtype, [])]
    graph = helper.make_graph(nodes, "rnn", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    feeds = {"X": rng.normal(size=x_shape)}
    if not weights_as_params:
        feeds |= arrays
    if lengths is not None:
        feeds["sequence_lens"] = np.asarray(lengths, np.int32)
    if states:
        feeds |= {n: rng.normal(0, 0.5, state_shape) for n in names[5:7] if n}
    return model, {k: (v if k == "sequence_lens" else v.astype(np_dtype)) for k, v in feeds.items()}


CASES = {
    "rnn lengths": ("RNN", dict(lengths=[4, 2, 1])),
    "rnn reverse lengths": ("RNN", dict(direction="reverse", lengths=[3, 4, 1])),
    "lstm bidirectional lengths peepholes states": ("LSTM", dict(direction="bidirectional", lengths=[2, 4, 3],
                                                                 peepholes=True, states=True)),
    "gru bidirectional lengths": ("GRU", dict(direction="bidirectional", lengths=[1, 3, 4], states=True)),
    # the reference evaluator ignores sequence_lens: batch first is checked without them
    "gru bidirectional batch first states": ("GRU", dict(direction="bidirectional", layout=1, states=True)),
    "gru reset after the product": ("GRU", dict(linear_before_reset=1, direction="reverse")),
    "lstm batch first states": ("LSTM", dict(layout=1, states=True)),
    "lstm clip": ("LSTM", dict(clip=0.5)),
    "lstm coupled input and forget gates": ("LSTM", dict(input_forget=1)),
    "rnn leaky relu": ("RNN", dict(activations=["LeakyRelu"], activation_alpha=[0.2])),
    "rnn thresholded relu": ("RNN", dict(activations=["ThresholdedRelu"], activation_alpha=[0.3])),
    "rnn elu, softsign both ways": ("RNN", dict(direction="bidirectional", activations=["Elu", "Softsign"],
                                                activation_alpha=[0.7])),
    "gru hard sigmoid, scaled tanh": ("GRU", dict(activations=["HardSigmoid", "ScaledTanh"],
                                                  activation_alpha=[0.3, 1.5], activation_beta=[0.4, 0.7])),
    "lstm affine, relu, softplus": ("LSTM", dict(activations=["Sigmoid", "Softplus", "Affine"],
                                                 activation_alpha=[0.5], activation_beta=[0.1])),
}


def reference(model, feeds, batch_first):
    """onnxruntime's outputs; onnx's reference evaluator's for layout 1, which onnxruntime refuses."""
    if not batch_first:
        return run_ort(model, feeds)
    names = [o.name for o in model.graph.output]
    return dict(zip(names, ReferenceEvaluator(model).run(names, feeds)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_recurrent_layer_runs_like_onnxruntime(case):
    kind, options = CASES[case]
    model, feeds = recurrent(kind, **options)
    graph, weights = import_onnx(model)
    got, want = Plan(graph).run(feeds, weights), reference(model, feeds, batch_first=options.get("layout"))
    for key in want:
        assert_close(got[key], want[key], rtol=1e-5, atol=1e-5, what=f"{case}: {key}")


@pytest.mark.parametrize("kind, options", [
    ("LSTM", dict(direction="bidirectional", peepholes=True, states=True)),
    ("GRU", dict(direction="reverse", lengths=[2, 4, 3])),
    ("GRU", dict(linear_before_reset=1, layout=1)),
    ("RNN", dict(direction="bidirectional", lengths=[4, 1, 3])),
])
def test_recurrent_layer_gradients_match_finite_differences_in_float64(tmp_path, kind, options):
    """Backpropagation through time (the scan's VJP) to the weights, the sequence and the initial states."""
    model, feeds = recurrent(kind, dtype=TensorProto.DOUBLE, weights_as_params=True, **options)
    path = tmp_path / "rnn.onnx"
    onnx.save(model, str(path))
    m = nngraph.load(str(path))
    params = {k: v for k, v in m.init().items() if k != "r"}
    assert sorted(params) == sorted(["W", "R", "B"] + (["P"] if options.get("peepholes") else []))
    fixed = {k: v for k, v in m.init().items() if k == "r"}
    wrt = [k for k in feeds if k != "sequence_lens"]
    loss_plan = Plan(m.inference_graph())
    grads = Plan(m.grad_graph(of="loss", wrt=sorted(params) + wrt)).run(feeds, params | fixed)
    for name in sorted(params):
        numeric = central_difference(lambda p: loss_plan.run(feeds, p | fixed)["loss"], params, name)
        assert_close(grads[f"grad:{name}"], numeric, rtol=1e-6, atol=1e-8, what=name)
    for name in wrt:
        numeric = central_difference(lambda a: loss_plan.run(a, params | fixed)["loss"], feeds, name)
        assert_close(grads[f"grad:{name}"], numeric, rtol=1e-6, atol=1e-8, what=name)


def test_symbolic_steps_and_batch_bind_at_run_time():
    """X [T, N, 2] with both sizes symbolic: the default states are zeros [N, H] made at run time."""
    model, _ = recurrent("LSTM", direction="bidirectional")
    x_type = model.graph.input[0].type.tensor_type
    for dim, symbol in zip(x_type.shape.dim[:2], ("T", "N")):
        dim.ClearField("dim_value")
        dim.dim_param = symbol
    del model.graph.node[1:]                    # Y, Y_h, Y_c only: the loss's r has fixed sizes
    del model.graph.output[3:]
    del model.graph.initializer[:]
    graph, weights = import_onnx(model)
    assert graph.inputs[0].shape == ("T", "N", IN)
    plan = Plan(graph)
    for steps, batch in ((5, 2), (1, 4)):
        feeds = recurrent("LSTM", direction="bidirectional")[1] | \
            {"X": np.random.default_rng(steps).normal(size=(steps, batch, IN)).astype(np.float32)}
        got, want = plan.run(feeds, weights), run_ort(model, feeds)
        for key in want:
            assert got[key].shape == want[key].shape
            assert_close(got[key], want[key], rtol=1e-5, atol=1e-5, what=f"{key} T={steps} N={batch}")


def test_each_direction_is_a_scan_over_a_cell_drawn_as_one():
    graph, _ = import_onnx(recurrent("LSTM", direction="bidirectional", peepholes=True)[0])
    scans = [n for n in graph.nodes if n.op == "scan"]
    assert [n.attrs["reverse"] for n in scans] == [False, True]
    for scan in scans:
        body = scan.attrs["body"]
        assert [v.name for v in body.inputs] == ["h", "c", "x", "wx", "wh", "b", "p"]
        assert {body.scope_labels[n.scope] for n in body.nodes} == {"lstm_cell[3]"}
        assert {graph.scope_labels[n.scope] for n in body.nodes} == {"lstm_cell[3]"}


@pytest.mark.parametrize("attrs, reason", [
    (dict(activations=["Gelu"]), "RNN: activation Gelu"),
    (dict(activations=["Tanh", "Tanh", "Tanh"]), "RNN: 3 activations for 1 direction(s)"),
    (dict(direction="sideways"), "RNN: direction sideways"),
])
def test_unsupported_recurrent_attributes_are_refused_by_name(attrs, reason):
    model, _ = recurrent("RNN", **attrs)
    with pytest.raises(UnsupportedONNX) as err:
        import_onnx(model)
    assert [f"{p.op}: {p.reason}" for p in err.value.problems] == [reason]
