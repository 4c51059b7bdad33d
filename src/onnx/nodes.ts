// ONNX operators mapped onto simdnet's ops: one entry per supported op type with the attributes
// it takes, which inputs must be constants, a check of its attributes at load (so an unsupported
// case is an error before anything runs) and how it runs. Data tensors go through the library's
// ops (autograd and the WebGPU kernels come with them); constants (shapes, pads, scales) are
// plain arrays (consts.ts).
import {
  Tensor, add, batch_norm, cat, conv2d, conv_transpose2d, gemm, global_avg_pool2d, interpolate, leaky_relu,
  local_response_norm, log_softmax, matmul, max_pool2d, avg_pool2d, relu, sigmoid, softmax, tanh,
} from "../index.js";
import { OnnxError, DT, dtypeName, type OnnxAttribute, type OnnxGraph, type OnnxNode, type OnnxTensor } from "./proto_read.js";
import { Const, MAX_CONST, constOf, arith, axisOf, concat, gather, reshapeTarget, slice, squeezeDims, transpose, unsqueezeDims } from "./consts.js";
import { binary, constantPad, resizeLinearAsymmetricOp, type BinaryKind } from "./ops.js";

export type Value = Tensor | Const;

/** What a node sees when it runs. */
export interface NodeRun {
  node: OnnxNode;
  opset: number;
  training: boolean;
  inputs: (Value | null)[];
  /** a float tensor for input i (a constant becomes one) */
  tensor(i: number): Tensor;
  /** input i as a constant (an error naming the node if it is a data tensor) */
  konst(i: number, what: string): Const;
  has(i: number): boolean;
  /** the nn.Dropout layer made for this node at load (it follows train()/eval()) */
  dropout(p: number): Tensor;
  /** runs a subgraph (If branch) in the current scope; returns its outputs */
  subgraph(g: OnnxGraph): Value[];
}

export interface OpSpec {
  attrs: string[];
  /** inputs that must be constants (known at load, or computed from shapes) */
  constInputs?: number[];
  /** inputs (data positions) whose initializers are batch-norm statistics: buffers, not parameters */
  bufferInputs?: number[];
  /** false: never folded at load even when every input is a constant (data ops) */
  foldable?: boolean;
  check?(node: OnnxNode, opset: number): void;
  run(r: NodeRun): Value[];
}

// ---- attributes ----

export function nodeName(n: OnnxNode): string {
  return `node '${n.name || n.outputs[0] || "?"}' (${n.opType})`;
}

function bad(n: OnnxNode, msg: string): never {
  throw new OnnxError(`onnx: ${nodeName(n)}: ${msg}`);
}

function attr(n: OnnxNode, name: string): OnnxAttribute | undefined {
  return n.attributes.get(name);
}

export function int(n: OnnxNode, name: string, def: number): number {
  const a = attr(n, name);
  if (!a) return def;
  if (a.i === undefined) bad(n, `attribute '${name}' must be an int`);
  return a.i;
}

export function ints(n: OnnxNode, name: string, def: number[] | null): number[] | null {
  const a = attr(n, name);
  return a ? a.ints : def;
}

function float(n: OnnxNode, name: string, def: number): number {
  const a = attr(n, name);
  if (!a) return def;
  if (a.f === undefined) bad(n, `attribute '${name}' must be a float`);
  return a.f;
}

function str(n: OnnxNode, name: string, def: string): string {
  const a = attr(n, name);
  return a?.s ?? def;
}

function oneOf(n: OnnxNode, name: string, v: string | number, allowed: (string | number)[], why = "") {
  if (!allowed.includes(v)) bad(n, `attribute ${name} = ${JSON.stringify(v)} is not supported; supported: ${allowed.map((x) => JSON.stringify(x)).join(", ")}${why}`);
}

const shapeOf = (v: Value) => (v instanceof Tensor ? [...v.shape] : v.dims);

/** A TensorProto as a constant. */
export function constFromTensor(t: OnnxTensor): Const {
  const isFloat = t.dataType === DT.FLOAT || t.dataType === DT.DOUBLE;
  return new Const([...t.dims], t.data, isFloat);
}

// ---- spatial ops: kernel, strides, pads (ONNX [begin..., end...]) ----

interface Window {
  k: [number, number];
  s: [number, number];
  d: [number, number];
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
}

