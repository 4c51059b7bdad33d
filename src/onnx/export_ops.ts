// How each op of the op table is written as ONNX nodes (the exporter's half of docs/ops.md).
// An emitter gets the names of its inputs' values, the op's attributes (defaults filled in) and
// the shapes, adds nodes through `g`, and returns the name of the value that holds the op's
// output. An op that ONNX cannot express exactly as we compute it throws OnnxError, which the
// layer that called the op turns into a message naming the layer and the shapes.
import { nearestTable } from "../index.js";
import { OnnxError } from "./import.js";
import { f32, type AttrValue } from "./proto_write.js";

export interface GraphSink {
  opset: number;
  /** adds a node with one output; returns the output's name */
  node(op: string, inputs: string[], attrs?: Record<string, AttrValue>): string;
  /** adds a constant (an initializer); returns its name */
  constant(what: string, dims: number[], data: Float32Array | BigInt64Array): string;
}

export interface OpCall {
  /** value names of the op's inputs (null: an optional input not given) */
  inputs: (string | null)[];
  inShapes: (number[] | null)[];
  outShape: number[];
  attrs: any;
}

type Emitter = (g: GraphSink, c: OpCall) => string;

const pair = (v: number | number[]): [number, number] => (Array.isArray(v) ? [v[0], v[1]] : [v, v]);
const given = (xs: (string | null)[]) => xs.filter((x): x is string => x !== null);
const int64 = (values: number[]) => BigInt64Array.from(values.map(BigInt));

function refuse(op: string, why: string): never {
  throw new OnnxError(`${op} ${why}`);
}

/** ceil_mode only where it changes the output size (the traced output, PyTorch's size, against
 *  the floor-mode size). ONNX sizes a ceil-mode pool without PyTorch's rule that drops a last
 *  window starting in the right padding, but where that rule applies the ceil size equals the
 *  floor size, and ceil_mode 0 is written. The clipped border windows agree (ONNX Runtime
 *  averages them with PyTorch's divisors: checked in test/onnx_export.test.mjs). */
function ceilMode(c: OpCall, k: [number, number], s: [number, number], p: [number, number], d: [number, number]): number {
  if (!c.attrs.ceil_mode) return 0;
  const floorOut = (size: number, i: number) => Math.floor((size + 2 * p[i] - d[i] * (k[i] - 1) - 1) / s[i]) + 1;
  const [, , H, W] = c.inShapes[0]!;
  const [, , OH, OW] = c.outShape;
  return OH !== floorOut(H, 0) || OW !== floorOut(W, 1) ? 1 : 0;
}

function windowAttrs(c: OpCall) {
  const k = pair(c.attrs.kernel_size);
  const s = c.attrs.stride == null || (Array.isArray(c.attrs.stride) && !c.attrs.stride.length) ? k : pair(c.attrs.stride);
  const p = pair(c.attrs.padding ?? 0);
  const d = pair(c.attrs.dilation ?? 1);
  return { k, s, p, d };
}

/** Adaptive average pooling as constant averaging matrices: Y = A_h · X · A_wᵀ (PyTorch's windows
 *  [floor(o·in/out), ceil((o+1)·in/out))), where no plain AveragePool has the same windows. */
function adaptiveMatrix(inSize: number, outSize: number, transpose: boolean): Float32Array {
  const m = new Float32Array(inSize * outSize);
  for (let o = 0; o < outSize; o++) {
    const start = Math.floor((o * inSize) / outSize), end = Math.ceil(((o + 1) * inSize) / outSize);
    for (let i = start; i < end; i++) m[transpose ? i * outSize + o : o * inSize + i] = 1 / (end - start);
  }
  return m;
}

