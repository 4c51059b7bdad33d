// WebGPU kernels of the ops simdnet/onnx adds to the op table (ops.ts; WGSL in wgsl/onnx.wgsl),
// attached as every op file's twin in src/webgpu/ops does (entry.webgpu). They live here, not in
// src/webgpu/ops, so that the library's bundle stays free of ONNX: like the rest of src/onnx
// they reach the library only through "../index.js" (wgslFile and f32bits are exported for this).
import math from "../../wgsl/act_math.wgsl";
import code from "../../wgsl/onnx.wgsl";
import { OpError, empty, f32bits, shapeStr, wgslFile, type GpuEngine, type Tensor } from "../index.js";
import { asymGeom, broadcastBinaryOp, broadcastShape, constantPadOp, gatherGeom, gatherOp, paddedShape, reducedShape, reduceOp, resizeLinearAsymmetricOp, type BinaryKind } from "./ops.js";

const K = wgslFile("onnx.wgsl", math + code, ["bin_fwd", "bin_bwd", "reduce_fwd", "reduce_bwd", "pad", "gather_fwd", "gather_bwd", "resize_asym_fwd", "resize_asym_bwd"] as const);

const KINDS: BinaryKind[] = ["add", "sub", "mul", "div", "pow"];
/** Dimensions a kernel takes (fixed argument slots in onnx.wgsl). */
const MAXR = 6;
/** Indices and table values travel as floats: exact below 2^24. */
const MAX_INDEX = 2 ** 24;

const e = (t: Tensor) => t.ptr >>> 2;
const groups = (n: number) => Math.ceil(n / 256);
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** The strides of `shape` read as a broadcast to `out` (trailing axes aligned; 0 where it repeats). */
function broadcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const st = new Array(out.length).fill(0);
  for (let i = out.length - 1, j = shape.length - 1, s = 1; i >= 0; i--, j--) {
    const d = j >= 0 ? shape[j] : 1;
    st[i] = d === 1 ? 0 : s;
    s *= d;
  }
  return st;
}

/** Drops dimensions of size 1 and merges neighbours that every stride list walks as one
 *  (stride[k] = stride[k+1] * dims[k+1] in each, which includes both 0), so that a broadcast of
 *  any rank fits the kernels' MAXR slots in the usual cases. */
function merge(op: string, dims: readonly number[], strides: number[][]): { dims: number[]; strides: number[][] } {
  const d: number[] = [], st: number[][] = strides.map(() => []);
  dims.forEach((n, k) => {
    if (n === 1) return;
    const last = d.length - 1;
    if (last >= 0 && strides.every((s, t) => st[t][last] === s[k] * n)) {
      d[last] *= n;
      strides.forEach((s, t) => (st[t][last] = s[k]));
    } else {
      d.push(n);
      strides.forEach((s, t) => st[t].push(s[k]));
    }
  });
  if (d.length > MAXR) throw new OpError(`${op}: on webgpu at most ${MAXR} dimensions after merging, got [${dims.join(", ")}] (${d.length}); move the inputs to the CPU (await t.cpu()) for this op`);
  return { dims: d, strides: st };
}

/** dims and each stride list in MAXR slots each (the unused ones 0). */
const slots = (dims: number[], strides: number[][]) =>
  [dims, ...strides].flatMap((v) => [...v, ...new Array(MAXR - v.length).fill(0)]);

/** Uploads a float table for one dispatch; the caller releases it after recording the dispatch. */
function upload(g: GpuEngine, values: Float32Array): number {
  const ptr = g.alloc(values.byteLength, "onnx index table");
  g.write(ptr, values);
  return ptr;
}

// ---- onnx_binary ----