function checkRank4(r: NodeRun, x: Tensor) {
  if (x.rank !== 4) bad(r.node, `supports 2-d (NCHW, rank 4) inputs only, got ${x.rank === 0 ? "a scalar" : `[${x.shape.join(", ")}]`}`);
}

/** Kernel, strides, dilations and pads of a Conv or pool node on input x (auto_pad resolved). */
function windowOf(r: NodeRun, x: Tensor, kernel: number[]): Window {
  const n = r.node;
  const two = (v: number[] | null, def: number, what: string): [number, number] => {
    const a = v ?? [def, def];
    if (a.length !== 2) bad(n, `${what} must have 2 values for a 2-d input, got ${JSON.stringify(a)}`);
    return [a[0], a[1]];
  };
  const k = two(kernel, 1, "kernel_shape"), s = two(ints(n, "strides", null), 1, "strides"), d = two(ints(n, "dilations", null), 1, "dilations");
  const autoPad = str(n, "auto_pad", "NOTSET");
  let pads: [number, number, number, number] = [0, 0, 0, 0];
  if (autoPad === "NOTSET") {
    const p = ints(n, "pads", null) ?? [0, 0, 0, 0];
    if (p.length !== 4 || p.some((v) => v < 0)) bad(n, `pads must be 4 values >= 0 [top, left, bottom, right], got ${JSON.stringify(p)}`);
    pads = p as [number, number, number, number];
  } else if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
    for (const i of [0, 1]) {
      const size = x.shape[2 + i], out = Math.ceil(size / s[i]);
      const total = Math.max(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - size);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === "SAME_UPPER" ? small : total - small;
      pads[2 + i] = total - pads[i];
    }
  }
  return { k, s, d, pads };
}

const symmetric = (p: number[]) => p[0] === p[2] && p[1] === p[3];

/** x padded with value where the pads are not symmetric (the library's ops pad symmetrically). */
function padAsymmetric(x: Tensor, w: Window, value: number): { x: Tensor; padding: [number, number] } {
  if (symmetric(w.pads)) return { x, padding: [w.pads[0], w.pads[1]] };
  const [t, l, b, rr] = w.pads;
  return { x: constantPad(x, [0, 0, t, l, 0, 0, b, rr], value), padding: [0, 0] };
}

const WINDOW_ATTRS = ["auto_pad", "kernel_shape", "strides", "pads", "dilations"];

function checkAutoPad(n: OnnxNode) {
  oneOf(n, "auto_pad", str(n, "auto_pad", "NOTSET"), ["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"]);
}

// ---- the table ----

const unary = (f: (x: Tensor) => Tensor): OpSpec => ({ attrs: [], foldable: false, run: (r) => [f(r.tensor(0))] });

function elementwise(kind: "Add" | "Sub" | "Mul" | "Div" | "Pow"): OpSpec {
  return {
    attrs: [],
    run(r) {
      const [a, b] = r.inputs as Value[];
      if (!(a instanceof Tensor) && !(b instanceof Tensor)) return [arith(kind, a, b)];
      const x = r.tensor(0), y = r.tensor(1);
      if (kind === "Add" && x.rank === y.rank && x.shape.every((d, i) => d === y.shape[i])) return [add(x, y)];
      return [binary(kind.toLowerCase() as BinaryKind, x, y)];
    },
  };
}

function softmaxLike(f: (x: Tensor, dim: number) => Tensor): OpSpec {
  return {
    attrs: ["axis"],
    foldable: false,
    run(r) {
      const x = r.tensor(0);
      const axis = axisOf(int(r.node, "axis", r.opset >= 13 ? -1 : 1), x.rank, `${nodeName(r.node)}: axis`);
      // before opset 13 the input is seen as 2-d [before axis, from axis on]
      if (r.opset >= 13 || axis === x.rank - 1) return [f(x, axis)];
      const outer = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
      return [f(x.reshape([outer, x.size / outer]), 1).reshape([...x.shape])];
    },
  };
}

function reshapeValue(v: Value, dims: number[]): Value {
  return v instanceof Tensor ? v.reshape(dims) : new Const(dims, v.data, v.isFloat);
}

/** Resize / Upsample: nearest (asymmetric, floor: PyTorch's nearest) or linear with half_pixel,
 *  pytorch_half_pixel (align_corners false) or align_corners as interpolate(); linear asymmetric
 *  (Upsample's linear) as the JS op resizeLinearAsymmetricOp. Only H and W scale. */