function upsample(g: GraphSink, c: OpCall, mode: "nearest" | "linear"): string {
  const [x] = c.inputs as string[];
  const [N, C, H, W] = c.inShapes[0]!;
  const [, , OH, OW] = c.outShape;
  const sf: [number, number] | null = c.attrs.scale_factor == null ? null : pair(c.attrs.scale_factor);
  if (mode === "nearest") {
    // PyTorch's legacy nearest takes floor(o * scale) in float32; ONNX's floor(o / (out/in))
    // agrees where the output is a whole multiple of the input; elsewhere gather the rows and
    // columns our own index tables pick (the same bits in any runtime).
    const rows = nearestTable(H, OH, sf?.[0]), cols = nearestTable(W, OW, sf?.[1]);
    const whole = (inS: number, outS: number, t: Int32Array) => outS % inS === 0 && t.every((v, o) => v === Math.floor((o * inS) / outS));
    if (!(whole(H, OH, rows) && whole(W, OW, cols))) {
      const r = g.node("Gather", [x, g.constant("rows", [OH], int64([...rows]))], { axis: 2 });
      return g.node("Gather", [r, g.constant("cols", [OW], int64([...cols]))], { axis: 3 });
    }
    const sizes = g.constant("sizes", [4], int64([N, C, OH, OW]));
    return g.node("Resize", [x, "", "", sizes], { mode: "nearest", coordinate_transformation_mode: "asymmetric", nearest_mode: "floor" });
  }
  const coords = c.attrs.align_corners ? "align_corners" : "half_pixel";
  // given scale factors map coordinates by 1/scale (as PyTorch does), a given size by in/out
  const scaleOrSize = sf ? ["", g.constant("scales", [4], Float32Array.from([1, 1, sf[0], sf[1]]))] : ["", "", g.constant("sizes", [4], int64([N, C, OH, OW]))];
  return g.node("Resize", [x, ...scaleOrSize], { mode: "linear", coordinate_transformation_mode: coords });
}

/** A mean over `axes` keeping them (the axes moved from an attribute to an input in opset 18). */
function reduceMean(g: GraphSink, x: string, axes: number[]): string {
  if (g.opset >= 18) return g.node("ReduceMean", [x, g.constant("axes", [axes.length], int64(axes))], { keepdims: 1 });
  return g.node("ReduceMean", [x], { axes, keepdims: 1 });
}

/** Batch norm with the batch's statistics, as PyTorch in training: the mean and the biased
 *  variance over every axis but the channels. */
function batchStatsNorm(g: GraphSink, c: OpCall): string {
  const [x, , , w, b] = c.inputs;
  const shape = c.inShapes[0]!;
  const axes = shape.map((_, i) => i).filter((i) => i !== 1);
  const centred = g.node("Sub", [x!, reduceMean(g, x!, axes)]);
  const vari = reduceMean(g, g.node("Mul", [centred, centred]), axes);
  const std = g.node("Sqrt", [g.node("Add", [vari, g.constant("eps", [], Float32Array.of(c.attrs.eps))])]);
  let y = g.node("Div", [centred, std]);
  // [C] -> [C, 1, ...] to broadcast over the positions
  const perChannel = (v: string) => (shape.length > 2 ? g.node("Reshape", [v, g.constant("shape", [shape.length - 1], int64([shape[1], ...Array(shape.length - 2).fill(1)]))]) : v);
  if (w) y = g.node("Mul", [y, perChannel(w)]);
  if (b) y = g.node("Add", [y, perChannel(b)]);
  return y;
}

const unary = (op: string): Emitter => (g, c) => g.node(op, [c.inputs[0]!]);