broadcastBinaryOp.webgpu = {
  forward(ctx, [a, b], { kind }) {
    const shape = broadcastShape(a!.shape, b!.shape)!;
    const m = merge(`onnx_binary (${kind})`, shape, [broadcastStrides(a!.shape, shape), broadcastStrides(b!.shape, shape)]);
    const y = empty(shape, ctx.engine);
    ctx.gpu!.dispatch(K.bin_fwd, [e(a!), e(b!), e(y), y.size, KINDS.indexOf(kind), m.dims.length, ...slots(m.dims, m.strides)], groups(y.size));
    return y;
  },
  backward(ctx, g, [a, b], { kind }, needs) {
    const shape = g.shape;
    const m = merge(`onnx_binary (${kind})`, shape, [broadcastStrides(a!.shape, shape), broadcastStrides(b!.shape, shape)]);
    const y = kind === "pow" ? ctx.out : g; // y is read by pow's gradient only
    return [a!, b!].map((t, which) => {
      if (!needs[which]) return null;
      const d = empty(t.shape, ctx.engine);
      ctx.gpu!.dispatch(K.bin_bwd, [e(a!), e(b!), e(g), e(y), e(d), d.size, KINDS.indexOf(kind), which, m.dims.length, g.size / d.size, ...slots(m.dims, m.strides)], groups(d.size));
      return d;
    });
  },
};

// ---- onnx_reduce ----

/** The merged dims of x and the strides of the reduced output over them (0 on reduced axes). */
function reduceGeom(x: Tensor, axes: number[]) {
  const out = reducedShape("onnx_reduce", x.shape, axes);
  const m = merge("onnx_reduce", x.shape, [broadcastStrides(out, x.shape)]);
  return { out, m, M: x.size / prod(out) };
}

reduceOp.webgpu = {
  forward(ctx, [x], { axes, mean }) {
    const { out, m, M } = reduceGeom(x!, axes);
    const y = empty(out, ctx.engine);
    ctx.gpu!.dispatch(K.reduce_fwd, [e(x!), e(y), y.size, f32bits(mean ? M : 1), m.dims.length, M, ...slots(m.dims, m.strides)], groups(y.size));
    return y;
  },
  backward(ctx, g, [x], { axes, mean }) {
    const { m, M } = reduceGeom(x!, axes);
    const dx = empty(x!.shape, ctx.engine);
    ctx.gpu!.dispatch(K.reduce_bwd, [e(g), e(dx), dx.size, f32bits(mean ? M : 1), m.dims.length, M, ...slots(m.dims, m.strides)], groups(dx.size));
    return [dx];
  },
};

// ---- onnx_pad ----

/** Merges neighbouring dimensions that are not padded; [dstDims, shift, srcDims] in slots. */
function padArgs(src: readonly number[], dst: readonly number[], shift: number[]): number[] {
  const D: number[] = [], S: number[] = [], P: number[] = [];
  src.forEach((n, k) => {
    const last = D.length - 1;
    if (last >= 0 && shift[k] === 0 && dst[k] === n && P[last] === 0 && D[last] === S[last]) {
      D[last] *= n;
      S[last] *= n;
    } else (D.push(dst[k]), S.push(n), P.push(shift[k]));
  });
  if (D.length > MAXR) throw new OpError(`onnx_pad: on webgpu at most ${MAXR} dimensions after merging, got ${shapeStr(src)} (${D.length}); move the inputs to the CPU (await t.cpu()) for this op`);
  // shifts as two's complement words (a negative pad crops)
  return [D.length, ...slots(D, [P.map((p) => p >>> 0), S])];
}

constantPadOp.webgpu = {
  forward(ctx, [x], { pads, value }) {
    const shape = paddedShape("onnx_pad", x!.shape, pads);
    const args = padArgs(x!.shape, shape, pads.slice(0, x!.rank));
    const y = empty(shape, ctx.engine);
    ctx.gpu!.dispatch(K.pad, [e(x!), e(y), y.size, f32bits(value), ...args], groups(y.size));
    return y;
  },
  backward(ctx, g, [x], { pads }) {
    const args = padArgs(g.shape, x!.shape, pads.slice(0, x!.rank).map((p) => -p));
    const dx = empty(x!.shape, ctx.engine);
    ctx.gpu!.dispatch(K.pad, [e(g), e(dx), dx.size, f32bits(0), ...args], groups(dx.size));
    return [dx];
  },
};

