#!/usr/bin/env python3
"""Writes parallax's depth models as ONNX graphs.

* The default model (``--default PATH``, committed as ``models/default-depth.onnx``): a classical
  depth-cue model with NO learned weights. It follows the Depth Anything contract (input
  ``image`` f32 [N,3,H,W], ImageNet-normalised RGB; output ``depth`` f32 [N,H,W], larger =
  nearer) and estimates relative inverse depth from two hand-written cues:

  - a vertical position prior (75 %): lower in the frame is nearer, as on a ground plane;
  - local contrast (25 %): in-focus, detailed regions are usually the subject, nearer than a
    defocused background; it is the mean absolute difference between the grey image and its
    5x5 blur, averaged over 15x15 pixels and divided by the frame's maximum.

  The sum is smoothed with a 9x9 box filter. It is a cheap stand-in so that a fresh machine
  converts a video end to end with no download; real depth comes from Depth Anything V2
  (see the README's "Depth models").

* The tiny models the tests use (``--test-models DIR``): ``luma.onnx`` (depth = the pixel's
  brightness, dynamic size), ``luma-fixed.onnx`` (the same with a fixed [1,3,70,126] input),
  ``luma-4d.onnx`` (output [N,1,H,W]), ``luma-fp16.onnx`` (luma with float16 input and output,
  as an fp16 export), ``constant.onnx`` (constant depth, costs nothing), and
  the broken ``bad-rank.onnx`` (rank-3 input) and ``bad-channels.onnx`` (one input channel).

* The tiny temporal models (same ``--test-models DIR``), on the temporal contract (input
  ``image`` f32 [N,T,3,H,W], output ``depth`` [N,T,H,W] or [N,T,1,H,W]):
  ``temporal-luma.onnx`` (dynamic T) and ``temporal-fixed.onnx`` (T fixed at 8, output
  [1,8,1,H,W]) give each frame's brightness on a scale and shift that depend on the whole
  window's mean brightness m: depth = grey * (0.5 + 6 m) + 10 m. Windows of a clip whose
  brightness drifts come out on different scales, so unaligned windows visibly jump, as a real
  temporal model's windows do. The broken ``temporal-bad-channels.onnx`` (one channel),
  ``temporal-bad-output.onnx`` (output [N,H,W]) and ``temporal-t-mismatch.onnx`` (8 frames in,
  4 out) are refused.

Needs ``pip install onnx numpy``. The output is deterministic.
"""

import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def const(name, array):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def image_input(shape=("batch", 3, "height", "width")):
    return helper.make_tensor_value_info("image", TensorProto.FLOAT, list(shape))


def depth_output(shape=("batch", "height", "width")):
    return helper.make_tensor_value_info("depth", TensorProto.FLOAT, list(shape))


def grey_nodes(out="grey"):
    """image (normalised) -> RGB in 0..1 -> grey [N,1,H,W] (BT.601 weights)."""
    inits = [
        const("std", np.array(STD).reshape(1, 3, 1, 1)),
        const("mean", np.array(MEAN).reshape(1, 3, 1, 1)),
        const("grey_w", np.array([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)),
    ]
    nodes = [
        helper.make_node("Mul", ["image", "std"], ["rgb_s"]),
        helper.make_node("Add", ["rgb_s", "mean"], ["rgb"]),
        helper.make_node("Conv", ["rgb", "grey_w"], [out]),
    ]
    return nodes, inits


def box(name, src, dst, k_h, k_w):
    """A separable box blur with edge-aware averaging (padding not counted)."""
    return [
        helper.make_node(
            "AveragePool", [src], [f"{name}_h"], kernel_shape=[1, k_w],
            pads=[0, k_w // 2, 0, k_w // 2], count_include_pad=0,
        ),
        helper.make_node(
            "AveragePool", [f"{name}_h"], [dst], kernel_shape=[k_h, 1],
            pads=[k_h // 2, 0, k_h // 2, 0], count_include_pad=0,
        ),
    ]


def save(graph, path, doc):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    model.producer_name = "parallax models/make_models.py"
    model.doc_string = doc
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    onnx.save(model, path)


def default_model(path):
    nodes, inits = grey_nodes()
    inits += [
        const("zero", 0.0),
        const("one", 1.0),
        const("eps", 1e-6),
        const("w_vertical", 0.75),
        const("w_contrast", 0.25),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "h_index"),
        numpy_helper.from_array(np.array([1, 1, -1, 1], dtype=np.int64), "ramp_shape"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "channel_axis"),
    ]
    # Vertical prior: 0 at the top row, ~1 at the bottom, whatever the height.
    nodes += [
        helper.make_node("Shape", ["image"], ["shape"]),
        helper.make_node("Gather", ["shape", "h_index"], ["h_1"]),
        helper.make_node("Squeeze", ["h_1"], ["h_i"]),
        helper.make_node("Cast", ["h_i"], ["h_f"], to=TensorProto.FLOAT),
        helper.make_node("Range", ["zero", "h_f", "one"], ["rows"]),
        helper.make_node("Div", ["rows", "h_f"], ["ramp"]),
        helper.make_node("Reshape", ["ramp", "ramp_shape"], ["ramp4"]),
    ]
    # Local contrast, normalised by the frame's maximum.
    nodes += box("fine", "grey", "grey_blur", 5, 5)
    nodes += [
        helper.make_node("Sub", ["grey", "grey_blur"], ["detail_s"]),
        helper.make_node("Abs", ["detail_s"], ["detail"]),
    ]
    nodes += box("energy", "detail", "contrast", 15, 15)
    nodes += [
        helper.make_node("ReduceMax", ["contrast"], ["contrast_max"], axes=[2, 3], keepdims=1),
        helper.make_node("Add", ["contrast_max", "eps"], ["contrast_den"]),
        helper.make_node("Div", ["contrast", "contrast_den"], ["contrast_n"]),
        helper.make_node("Mul", ["contrast_n", "w_contrast"], ["c_part"]),
        helper.make_node("Mul", ["ramp4", "w_vertical"], ["v_part"]),
        helper.make_node("Add", ["c_part", "v_part"], ["cues"]),
    ]
    nodes += box("smooth", "cues", "depth4", 9, 9)
    nodes.append(helper.make_node("Squeeze", ["depth4", "channel_axis"], ["depth"]))
    graph = helper.make_graph(nodes, "parallax-depth-cues", [image_input()], [depth_output()], inits)
    save(
        graph,
        path,
        "Classical depth cues (vertical position prior + local contrast); no learned weights.",
    )


def luma_model(path, input_shape=("batch", 3, "height", "width"), four_d=False):
    nodes, inits = grey_nodes("grey")
    if four_d:
        nodes.append(helper.make_node("Identity", ["grey"], ["depth"]))
        n, _, h, w = input_shape
        out = depth_output((n, 1, h, w))
    else:
        inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "channel_axis"))
        nodes.append(helper.make_node("Squeeze", ["grey", "channel_axis"], ["depth"]))
        n, _, h, w = input_shape
        out = depth_output((n, h, w))
    graph = helper.make_graph(nodes, "luma", [image_input(input_shape)], [out], inits)
    save(graph, path, "Test model: depth = brightness.")


