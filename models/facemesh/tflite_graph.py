"""A TFLite model file, rebuilt as a torch module that runs its graph with torch ops.

BlazeFace and FaceMesh are small convolutional graphs that use a handful of TFLite ops. Rather than
hand-writing each architecture and mapping weights by name, the graph is read from the file itself
(op list, tensor shapes, constant buffers) and replayed op by op in NCHW layout. The result batches,
runs on any torch device and dtype, and exports to ONNX like any other module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tflite
import torch
import torch.nn.functional as F
from torch import nn

_OP_NAMES = {code: name for name, code in vars(tflite.BuiltinOperator).items() if not name.startswith("_")}
_NUMPY_TYPES = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.INT64: np.int64,
}
SUPPORTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "RELU", "PRELU", "PAD", "MAX_POOL_2D", "RESHAPE",
                 "CONCATENATION", "DEQUANTIZE")


class UnsupportedGraphError(ValueError):
    """The file uses an op or option this converter does not implement."""


@dataclass(frozen=True)
class _Op:
    kind: str
    inputs: tuple[int, ...]
    output: int
    options: dict


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding: the extra pixel of an odd total goes after, not before."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _activation(code: int) -> str:
    names = {tflite.ActivationFunctionType.NONE: "none", tflite.ActivationFunctionType.RELU: "relu",
             tflite.ActivationFunctionType.RELU6: "relu6"}
    if code not in names:
        raise UnsupportedGraphError(f"fused activation {code} is not supported")
    return names[code]


class TfliteGraph(nn.Module):
    """Runs a single-subgraph float TFLite model. Input: NCHW float tensors; outputs as the file shapes them
    (NHWC order for 4-D outputs), with the batch axis free."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        model = tflite.Model.GetRootAsModel(Path(path).read_bytes(), 0)
        if model.SubgraphsLength() != 1:
            raise UnsupportedGraphError(f"{path}: expected one subgraph, found {model.SubgraphsLength()}")
        graph = model.Subgraphs(0)
        self.input_ids = [int(i) for i in graph.InputsAsNumpy()]
        self.output_ids = [int(i) for i in graph.OutputsAsNumpy()]
        self.shapes = {i: tuple(int(s) for s in graph.Tensors(i).ShapeAsNumpy())
                       for i in range(graph.TensorsLength()) if graph.Tensors(i).ShapeLength()}
        self.input_shapes = [self.shapes[i] for i in self.input_ids]  # NHWC, as the file declares them
        self.ops: list[_Op] = []
        constants: dict[int, np.ndarray] = {}
        for index in range(graph.TensorsLength()):
            array = _constant(model, graph.Tensors(index))
            if array is not None:
                constants[index] = array
        for index in range(graph.OperatorsLength()):
            op = graph.Operators(index)
            code = model.OperatorCodes(op.OpcodeIndex())
            kind = _OP_NAMES.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
            if kind not in SUPPORTED_OPS:
                raise UnsupportedGraphError(f"{path}: op {kind} is not supported")
            inputs = tuple(int(i) for i in op.InputsAsNumpy() if i >= 0)
            output = int(op.OutputsAsNumpy()[0])
            if kind == "DEQUANTIZE":  # fp16-stored weights: dequantise once, here
                constants[output] = constants[inputs[0]].astype(np.float32)
                continue
            self.ops.append(_Op(kind, inputs, output, _options(kind, op)))
        self._register_constants(constants)

    def _register_constants(self, constants: dict[int, np.ndarray]) -> None:
        """Weights go to torch layout once; index-like constants (paddings, shapes) stay Python values."""
        self.static: dict[int, np.ndarray] = {}
        for op in self.ops:
            for position, tensor in enumerate(op.inputs):
                if tensor not in constants:
                    continue
                array = constants[tensor]
                if op.kind in ("PAD", "RESHAPE") and position == 1:
                    self.static[tensor] = array.astype(np.int64)
                    continue
                if op.kind == "CONV_2D" and position == 1:
                    array = array.transpose(0, 3, 1, 2)  # OHWI -> OIHW
                elif op.kind == "DEPTHWISE_CONV_2D" and position == 1:
                    array = array.transpose(3, 0, 1, 2)  # 1HWC -> C1HW
                elif op.kind == "PRELU":
                    array = array.reshape(-1)  # per channel
                elif array.ndim == 4:
                    array = array.transpose(0, 3, 1, 2)
                self.register_buffer(f"t{tensor}", torch.from_numpy(np.array(array, np.float32)))

    def _value(self, values: dict[int, torch.Tensor], tensor: int) -> torch.Tensor:
        return values[tensor] if tensor in values else getattr(self, f"t{tensor}")

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        values = dict(zip(self.input_ids, inputs, strict=True))
        for op in self.ops:
            values[op.output] = self._run(op, values)
        return tuple(_to_file_layout(values[i]) for i in self.output_ids)

    def _run(self, op: _Op, values: dict[int, torch.Tensor]) -> torch.Tensor:
        x = self._value(values, op.inputs[0])
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            weight, bias = self._value(values, op.inputs[1]), self._value(values, op.inputs[2])
            groups = x.shape[1] if op.kind == "DEPTHWISE_CONV_2D" else 1
            stride = op.options["stride"]
            if op.options["same"]:
                (top, bottom), (left, right) = (_same_padding(x.shape[2 + a], weight.shape[2 + a], stride[a])
                                                for a in (0, 1))
                x = F.pad(x, (left, right, top, bottom))
            return _activate(F.conv2d(x, weight, bias, stride, groups=groups), op.options["activation"])
        if op.kind == "ADD":
            return _activate(x + self._value(values, op.inputs[1]), op.options["activation"])
        if op.kind == "RELU":
            return F.relu(x)
        if op.kind == "PRELU":
            return F.prelu(x, self._value(values, op.inputs[1]))
        if op.kind == "PAD":
            (n0, n1), (h0, h1), (w0, w1), (c0, c1) = self.static[op.inputs[1]].reshape(4, 2).tolist()
            if n0 or n1:
                raise UnsupportedGraphError("padding the batch axis is not supported")
            return F.pad(x, (w0, w1, h0, h1, c0, c1))
        if op.kind == "MAX_POOL_2D":
            kernel, stride = op.options["kernel"], op.options["stride"]
            if op.options["same"]:
                (top, bottom), (left, right) = (_same_padding(x.shape[2 + a], kernel[a], stride[a]) for a in (0, 1))
                x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
            return F.max_pool2d(x, kernel, stride)
        if op.kind == "RESHAPE":  # reshape acts on the NHWC order; the batch axis stays free
            shape = [int(s) for s in self.static[op.inputs[1]]] if len(op.inputs) > 1 else op.options["shape"]
            return _to_file_layout(x).reshape(x.shape[0], *shape[1:])
        if op.kind == "CONCATENATION":
            parts = [self._value(values, i) for i in op.inputs]
            axis = op.options["axis"] % parts[0].dim()
            if parts[0].dim() == 4:
                axis = (0, 2, 3, 1)[axis]  # NHWC axis -> NCHW axis
            return _activate(torch.cat(parts, dim=axis), op.options["activation"])
        raise UnsupportedGraphError(op.kind)