// ---- onnx_gather ----

/** Checks first, then uploads the indices (call before allocating the output). */
function gatherArgs(g: GpuEngine, x: Tensor, axis: number, indices: number[]) {
  const { outer, n, inner } = gatherGeom(x.shape, axis);
  if (n >= MAX_INDEX) throw new OpError(`onnx_gather: on webgpu the gathered axis must be shorter than ${MAX_INDEX}, got ${shapeStr(x.shape)} axis ${axis}`);
  const table = upload(g, Float32Array.from(indices));
  return { table, words: [outer, n, indices.length, inner] };
}

gatherOp.webgpu = {
  forward(ctx, [x], { axis, indices }) {
    const shape = [...x!.shape];
    shape[axis] = indices.length;
    const { table, words } = gatherArgs(ctx.gpu!, x!, axis, indices);
    const y = empty(shape, ctx.engine);
    ctx.gpu!.dispatch(K.gather_fwd, [e(x!), e(y), table >>> 2, ...words, y.size], groups(y.size));
    ctx.gpu!.release(table);
    return y;
  },
  backward(ctx, g, [x], { axis, indices }) {
    const { table, words } = gatherArgs(ctx.gpu!, x!, axis, indices);
    const dx = empty(x!.shape, ctx.engine);
    ctx.gpu!.dispatch(K.gather_bwd, [e(g), e(dx), table >>> 2, ...words, dx.size], groups(dx.size));
    ctx.gpu!.release(table);
    return [dx];
  },
};

// ---- onnx_resize_linear_asymmetric ----

/** The index and weight tables of onnx.wgsl's resize kernels, and the output rows (columns)
 *  that read each input row (column): [start, end) ranges, as i0 and i1 do not decrease. */
function resizeTables(x: Tensor, a: { size: number[]; scales: number[] }) {
  const g = asymGeom(x, a);
  if (Math.max(g.H, g.W, g.OH, g.OW) >= MAX_INDEX) throw new OpError(`onnx_resize_linear_asymmetric: on webgpu sizes must be below ${MAX_INDEX}, got ${shapeStr(x.shape)} to ${JSON.stringify(a.size)}`);
  const ranges = (t: { i0: Int32Array; i1: Int32Array }, n: number) => {
    const start = new Array(n).fill(0), end = new Array(n).fill(0);
    for (let h = 0; h < n; h++) {
      const reads: number[] = [];
      t.i0.forEach((v, o) => (v === h || t.i1[o] === h) && reads.push(o));
      if (reads.length) (start[h] = reads[0]), (end[h] = reads[reads.length - 1] + 1);
    }
    return [start, end];
  };
  const [rs, re] = ranges(g.rows, g.H), [cs, ce] = ranges(g.cols, g.W);
  const table = Float32Array.from([...g.rows.i0, ...g.rows.i1, ...g.rows.w1, ...g.cols.i0, ...g.cols.i1, ...g.cols.w1, ...rs, ...re, ...cs, ...ce]);
  return { g, table };
}

resizeLinearAsymmetricOp.webgpu = {
  forward(ctx, [x], a) {
    const { g, table } = resizeTables(x!, a);
    const y = empty([x!.shape[0], x!.shape[1], g.OH, g.OW], ctx.engine);
    const t = upload(ctx.gpu!, table);
    ctx.gpu!.dispatch(K.resize_asym_fwd, [e(x!), e(y), t >>> 2, g.NC, g.H, g.W, g.OH, g.OW], groups(y.size));
    ctx.gpu!.release(t);
    return y;
  },
  backward(ctx, gy, [x], a) {
    const { g, table } = resizeTables(x!, a);
    const dx = empty(x!.shape, ctx.engine);
    const t = upload(ctx.gpu!, table);
    ctx.gpu!.dispatch(K.resize_asym_bwd, [e(gy), e(dx), t >>> 2, g.NC, g.H, g.W, g.OH, g.OW], groups(dx.size));
    ctx.gpu!.release(t);
    return [dx];
  },
};