function resize(r: NodeRun, scales: number[] | null, sizes: number[] | null): Value[] {
  const n = r.node, x = r.tensor(0);
  checkRank4(r, x);
  const mode = str(n, "mode", "nearest");
  const coord = n.opType === "Upsample" ? "asymmetric" : str(n, "coordinate_transformation_mode", "half_pixel");
  let size: [number, number], scale: [number, number] | null = null;
  if (sizes) {
    if (sizes.length !== 4 || sizes[0] !== x.shape[0] || sizes[1] !== x.shape[1]) bad(n, `sizes ${JSON.stringify(sizes)} must keep N and C of the input [${x.shape.join(", ")}]`);
    size = [sizes[2], sizes[3]];
  } else if (scales) {
    if (scales.length !== 4 || scales[0] !== 1 || scales[1] !== 1 || !(scales[2] > 0 && scales[3] > 0)) bad(n, `scales ${JSON.stringify(scales)} must be [1, 1, h, w] (only H and W scale, by positive factors)`);
    scale = [scales[2], scales[3]];
    size = [Math.floor(x.shape[2] * scale[0]), Math.floor(x.shape[3] * scale[1])];
  } else bad(n, "has neither scales nor sizes");
  if (mode === "linear" && coord === "asymmetric") {
    const scales2 = scale ?? [size[0] / x.shape[2], size[1] / x.shape[3]];
    return [resizeLinearAsymmetricOp.apply([x], { size, scales: scales2 })];
  }
  const opts: Record<string, unknown> = { mode: mode === "nearest" ? "nearest" : "bilinear" };
  if (mode === "linear") opts.align_corners = coord === "align_corners";
  // the coordinate rules follow the scale when the file gives one, the sizes otherwise (as ONNX)
  if (scale && coord !== "align_corners") opts.scale_factor = scale;
  else opts.size = size;
  return [interpolate(x, opts as any)];
}