def constant_model(path):
    # Only the input's shape is read: one fill of the output, no pass over the image.
    inits = [numpy_helper.from_array(np.array([0, 2, 3], dtype=np.int64), "nhw")]
    nodes = [
        helper.make_node("Shape", ["image"], ["shape"]),
        helper.make_node("Gather", ["shape", "nhw"], ["out_shape"]),
        helper.make_node(
            "ConstantOfShape", ["out_shape"], ["depth"],
            value=helper.make_tensor("value", TensorProto.FLOAT, [1], [0.5]),
        ),
    ]
    graph = helper.make_graph(nodes, "constant", [image_input()], [depth_output()], inits)
    save(graph, path, "Test model: constant depth 0.5 at the input's size (costs nothing).")


def bad_rank_model(path):
    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "width"])
    nodes = [helper.make_node("Identity", ["image"], ["depth"])]
    out = helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["batch", 3, "width"])
    save(helper.make_graph(nodes, "bad-rank", [inp], [out]), path, "Broken test model.")


def bad_channels_model(path):
    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, "height", "width"])
    nodes = [helper.make_node("Identity", ["image"], ["depth"])]
    out = helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["batch", 1, "height", "width"])
    save(helper.make_graph(nodes, "bad-channels", [inp], [out]), path, "Broken test model.")


def temporal_input(shape):
    return helper.make_tensor_value_info("image", TensorProto.FLOAT, list(shape))


