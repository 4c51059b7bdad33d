// ONNX models for the benchmarks: one-node models for the kernel benchmarks (Gemm / MatMul,
// Conv, ConvTranspose, MaxPool) and whole graphs (GraphBuilder: the ResNet-18 of resnet18.mjs),
// with float32 weights as initializers. Serialized by the library's own ONNX writer
// (src/onnx/proto_write.ts, through simdnet/onnx's encodeModel), the one exportOnnx uses.
import { encodeModel, f32 } from "../dist/onnx.js";

/** Mark a number as a float attribute even when it is integral (alpha: 1.0). */
export { f32 };

const asFloat32 = (data) => (data instanceof Float32Array ? data : Float32Array.from(data));

/**
 * A ModelProto with one node.
 * @param {object} m
 * @param {string} m.op           op_type ("Conv", "Gemm", "MatMul", "MaxPool", "ConvTranspose")
 * @param {{name:string, dims:number[]}[]} m.inputs   graph inputs (fed at run time)
 * @param {{name:string, dims:number[], data:Float32Array}[]} [m.initializers]  constant inputs
 * @param {{name:string, dims:number[]}[]} m.outputs
 * @param {string[]} [m.nodeInputs]  node inputs in order (default: inputs then initializers)
 * @param {Record<string, number|number[]|string>} [m.attrs]
 * @param {number} [m.opset]
 * @returns {Uint8Array} the serialized model
 */
export function onnxModel({ op, inputs, initializers = [], outputs, nodeInputs, attrs = {}, opset = 13 }) {
  const node = { op, name: `${op.toLowerCase()}0`, inputs: nodeInputs ?? [...inputs, ...initializers].map((t) => t.name), outputs: outputs.map((o) => o.name), attrs };
  return onnxGraphModel({ nodes: [node], inputs, initializers, outputs, opset });
}

/**
 * A ModelProto with a graph of nodes, in topological order (each node's inputs are graph
 * inputs, initializers or earlier nodes' outputs).
 * @param {object} m
 * @param {{op:string, name?:string, inputs:string[], outputs:string[], attrs?:object}[]} m.nodes
 * @param {{name:string, dims:number[]}[]} m.inputs   graph inputs (fed at run time)
 * @param {{name:string, dims:number[], data:Float32Array}[]} [m.initializers]  constants
 * @param {{name:string, dims:number[]}[]} m.outputs  (dims may hold 0 for "unknown")
 * @param {number} [m.opset]
 * @returns {Uint8Array} the serialized model
 */
export function onnxGraphModel({ nodes, inputs, initializers = [], outputs, opset = 13 }) {
  return encodeModel({
    name: "g",
    producer: "simdnet-bench",
    nodes: nodes.map((n, i) => ({ ...n, name: n.name ?? `${n.op.toLowerCase()}${i}` })),
    inputs,
    outputs,
    initializers: initializers.map((t) => ({ name: t.name, dims: t.dims, data: asFloat32(t.data) })),
    opset,
  });
}

/**
 * Builds a graph node by node: `b.node(op, inputs, attrs)` returns the name of its (one) output,
 * `b.init(name, dims, data)` adds a constant and returns its name, `b.finish(outputName, dims)`
 * serializes the model with the graph input(s) given to the constructor.
 *
 *   const b = new GraphBuilder([{ name: "X", dims: [1, 3, 224, 224] }]);
 *   const w = b.init("conv1.weight", [64, 3, 7, 7], data);
 *   const y = b.node("Relu", [b.node("Conv", ["X", w], { kernel_shape: [7, 7], ... })]);
 *   const bytes = b.finish(y, [1, 64, 112, 112]);
 */
