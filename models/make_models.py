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
  ``luma-4d.onnx`` (output [N,1,H,W]), ``constant.onnx`` (constant depth, costs nothing), and
  the broken ``bad-rank.onnx`` (rank-3 input) and ``bad-channels.onnx`` (one input channel).

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
        constant_model(os.path.join(d, "constant.onnx"))
        bad_rank_model(os.path.join(d, "bad-rank.onnx"))
        bad_channels_model(os.path.join(d, "bad-channels.onnx"))


if __name__ == "__main__":
    main()