function checkResize(n: OnnxNode) {
  const mode = str(n, "mode", "nearest");
  oneOf(n, "mode", mode, ["nearest", "linear"]);
  if (n.opType === "Upsample") return;
  const coord = str(n, "coordinate_transformation_mode", "half_pixel");
  if (mode === "nearest") {
    oneOf(n, "coordinate_transformation_mode", coord, ["asymmetric"], " with mode nearest (PyTorch's nearest)");
    oneOf(n, "nearest_mode", str(n, "nearest_mode", "round_prefer_floor"), ["floor"], " with mode nearest");
  } else oneOf(n, "coordinate_transformation_mode", coord, ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"], " with mode linear");
  oneOf(n, "exclude_outside", int(n, "exclude_outside", 0), [0]);
  oneOf(n, "antialias", int(n, "antialias", 0), [0]);
  if (attr(n, "axes")) bad(n, "attribute axes is not supported (scales and sizes must cover all 4 dimensions)");
  oneOf(n, "keep_aspect_ratio_policy", str(n, "keep_aspect_ratio_policy", "stretch"), ["stretch"]);
}

function pool(kind: "max" | "avg"): OpSpec {
  const extra = kind === "max" ? ["storage_order", "ceil_mode"] : ["count_include_pad", "ceil_mode"];
  return {
    attrs: [...WINDOW_ATTRS, ...extra],
    foldable: false,
    check(n) {
      checkAutoPad(n);
      if (!ints(n, "kernel_shape", null)) bad(n, "has no kernel_shape");
      if (kind === "max") oneOf(n, "storage_order", int(n, "storage_order", 0), [0]);
      if (kind === "avg" && ints(n, "dilations", null)?.some((d) => d !== 1)) bad(n, "dilations other than 1 are not supported for AveragePool");
    },
    run(r) {
      const n = r.node, x = r.tensor(0), kernel = ints(n, "kernel_shape", null)!;
      const ceil_mode = int(n, "ceil_mode", 0) === 1;
      if (kind === "avg" && x.rank === 5) return [avgPoolDepth(r, x, kernel, ceil_mode)];
      checkRank4(r, x);
      const w = windowOf(r, x, kernel);
      if (!symmetric(w.pads)) bad(n, `pads ${JSON.stringify(w.pads)} are not symmetric (top = bottom and left = right), which is not supported for pooling`);
      const padding: [number, number] = [w.pads[0], w.pads[1]];
      if (kind === "max") return [max_pool2d(x, { kernel_size: w.k, stride: w.s, padding, dilation: w.d, ceil_mode })];
      return [avg_pool2d(x, { kernel_size: w.k, stride: w.s, padding, ceil_mode, count_include_pad: int(n, "count_include_pad", 0) === 1 })];
    },
  };
}

/** A 3-d average pool over depth only (kernel [k, 1, 1]): torch's LocalResponseNorm graph pools
 *  the squared channels this way. It is a 2-d pool of [N, C, D, H*W] with kernel [k, 1]. */
function avgPoolDepth(r: NodeRun, x: Tensor, kernel: number[], ceil_mode: boolean): Tensor {
  const n = r.node;
  const s = ints(n, "strides", null) ?? [1, 1, 1], p = ints(n, "pads", null) ?? [0, 0, 0, 0, 0, 0];
  if (str(n, "auto_pad", "NOTSET") !== "NOTSET" || kernel.length !== 3 || kernel[1] !== 1 || kernel[2] !== 1 || s[1] !== 1 || s[2] !== 1 || p.length !== 6 || p[1] || p[2] || p[4] || p[5] || p[0] !== p[3])
    bad(n, `a rank-5 input is supported only for a pool over depth (kernel [k, 1, 1], strides [s, 1, 1], symmetric depth pads), got kernel ${JSON.stringify(kernel)}, strides ${JSON.stringify(s)}, pads ${JSON.stringify(p)}`);
  const [N, C, D, H, W] = x.shape;
  const y = avg_pool2d(x.reshape([N, C, D, H * W]), { kernel_size: [kernel[0], 1], stride: [s[0], 1], padding: [p[0], 0], ceil_mode, count_include_pad: int(n, "count_include_pad", 0) === 1 });
  return y.reshape([N, C, y.shape[2], H, W]);
}

function conv(transposed: boolean): OpSpec {
  return {
    attrs: [...WINDOW_ATTRS, "group", ...(transposed ? ["output_padding", "output_shape"] : [])],
    foldable: false,
    check(n) {
      checkAutoPad(n);
      if (transposed && attr(n, "output_shape")) bad(n, "attribute output_shape is not supported (give pads and output_padding)");
      if (transposed && str(n, "auto_pad", "NOTSET") !== "NOTSET") bad(n, `auto_pad ${str(n, "auto_pad", "")} is not supported for ConvTranspose (give pads)`);
    },
    run(r) {
      const n = r.node, x = r.tensor(0), w = r.tensor(1), b = r.has(2) ? r.tensor(2) : null;
      checkRank4(r, x);
      if (w.rank !== 4) bad(n, `weight must be rank 4, got [${w.shape.join(", ")}]`);
      const kernel = ints(n, "kernel_shape", null) ?? [w.shape[2], w.shape[3]];
      if (kernel[0] !== w.shape[2] || kernel[1] !== w.shape[3]) bad(n, `kernel_shape ${JSON.stringify(kernel)} does not match the weight [${w.shape.join(", ")}]`);
      const win = windowOf(r, x, kernel);
      const groups = int(n, "group", 1);
      if (transposed) {
        if (!symmetric(win.pads)) bad(n, `pads ${JSON.stringify(win.pads)} are not symmetric, which is not supported for ConvTranspose`);
        const op = ints(n, "output_padding", null) ?? [0, 0];
        return [conv_transpose2d(x, w, b, { stride: win.s, padding: [win.pads[0], win.pads[1]], dilation: win.d, groups, output_padding: op })];
      }
      const p = padAsymmetric(x, win, 0);
      return [conv2d(p.x, w, b, { stride: win.s, padding: p.padding, dilation: win.d, groups })];
    },
  };
}

function padsOf(r: NodeRun, rank: number): { pads: number[]; value: number } {
  const n = r.node;
  let pads: number[], value = 0;
  if (r.opset < 11) {
    pads = ints(n, "pads", null) ?? bad(n, "has no pads");
    value = float(n, "value", 0);
  } else {
    pads = r.konst(1, "pads").ints(`${nodeName(n)}: pads`);
    if (r.has(2)) value = r.konst(2, "constant_value").scalar(`${nodeName(n)}: constant_value`);
    if (r.has(3)) {
      // opset 18: pads for the listed axes only
      const axes = r.konst(3, "axes").ints(`${nodeName(n)}: axes`).map((a) => axisOf(a, rank, `${nodeName(n)}: axis`));
      const full = new Array(2 * rank).fill(0);
      axes.forEach((a, i) => ((full[a] = pads[i]), (full[rank + a] = pads[axes.length + i])));
      pads = full;
    }
  }
  if (pads.length !== 2 * rank) bad(n, `pads ${JSON.stringify(pads)} must have ${2 * rank} values for a rank-${rank} input`);
  return { pads, value };
}

/** A Dropout node's ratio: an attribute before opset 12, a constant input after. */
export function dropoutRatio(n: OnnxNode, opset: number, konst: (i: number) => Const, hasInput: boolean): number {
  const p = opset < 12 ? float(n, "ratio", 0.5) : hasInput ? konst(1).scalar(`${nodeName(n)}: ratio`) : 0.5;
  if (!(p >= 0 && p < 1)) bad(n, `ratio ${p} must be in [0, 1)`);
  return p;
}

export const OPS: Record<string, OpSpec> = {
  Conv: conv(false),
  ConvTranspose: conv(true),
  Gemm: {
    attrs: ["alpha", "beta", "transA", "transB"],
    foldable: false,
    run(r) {
      const n = r.node;
      return [gemm(r.tensor(0), r.tensor(1), r.has(2) ? r.tensor(2) : null, {
        alpha: float(n, "alpha", 1), beta: float(n, "beta", 1), transA: int(n, "transA", 0) === 1, transB: int(n, "transB", 0) === 1,
      })];
    },
  },
  MatMul: {
    attrs: [],
    foldable: false,
    run(r) {
      const a = r.tensor(0), b = r.tensor(1);
      if (b.rank !== 2 || a.rank < 2) bad(r.node, `supports [..., K] x [K, N] only, got [${a.shape.join(", ")}] x [${b.shape.join(", ")}]`);
      if (a.rank === 2) return [matmul(a, b)];
      const lead = a.shape.slice(0, -1);
      return [matmul(a.reshape([-1, a.shape[a.rank - 1]]), b).reshape([...lead, b.shape[1]])];
    },
  },
  MaxPool: pool("max"),
  AveragePool: pool("avg"),
  GlobalAveragePool: {
    attrs: [],
    foldable: false,
    run(r) {
      const x = r.tensor(0);
      checkRank4(r, x);
      return [global_avg_pool2d(x)];
    },
  },
  BatchNormalization: {
    attrs: ["epsilon", "momentum", "training_mode", "spatial"],
    bufferInputs: [3, 4],
    foldable: false,
    check(n) {
      oneOf(n, "spatial", int(n, "spatial", 1), [1]);
    },
    run(r) {
      const n = r.node;
      // ONNX's momentum weighs the old running value; PyTorch's (and the op's) the new batch
      return [batch_norm(r.tensor(0), r.tensor(3), r.tensor(4), r.tensor(1), r.tensor(2), {
        training: r.training, momentum: 1 - float(n, "momentum", 0.9), eps: float(n, "epsilon", 1e-5),
      })];
    },
  },
  LRN: {
    attrs: ["alpha", "beta", "bias", "size"],
    foldable: false,
    check(n) {
      if (!attr(n, "size")) bad(n, "has no size");
    },
    run(r) {
      const n = r.node;
      return [local_response_norm(r.tensor(0), int(n, "size", 0), { alpha: float(n, "alpha", 1e-4), beta: float(n, "beta", 0.75), k: float(n, "bias", 1) })];
    },
  },
  Relu: unary(relu),
  LeakyRelu: { attrs: ["alpha"], foldable: false, run: (r) => [leaky_relu(r.tensor(0), float(r.node, "alpha", 0.01))] },
  Sigmoid: unary(sigmoid),
  Tanh: unary(tanh),
  Softmax: softmaxLike(softmax),
  LogSoftmax: softmaxLike(log_softmax),
  Add: elementwise("Add"),
  Sub: elementwise("Sub"),
  Mul: elementwise("Mul"),
  Div: elementwise("Div"),
  Pow: elementwise("Pow"),
  Equal: {
    attrs: [],
    constInputs: [0, 1],
    run: (r) => [arith("Equal", r.konst(0, "A"), r.konst(1, "B"))],
  },
  Concat: {
    attrs: ["axis"],
    run(r) {
      const axis = int(r.node, "axis", Number.NaN);
      if (Number.isNaN(axis)) bad(r.node, "has no axis");
      const vs = r.inputs.filter((v): v is Value => !!v);
      if (vs.every((v) => !(v instanceof Tensor))) return [concat(vs as Const[], axis)];
      const ts = r.inputs.map((_, i) => r.tensor(i));
      return [cat(ts, axisOf(axis, ts[0].rank, `${nodeName(r.node)}: axis`))];
    },
  },
  Flatten: {
    attrs: ["axis"],
    run(r) {
      const v = r.inputs[0]!, s = shapeOf(v);
      const axis = int(r.node, "axis", 1);
      const a = axis < 0 ? axis + s.length : axis;
      if (a < 0 || a > s.length) bad(r.node, `axis ${axis} is out of range for [${s.join(", ")}]`);
      const outer = s.slice(0, a).reduce((p, d) => p * d, 1);
      return [reshapeValue(v, [outer, s.slice(a).reduce((p, d) => p * d, 1)])];
    },
  },
  Reshape: {
    attrs: ["allowzero", "shape"],
    constInputs: [1],
    run(r) {
      const v = r.inputs[0]!;
      const target = r.opset < 5 ? ints(r.node, "shape", []) ?? [] : r.konst(1, "shape").ints(`${nodeName(r.node)}: shape`);
      return [reshapeValue(v, reshapeTarget(shapeOf(v), target, int(r.node, "allowzero", 0) === 1, nodeName(r.node)))];
    },
  },
  Squeeze: {
    attrs: ["axes"],
    constInputs: [1],
    run(r) {
      const v = r.inputs[0]!;
      const axes = r.opset < 13 ? ints(r.node, "axes", null) : r.has(1) ? r.konst(1, "axes").ints(`${nodeName(r.node)}: axes`) : null;
      return [reshapeValue(v, squeezeDims(shapeOf(v), axes))];
    },
  },
  Unsqueeze: {
    attrs: ["axes"],
    constInputs: [1],
    run(r) {
      const v = r.inputs[0]!;
      const axes = r.opset < 13 ? ints(r.node, "axes", null) : r.konst(1, "axes").ints(`${nodeName(r.node)}: axes`);
      if (!axes) bad(r.node, "has no axes");
      return [reshapeValue(v, unsqueezeDims(shapeOf(v), axes))];
    },
  },
  Pad: {
    attrs: ["mode", "pads", "value"],
    constInputs: [1, 2, 3],
    foldable: false,
    check(n) {
      oneOf(n, "mode", str(n, "mode", "constant"), ["constant"]);
    },
    run(r) {
      const x = r.inputs[0]!;
      const { pads, value } = padsOf(r, shapeOf(x).length);
      if (pads.every((p) => p === 0)) return [x];
      return [constantPad(r.tensor(0), pads, value)];
    },
  },
  Resize: {
    attrs: ["mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a", "exclude_outside", "extrapolation_value", "antialias", "axes", "keep_aspect_ratio_policy"],
    constInputs: [1, 2, 3],
    foldable: false,
    check: checkResize,
    run(r) {
      const scaleAt = r.opset < 11 ? 1 : 2;
      const scales = r.has(scaleAt) && r.konst(scaleAt, "scales").size ? Array.from(r.konst(scaleAt, "scales").data) : null;
      const sizes = r.opset >= 11 && r.has(3) && r.konst(3, "sizes").size ? r.konst(3, "sizes").ints(`${nodeName(r.node)}: sizes`) : null;
      return resize(r, scales, sizes);
    },
  },
  Upsample: {
    attrs: ["mode", "scales"],
    constInputs: [1],
    foldable: false,
    check(n, opset) {
      checkResize(n);
      if (opset < 9 && !attr(n, "scales")?.floats.length) bad(n, "has no scales attribute (opsets 7 and 8)");
    },
    run(r) {
      // opsets 7-8: a scales attribute; 9: a scales input
      const scales = r.opset < 9 ? attr(r.node, "scales")!.floats : Array.from(r.konst(1, "scales").data);
      return resize(r, scales, null);
    },
  },
  Dropout: {
    attrs: ["ratio", "seed"],
    constInputs: [1, 2],
    foldable: false,
    run(r) {
      // the layer's train()/eval() decides, as for nn.Dropout (not the mode the file was exported in)
      return [r.dropout(dropoutRatio(r.node, r.opset, (i) => r.konst(i, "ratio"), r.has(1)))];
    },
  },
  Identity: { attrs: [], run: (r) => [r.inputs[0]!] },
  Constant: {
    attrs: ["value", "value_float", "value_floats", "value_int", "value_ints"],
    check(n) {
      if (n.attributes.size !== 1) bad(n, `needs exactly one of value, value_float(s), value_int(s); has ${[...n.attributes.keys()].join(", ") || "none"}`);
    },
    run(r) {
      const n = r.node;
      const a = [...n.attributes.values()][0];
      if (a.name === "value") return [constFromTensor(a.t ?? bad(n, "value is not a tensor"))];
      if (a.name === "value_float") return [constOf([], [a.f ?? 0], true)];
      if (a.name === "value_floats") return [constOf([a.floats.length], a.floats, true)];
      if (a.name === "value_int") return [constOf([], [a.i ?? 0], false)];
      return [constOf([a.ints.length], a.ints, false)];
    },
  },
  ConstantOfShape: {
    attrs: ["value"],
    constInputs: [0],
    run(r) {
      const dims = r.konst(0, "shape").ints(`${nodeName(r.node)}: shape`);
      const t = attr(r.node, "value")?.t;
      const v = t ? constFromTensor(t) : constOf([1], [0], true);
      const count = dims.reduce((p, d) => p * d, 1);
      if (dims.some((d) => d < 0) || count > MAX_CONST) bad(r.node, `shape [${dims.join(", ")}] is not a small constant`);
      return [constOf(dims, new Array(count).fill(v.data[0] ?? 0), v.isFloat)];
    },
  },
  Shape: {
    attrs: ["start", "end"],
    run(r) {
      const s = shapeOf(r.inputs[0]!);
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + s.length : v, 0), s.length);
      const part = s.slice(clamp(int(r.node, "start", 0)), clamp(int(r.node, "end", s.length)));
      return [constOf([part.length], part, false)];
    },
  },
  Gather: {
    attrs: ["axis"],
    constInputs: [0, 1],
    run: (r) => [gather(r.konst(0, "data"), r.konst(1, "indices"), int(r.node, "axis", 0))],
  },
  Slice: {
    attrs: ["starts", "ends", "axes"],
    constInputs: [0, 1, 2, 3, 4],
    run(r) {
      const n = r.node, what = nodeName(n);
      if (r.opset < 10) return [slice(r.konst(0, "data"), ints(n, "starts", [])!, ints(n, "ends", [])!, ints(n, "axes", null), null)];
      const get = (i: number, name: string) => (r.has(i) ? r.konst(i, name).ints(`${what}: ${name}`, name === "starts" || name === "ends") : null);
      return [slice(r.konst(0, "data"), get(1, "starts")!, get(2, "ends")!, get(3, "axes"), get(4, "steps"))];
    },
  },
  Transpose: {
    attrs: ["perm"],
    constInputs: [0],
    run: (r) => [transpose(r.konst(0, "data"), ints(r.node, "perm", null))],
  },
  Cast: {
    attrs: ["to", "saturate"],
    check(n) {
      const to = int(n, "to", 0);
      if (![DT.FLOAT, DT.DOUBLE, DT.INT64, DT.INT32, DT.INT16, DT.INT8, DT.UINT8, DT.BOOL].includes(to as any)) bad(n, `cast to ${dtypeName(to)} is not supported`);
    },
    run(r) {
      const v = r.inputs[0]!, to = int(r.node, "to", 0);
      const toFloat = to === DT.FLOAT || to === DT.DOUBLE;
      if (v instanceof Tensor) {
        if (!toFloat) bad(r.node, `casts a data tensor [${v.shape.join(", ")}] to ${dtypeName(to)}; only shapes and constants can be cast to integers`);
        return [v];
      }
      if (toFloat) return [constOf(v.dims, v.data, true)];
      const data = Array.from(v.data, (x) => (to === DT.BOOL ? (x ? 1 : 0) : Math.trunc(x)));
      return [constOf(v.dims, data, false)];
    },
  },
  If: {
    attrs: ["then_branch", "else_branch"],
    constInputs: [0],
    // a branch may use tensors: run at forward, where its constant nodes cost microseconds
    foldable: false,
    check(n) {
      if (!attr(n, "then_branch")?.g || !attr(n, "else_branch")?.g) bad(n, "needs then_branch and else_branch graphs");
    },
    run(r) {
      const cond = r.konst(0, "cond").scalar(`${nodeName(r.node)}: cond`);
      return r.subgraph(attr(r.node, cond ? "then_branch" : "else_branch")!.g!);
    },
  },
};

export const SUPPORTED = Object.keys(OPS).sort();