def _to_file_layout(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1) if x.dim() == 4 else x


def _activate(x: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "relu":
        return F.relu(x)
    if activation == "relu6":
        return F.relu6(x)
    return x


def _constant(model: tflite.Model, tensor: tflite.Tensor) -> np.ndarray | None:
    buffer = model.Buffers(tensor.Buffer())
    if buffer is None or buffer.DataLength() == 0:
        return None
    dtype = _NUMPY_TYPES.get(tensor.Type())
    if dtype is None:
        raise UnsupportedGraphError(f"tensor {tensor.Name().decode()} has unsupported type {tensor.Type()}")
    shape = [int(s) for s in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []
    return np.frombuffer(buffer.DataAsNumpy().tobytes(), dtype=dtype).reshape(shape)


def _options(kind: str, op: tflite.Operator) -> dict:
    table = op.BuiltinOptions()
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        options = tflite.Conv2DOptions() if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions()
        options.Init(table.Bytes, table.Pos)
        if options.DilationHFactor() != 1 or options.DilationWFactor() != 1:
            raise UnsupportedGraphError("dilated convolutions are not supported")
        if kind == "DEPTHWISE_CONV_2D" and options.DepthMultiplier() not in (0, 1):
            raise UnsupportedGraphError("depth multipliers above 1 are not supported")
        return {"stride": (options.StrideH(), options.StrideW()), "same": options.Padding() == tflite.Padding.SAME,
                "activation": _activation(options.FusedActivationFunction())}
    if kind == "MAX_POOL_2D":
        options = tflite.Pool2DOptions()
        options.Init(table.Bytes, table.Pos)
        if options.FusedActivationFunction():
            raise UnsupportedGraphError("fused activations on pooling are not supported")
        return {"stride": (options.StrideH(), options.StrideW()), "same": options.Padding() == tflite.Padding.SAME,
                "kernel": (options.FilterHeight(), options.FilterWidth())}
    if kind == "ADD":
        options = tflite.AddOptions()
        options.Init(table.Bytes, table.Pos)
        return {"activation": _activation(options.FusedActivationFunction())}
    if kind == "CONCATENATION":
        options = tflite.ConcatenationOptions()
        options.Init(table.Bytes, table.Pos)
        return {"axis": options.Axis(), "activation": _activation(options.FusedActivationFunction())}
    if kind == "RESHAPE" and table is not None:
        options = tflite.ReshapeOptions()
        options.Init(table.Bytes, table.Pos)
        return {"shape": [int(s) for s in options.NewShapeAsNumpy()]}
    return {}