export const emitters: Record<string, Emitter> = {
  add: (g, c) => g.node("Add", c.inputs as string[]),
  relu: unary("Relu"),
  sigmoid: unary("Sigmoid"),
  tanh: unary("Tanh"),
  leaky_relu: (g, c) => g.node("LeakyRelu", [c.inputs[0]!], { alpha: f32(c.attrs.negative_slope) }),
  softmax: (g, c) => g.node("Softmax", [c.inputs[0]!], { axis: c.attrs.dim }),
  log_softmax: (g, c) => g.node("LogSoftmax", [c.inputs[0]!], { axis: c.attrs.dim }),
  // a reshape that keeps the batch (flatten) says so with 0 (copy the input's dimension), so the
  // file does not fix the batch size in a Reshape: runtimes that take other batch sizes can
  reshape: (g, c) => {
    const keepsBatch = c.outShape.length > 1 && c.inShapes[0]!.length > 1 && c.outShape[0] === c.inShapes[0]![0];
    return g.node("Reshape", [c.inputs[0]!, g.constant("shape", [c.outShape.length], int64(keepsBatch ? [0, ...c.outShape.slice(1)] : c.outShape))]);
  },
  cat: (g, c) => g.node("Concat", c.inputs as string[], { axis: c.attrs.dim }),
  mul_scalar: (g, c) => g.node("Mul", [c.inputs[0]!, g.constant("scalar", [], Float32Array.of(c.attrs.scalar))]),
  sum: (g, c) => g.node("ReduceSum", [c.inputs[0]!], { keepdims: 0 }),
  mean: (g, c) => g.node("ReduceMean", [c.inputs[0]!], { keepdims: 0 }),

  bias_add: (g, c) => {
    const [x, b] = c.inputs as string[];
    const rank = c.inShapes[0]!.length;
    // [C] -> [C, 1, ...]: broadcast over the positions, as ONNX's Add aligns trailing axes
    const shaped = rank > 2 ? g.node("Reshape", [b, g.constant("shape", [rank - 1], int64([c.inShapes[1]![0], ...Array(rank - 2).fill(1)]))]) : b;
    return g.node("Add", [x, shaped]);
  },

  linear: (g, c) => g.node("Gemm", given(c.inputs), { transB: 1 }),
  matmul: (g, c) => g.node("Gemm", given(c.inputs), { transA: c.attrs.transA ? 1 : 0, transB: c.attrs.transB ? 1 : 0 }),
  gemm: (g, c) => g.node("Gemm", given(c.inputs), { transA: c.attrs.transA ? 1 : 0, transB: c.attrs.transB ? 1 : 0, alpha: f32(c.attrs.alpha), beta: f32(c.attrs.beta) }),

  conv2d: (g, c) => {
    const [ph, pw] = pair(c.attrs.padding);
    return g.node("Conv", given(c.inputs), {
      kernel_shape: c.inShapes[1]!.slice(2),
      strides: pair(c.attrs.stride),
      pads: [ph, pw, ph, pw],
      dilations: pair(c.attrs.dilation),
      group: c.attrs.groups,
    });
  },
  // conv2d_fused (a model calling it itself: the automatic fusion is off while exportOnnx
  // traces): Conv, then the epilogue as the unfused ops, y*scale + shift + residual, Relu
  conv2d_fused: (g, c) => {
    const [x, w, b, scale, shift, residual] = c.inputs;
    const [ph, pw] = pair(c.attrs.padding);
    let y = g.node("Conv", given([x, w, b]), {
      kernel_shape: c.inShapes[1]!.slice(2),
      strides: pair(c.attrs.stride),
      pads: [ph, pw, ph, pw],
      dilations: pair(c.attrs.dilation),
      group: c.attrs.groups,
    });
    // [O] -> [O, 1, 1]: broadcast over the positions
    const perChannel = (v: string) => g.node("Reshape", [v, g.constant("shape", [3], int64([c.outShape[1], 1, 1]))]);
    if (scale) y = g.node("Mul", [y, perChannel(scale)]);
    if (shift) y = g.node("Add", [y, perChannel(shift)]);
    if (residual) y = g.node("Add", [y, residual]);
    return c.attrs.relu ? g.node("Relu", [y]) : y;
  },
  conv_transpose2d: (g, c) => {
    const [ph, pw] = pair(c.attrs.padding);
    return g.node("ConvTranspose", given(c.inputs), {
      kernel_shape: c.inShapes[1]!.slice(2),
      strides: pair(c.attrs.stride),
      pads: [ph, pw, ph, pw],
      dilations: pair(c.attrs.dilation),
      group: c.attrs.groups,
      output_padding: pair(c.attrs.output_padding),
    });
  },

  max_pool2d: (g, c) => {
    const { k, s, p, d } = windowAttrs(c);
    return g.node("MaxPool", [c.inputs[0]!], { kernel_shape: k, strides: s, pads: [p[0], p[1], p[0], p[1]], dilations: d, ceil_mode: ceilMode(c, k, s, p, d) });
  },
  avg_pool2d: (g, c) => {
    const { k, s, p } = windowAttrs(c);
    const ceil = ceilMode(c, k, s, p, [1, 1]);
    return g.node("AveragePool", [c.inputs[0]!], { kernel_shape: k, strides: s, pads: [p[0], p[1], p[0], p[1]], ceil_mode: ceil, count_include_pad: c.attrs.count_include_pad ? 1 : 0 });
  },
  global_avg_pool2d: unary("GlobalAveragePool"),
  adaptive_avg_pool2d: (g, c) => {
    const [x] = c.inputs as string[];
    const [, , H, W] = c.inShapes[0]!;
    const [, , OH, OW] = c.outShape;
    if (OH === 1 && OW === 1) return g.node("GlobalAveragePool", [x]);
    if (H % OH === 0 && W % OW === 0) {
      const k = [H / OH, W / OW];
      return g.node("AveragePool", [x], { kernel_shape: k, strides: k });
    }
    const cols = g.node("MatMul", [x, g.constant("cols", [W, OW], adaptiveMatrix(W, OW, true))]);
    return g.node("MatMul", [g.constant("rows", [OH, H], adaptiveMatrix(H, OH, false)), cols]);
  },

  batch_norm: (g, c) => {
    const [x, mean, vari, w, b] = c.inputs;
    // training (also a batch norm without running statistics in eval mode) normalises with the
    // batch's statistics; updating the running ones does not change the output
    if (c.attrs.training) return batchStatsNorm(g, c);
    const C = c.inShapes[0]![1];
    const weight = w ?? g.constant("weight", [C], new Float32Array(C).fill(1));
    const bias = b ?? g.constant("bias", [C], new Float32Array(C));
    return g.node("BatchNormalization", [x!, weight, bias, mean!, vari!], { epsilon: f32(c.attrs.eps) });
  },
  // batch_norm_fused (a model calling it itself: the automatic fusion is off while exportOnnx
  // traces): batch_norm's nodes, then the residual's Add and the Relu
  batch_norm_fused: (g, c) => {
    const residual = c.inputs[5];
    let y = emitters.batch_norm(g, { ...c, inputs: c.inputs.slice(0, 5), inShapes: c.inShapes.slice(0, 5) });
    if (residual) y = g.node("Add", [y, residual]);
    return c.attrs.relu ? g.node("Relu", [y]) : y;
  },
  local_response_norm: (g, c) => {
    // ONNX's window is [c - floor((size-1)/2), c + ceil((size-1)/2)], PyTorch's
    // [c - floor(size/2), c + floor((size-1)/2)]: the same only for odd sizes. Both divide
    // alpha by size and add k (ONNX's bias).
    if (c.attrs.size % 2 === 0) refuse("local_response_norm", `of even size ${c.attrs.size} centres its channel window differently from ONNX's LRN; only odd sizes are exported`);
    if (c.inShapes[0]!.length !== 4) refuse("local_response_norm", `on a rank-${c.inShapes[0]!.length} input is not exported (ONNX Runtime's LRN takes [N, C, H, W])`);
    return g.node("LRN", [c.inputs[0]!], { size: c.attrs.size, alpha: f32(c.attrs.alpha), beta: f32(c.attrs.beta), bias: f32(c.attrs.k) });
  },
  dropout: (_g, c) => {
    if (c.attrs.training) refuse("dropout", "in training mode (a random mask) is not exported; exportOnnx writes the inference graph, where dropout is the identity");
    return c.inputs[0]!;
  },

  upsample_nearest2d: (g, c) => upsample(g, c, "nearest"),
  upsample_bilinear2d: (g, c) => upsample(g, c, "linear"),
};