export class GraphBuilder {
  constructor(inputs, { opset = 13 } = {}) {
    this.inputs = inputs;
    this.opset = opset;
    this.nodes = [];
    this.initializers = [];
    this.count = new Map();
  }
  init(name, dims, data) {
    const size = dims.reduce((a, b) => a * b, 1);
    if (data.length !== size) throw new Error(`onnx: initializer ${name} has ${data.length} values for dims [${dims}]`);
    this.initializers.push({ name, dims, data });
    return name;
  }
  node(op, inputs, attrs = {}, name = null) {
    const k = this.count.get(op) ?? 0;
    this.count.set(op, k + 1);
    const n = name ?? `${op.toLowerCase()}${k}`;
    this.nodes.push({ op, name: n, inputs, outputs: [n], attrs });
    return n;
  }
  finish(output, dims) {
    if (!this.nodes.some((n) => n.outputs.includes(output))) throw new Error(`onnx: no node makes ${output}`);
    return onnxGraphModel({ nodes: this.nodes, inputs: this.inputs, initializers: this.initializers, outputs: [{ name: output, dims }], opset: this.opset });
  }
}

/** Conv output size along one axis (ONNX / PyTorch, floor mode). */
export const convOut = (size, k, stride, pad, dil = 1) => Math.floor((size + 2 * pad - dil * (k - 1) - 1) / stride) + 1;

/** Y = alpha * op(A) * op(B) + beta * C (ONNX Gemm), A and B fed at run time, C optional
 *  ([M,N] or broadcastable, fed as "C"). */
export function gemmModel({ M, N, K, transA = false, transB = false, alpha = 1, beta = 1, cDims = null }) {
  const inputs = [
    { name: "A", dims: transA ? [K, M] : [M, K] },
    { name: "B", dims: transB ? [N, K] : [K, N] },
  ];
  if (cDims) inputs.push({ name: "C", dims: cDims });
  return onnxModel({
    op: "Gemm",
    inputs,
    outputs: [{ name: "Y", dims: [M, N] }],
    attrs: { transA: transA ? 1 : 0, transB: transB ? 1 : 0, alpha: f32(alpha), beta: f32(beta) },
  });
}

/** Conv of a fed NCHW input by constant OIHW weights (no bias). */
export function convModel({ xShape, w, wShape, stride = 1, pad = 0, dilation = 1, groups = 1 }) {
  const [N, , H, W] = xShape;
  const [O, , kh, kw] = wShape;
  const yShape = [N, O, convOut(H, kh, stride, pad, dilation), convOut(W, kw, stride, pad, dilation)];
  return {
    yShape,
    bytes: onnxModel({
      op: "Conv",
      inputs: [{ name: "X", dims: xShape }],
      initializers: [{ name: "W", dims: wShape, data: w }],
      outputs: [{ name: "Y", dims: yShape }],
      attrs: { kernel_shape: [kh, kw], strides: [stride, stride], pads: [pad, pad, pad, pad], dilations: [dilation, dilation], group: groups },
    }),
  };
}

/**
 * The gradient of a convolution with respect to its input, as ONNX ConvTranspose: the same
 * OIHW weight read as ConvTranspose's [C_in, C_out/group, kh, kw]; output_padding restores the
 * rows a strided forward conv dropped.
 */
export function convTransposeModel({ gShape, w, wShape, xShape, stride = 1, pad = 0, dilation = 1 }) {
  const [, , kh, kw] = wShape;
  const [, , Ho, Wo] = gShape;
  const op = (size, o, k) => size - ((o - 1) * stride - 2 * pad + dilation * (k - 1) + 1);
  return onnxModel({
    op: "ConvTranspose",
    inputs: [{ name: "G", dims: gShape }],
    initializers: [{ name: "W", dims: wShape, data: w }],
    outputs: [{ name: "DX", dims: xShape }],
    attrs: {
      kernel_shape: [kh, kw],
      strides: [stride, stride],
      pads: [pad, pad, pad, pad],
      dilations: [dilation, dilation],
      output_padding: [op(xShape[2], Ho, kh), op(xShape[3], Wo, kw)],
    },
  });
}

/** MaxPool (floor mode) of a fed NCHW input. */
export function maxPoolModel({ xShape, k, stride = k, pad = 0 }) {
  const [N, C, H, W] = xShape;
  const yShape = [N, C, convOut(H, k, stride, pad), convOut(W, k, stride, pad)];
  return {
    yShape,
    bytes: onnxModel({
      op: "MaxPool",
      inputs: [{ name: "X", dims: xShape }],
      outputs: [{ name: "Y", dims: yShape }],
      attrs: { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad] },
    }),
  };
}