def temporal_luma_model(path, input_shape=("batch", "frames", 3, "height", "width"), five_d=False):
    i64 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)
    inits = [
        const("std", np.array(STD).reshape(1, 3, 1, 1)),
        const("mean", np.array(MEAN).reshape(1, 3, 1, 1)),
        const("grey_w", np.array([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)),
        const("base", 0.5),
        const("gain", 6.0),
        const("lift", 10.0),
        i64("zero", [0]), i64("two", [2]), i64("three", [3]), i64("five", [5]),
        i64("frames_rgb", [-1, 3]),
    ]
    nodes = [
        # [N,T,3,H,W] -> [N*T,3,H,W] -> grey [N*T,1,H,W] -> [N,T,H,W]
        helper.make_node("Shape", ["image"], ["shape"]),
        helper.make_node("Slice", ["shape", "zero", "two"], ["nt"]),
        helper.make_node("Slice", ["shape", "three", "five"], ["hw"]),
        helper.make_node("Concat", ["frames_rgb", "hw"], ["flat_shape"], axis=0),
        helper.make_node("Concat", ["nt", "hw"], ["out_shape"], axis=0),
        helper.make_node("Reshape", ["image", "flat_shape"], ["flat"]),
        helper.make_node("Mul", ["flat", "std"], ["rgb_s"]),
        helper.make_node("Add", ["rgb_s", "mean"], ["rgb"]),
        helper.make_node("Conv", ["rgb", "grey_w"], ["grey_flat"]),
        helper.make_node("Reshape", ["grey_flat", "out_shape"], ["grey"]),
        # The window's mean brightness sets its scale and shift.
        helper.make_node("ReduceMean", ["grey"], ["m"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Mul", ["m", "gain"], ["m_gain"]),
        helper.make_node("Add", ["m_gain", "base"], ["scale"]),
        helper.make_node("Mul", ["m", "lift"], ["shift"]),
        helper.make_node("Mul", ["grey", "scale"], ["scaled"]),
    ]
    n, t, _, h, w = input_shape
    if five_d:
        inits.append(i64("channel_axis", [2]))
        nodes += [
            helper.make_node("Add", ["scaled", "shift"], ["depth4"]),
            helper.make_node("Unsqueeze", ["depth4", "channel_axis"], ["depth"]),
        ]
        out = depth_output((n, t, 1, h, w))
    else:
        nodes.append(helper.make_node("Add", ["scaled", "shift"], ["depth"]))
        out = depth_output((n, t, h, w))
    graph = helper.make_graph(nodes, "temporal-luma", [temporal_input(input_shape)], [out], inits)
    save(
        graph,
        path,
        "Temporal test model: depth = brightness on a scale and shift set by the window's mean.",
    )


def temporal_broken_model(path, kind):
    i64 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)
    if kind == "channels":
        inp = temporal_input(("batch", "frames", 1, "height", "width"))
        inits = [i64("channel_axis", [2])]
        nodes = [helper.make_node("Squeeze", ["image", "channel_axis"], ["depth"])]
        out = depth_output(("batch", "frames", "height", "width"))
    elif kind == "output":
        inp = temporal_input(("batch", "frames", 3, "height", "width"))
        inits = []
        nodes = [helper.make_node("ReduceMean", ["image"], ["depth"], axes=[1, 2], keepdims=0)]
        out = depth_output(("batch", "height", "width"))
    else:
        inp = temporal_input((1, 8, 3, "height", "width"))
        inits = [i64("zero", [0]), i64("four", [4]), i64("one", [1])]
        nodes = [
            helper.make_node("Slice", ["image", "zero", "four", "one"], ["first4"]),
            helper.make_node("ReduceMean", ["first4"], ["depth"], axes=[2], keepdims=0),
        ]
        out = depth_output((1, 4, "height", "width"))
    graph = helper.make_graph(nodes, f"temporal-bad-{kind}", [inp], [out], inits)
    save(graph, path, "Broken temporal test model.")


def fp16_interface(src, dst):
    """The model at ``src`` with a float16 input and output (casts at both ends): how an fp16
    export looks from outside, for the engine's half-precision path."""
    model = onnx.load(src)
    g = model.graph
    inp, out = g.input[0].name, g.output[0].name
    for node in g.node:
        node.input[:] = [f"{inp}_f32" if i == inp else i for i in node.input]
        node.output[:] = [f"{out}_f32" if o == out else o for o in node.output]
    g.node.insert(0, helper.make_node("Cast", [inp], [f"{inp}_f32"], to=TensorProto.FLOAT))
    g.node.append(helper.make_node("Cast", [f"{out}_f32"], [out], to=TensorProto.FLOAT16))
    g.input[0].type.tensor_type.elem_type = TensorProto.FLOAT16
    g.output[0].type.tensor_type.elem_type = TensorProto.FLOAT16
    model.doc_string += " (float16 input and output)"
    onnx.checker.check_model(model)
    onnx.save(model, dst)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--default", metavar="PATH", help="write the default depth-cue model here")
    p.add_argument("--test-models", metavar="DIR", help="write the tests' tiny models into DIR")
    args = p.parse_args()
    if not args.default and not args.test_models:
        p.error("nothing to do: give --default PATH and/or --test-models DIR")
    if args.default:
        default_model(args.default)
    if args.test_models:
        d = args.test_models
        luma_model(os.path.join(d, "luma.onnx"))
        luma_model(os.path.join(d, "luma-fixed.onnx"), input_shape=(1, 3, 70, 126))
        luma_model(os.path.join(d, "luma-4d.onnx"), four_d=True)
        fp16_interface(os.path.join(d, "luma.onnx"), os.path.join(d, "luma-fp16.onnx"))
        constant_model(os.path.join(d, "constant.onnx"))
        bad_rank_model(os.path.join(d, "bad-rank.onnx"))
        bad_channels_model(os.path.join(d, "bad-channels.onnx"))
        temporal_luma_model(os.path.join(d, "temporal-luma.onnx"))
        temporal_luma_model(
            os.path.join(d, "temporal-fixed.onnx"),
            input_shape=(1, 8, 3, "height", "width"),
            five_d=True,
        )
        temporal_broken_model(os.path.join(d, "temporal-bad-channels.onnx"), "channels")
        temporal_broken_model(os.path.join(d, "temporal-bad-output.onnx"), "output")
        temporal_broken_model(os.path.join(d, "temporal-t-mismatch.onnx"), "t-mismatch")


if __name__ == "__main__":
    main()
