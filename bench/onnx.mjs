// A tiny ONNX model writer, straight in the protobuf wire format (no protobuf library, no model
// files to ship): one-node models for the kernel benchmarks (Gemm / MatMul, Conv, ConvTranspose,
// MaxPool) and whole graphs (GraphBuilder: the ResNet-18 of resnet18.mjs), with float32 weights
// as initializers.
//
// Wire format: each field is a key varint (field_number << 3 | wire_type) followed by a varint
// (type 0), 8 bytes (type 1), a length-delimited payload (type 2) or 4 bytes (type 5).
// Field numbers are those of onnx/onnx.proto (IR version 8, opset 13).

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

class Writer {
  constructor() {
    this.chunks = [];
    this.length = 0;
  }
  bytes(b) {
    this.chunks.push(b);
    this.length += b.length;
    return this;
  }
  varint(v) {
    // int64 fields: negative values are written as 10-byte two's complement varints.
    let n = BigInt.asUintN(64, BigInt(v));
    const out = [];
    do {
      let byte = Number(n & 0x7fn);
      n >>= 7n;
      if (n !== 0n) byte |= 0x80;
      out.push(byte);
    } while (n !== 0n);
    return this.bytes(Uint8Array.from(out));
  }
  key(field, wire) {
    return this.varint((field << 3) | wire);
  }
  int(field, v) {
    return this.key(field, WIRE_VARINT).varint(v);
  }
  float(field, v) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    return this.key(field, WIRE_FIXED32).bytes(b);
  }
  len(field, payload) {
    return this.key(field, WIRE_LEN).varint(payload.length).bytes(payload);
  }
  string(field, s) {
    return this.len(field, new TextEncoder().encode(s));
  }
  message(field, w) {
    return this.len(field, w.finish());
  }
  /** packed repeated int64 */
  packedInts(field, values) {
    const w = new Writer();
    for (const v of values) w.varint(v);
    return this.len(field, w.finish());
  }
  finish() {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

const FLOAT = 1; // TensorProto.DataType.FLOAT
const ATTR = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 };

// AttributeProto: name=1, f=2, i=3, s=4, floats=7, ints=8, type=20
function attribute(name, value) {
  const w = new Writer().string(1, name);
  if (Array.isArray(value)) {
    // ints as unpacked repeated int64 (the form onnx writers emit)
    for (const v of value) w.int(8, v);
    w.int(20, ATTR.INTS);
  } else if (typeof value === "string") {
    w.string(4, value).int(20, ATTR.STRING);
  } else if (Number.isInteger(value) && !(value instanceof Number)) {
    w.int(3, value).int(20, ATTR.INT);
  } else {
    w.float(2, Number(value)).int(20, ATTR.FLOAT);
  }
  return w;
}

/** Mark a number as a float attribute even when it is integral (alpha: 1.0). */
export const f32 = (v) => new Number(v);

// TensorProto: dims=1, data_type=2, name=8, raw_data=9 (little-endian float32)
function tensorProto(name, dims, data) {
  const f = data instanceof Float32Array ? data : Float32Array.from(data);
  const raw = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
  return new Writer().packedInts(1, dims).int(2, FLOAT).string(8, name).len(9, raw);
}

// ValueInfoProto: name=1, type=2 -> TypeProto.tensor_type=1 -> {elem_type=1, shape=2 -> dim=1 -> dim_value=1}
function valueInfo(name, dims) {
  const shape = new Writer();
  for (const d of dims) shape.message(1, new Writer().int(1, d));
  const tt = new Writer().int(1, FLOAT).message(2, shape);
  const type = new Writer().message(1, tt);
  return new Writer().string(1, name).message(2, type);
}

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
  // GraphProto: node=1, name=2, initializer=5, input=11, output=12
  const graph = new Writer();
  nodes.forEach((n, i) => {
    // NodeProto: input=1, output=2, name=3, op_type=4, attribute=5
    const node = new Writer();
    for (const name of n.inputs) node.string(1, name);
    for (const name of n.outputs) node.string(2, name);
    node.string(3, n.name ?? `${n.op.toLowerCase()}${i}`).string(4, n.op);
    for (const [k, v] of Object.entries(n.attrs ?? {})) node.message(5, attribute(k, v));
    graph.message(1, node);
  });
  graph.string(2, "g");
  for (const t of initializers) graph.message(5, tensorProto(t.name, t.dims, t.data));
  for (const t of inputs) graph.message(11, valueInfo(t.name, t.dims));
  for (const t of outputs) graph.message(12, valueInfo(t.name, t.dims));

  // ModelProto: ir_version=1, producer_name=2, graph=7, opset_import=8 -> {domain=1, version=2}
  return new Writer()
    .int(1, 8)
    .string(2, "simdnet-bench")
    .message(7, graph)
    .message(8, new Writer().string(1, "").int(2, opset))
    .finish();
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
