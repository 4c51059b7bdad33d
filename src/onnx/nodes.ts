// ONNX operators mapped onto simdnet's ops: one entry per supported op type with the attributes
// it takes, which inputs must be constants, a check of its attributes at load (so an unsupported
// case is an error before anything runs) and how it runs. Data tensors go through the library's
// ops (autograd and the WebGPU kernels come with them); constants (shapes, pads, scales) are
// plain arrays (consts.ts). The spatial ops are in spatial.ts.
import {
  Tensor, add, conv2d, mean, sum, tensor, batch_norm, cat, gemm, global_avg_pool2d, leaky_relu, local_response_norm, log_softmax, matmul, relu, sigmoid, softmax, tanh,
} from "../index.js";
import { DT, dtypeName, type OnnxNode } from "./proto_read.js";
import { Const, MAX_CONST, constOf, arith, axisOf, concat, gather, reshapeTarget, slice, squeezeDims, transpose, unsqueezeDims } from "./consts.js";
import { binary, constantPad, gatherOp, reduceOp, type BinaryKind } from "./ops.js";
import { attr, bad, constFromTensor, float, int, ints, nodeName, oneOf, shapeOf, str, type NodeRun, type OpSpec, type Value } from "./node_api.js";
import { checkRank4, checkResize, conv, pool, resize } from "./spatial.js";

export type { NodeRun, OpSpec, Value };
export { constFromTensor, nodeName, int };

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

/** ReduceSum / ReduceMean: the axes are an attribute (ReduceSum before opset 13, ReduceMean
 *  before 18) or an optional input; none means every axis, unless noop_with_empty_axes. */
function reduce(kind: "sum" | "mean", axesInputFrom: number): OpSpec {
  return {
    attrs: ["axes", "keepdims", "noop_with_empty_axes"],
    constInputs: [1],
    foldable: false,
    run(r) {
      const n = r.node, x = r.tensor(0);
      const given = r.opset < axesInputFrom ? ints(n, "axes", null) : r.has(1) ? r.konst(1, "axes").ints(`${nodeName(n)}: axes`) : null;
      if (!given?.length && int(n, "noop_with_empty_axes", 0) === 1) return [x];
      const axes = given?.length ? given.map((a) => axisOf(a, x.rank, `${nodeName(n)}: axis`)) : x.shape.map((_, i) => i);
      if (new Set(axes).size !== axes.length) bad(n, `axes ${JSON.stringify(given)} name an axis twice`);
      const keep = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const outShape = int(n, "keepdims", 1) === 1 ? keep : x.shape.filter((_, i) => !axes.includes(i));
      // every axis: the library's sum / mean (a scalar); otherwise onnx_reduce (axes kept)
      const y = axes.length === x.rank ? (kind === "sum" ? sum(x) : mean(x)) : reduceOp.apply([x], { axes: [...axes].sort((a, b) => a - b), mean: kind === "mean" });
      return [y.reshape(outShape)];
    },
  };
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
      if (a.rank === 2 && b.rank > 2 && a.shape[1] === b.shape[b.rank - 2]) {
        // [M, K] x [..., K, N] (the exporter's adaptive pooling, A_h · X): a 1x1 convolution
        // with the K rows as channels and the leading dimensions as the batch
        const [M, K] = a.shape, N = b.shape[b.rank - 1], lead = b.shape.slice(0, -2);
        const y = conv2d(b.reshape([-1, K, N, 1]), a.reshape([M, K, 1, 1]));
        return [y.reshape([...lead, M, N])];
      }
      if (b.rank !== 2 || a.rank < 2) bad(r.node, `supports [..., K] x [K, N] and [M, K] x [..., K, N] only, got [${a.shape.join(", ")}] x [${b.shape.join(", ")}]`);
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
  // x ** 0.5 (onnx_binary's pow): the exporter writes Sqrt for a batch norm's batch statistics
  Sqrt: {
    attrs: [],
    run(r) {
      const v = r.inputs[0]!;
      if (!(v instanceof Tensor)) return [constOf(v.dims, Array.from(v.data, Math.sqrt), true)];
      return [binary("pow", v, tensor([0.5], [], v.engine))];
    },
  },
  ReduceSum: reduce("sum", 13),
  ReduceMean: reduce("mean", 18),
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
    constInputs: [1],
    run(r) {
      const data = r.inputs[0]!, indices = r.konst(1, "indices"), axis = int(r.node, "axis", 0);
      if (!(data instanceof Tensor)) return [gather(data, indices, axis)];
      // a data tensor at constant indices (the exporter's nearest upsampling at uneven scales)
      const a = axisOf(axis, data.rank, `${nodeName(r.node)}: axis`), n = data.shape[a];
      const idx = indices.ints(`${nodeName(r.node)}: indices`).map((i) => (i < 0 ? i + n : i));
      if (idx.some((i) => i < 0 || i >= n)) bad(r.node, `an index is out of range for axis ${a} of size ${n}`);
      const y = gatherOp.apply([data], { axis: a, indices: idx });
      return [y.reshape([...data.shape.slice(0, a), ...indices.dims, ...data.shape.slice(a + 1)])];
    },
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

