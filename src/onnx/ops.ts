// Ops that ONNX graphs need and the library's op table does not have: element-wise arithmetic
// with broadcasting (Sub, Mul, Div, Pow, and Add of different shapes: input normalisation, the
// ~20 element-wise nodes torch exports for nn.LocalResponseNorm), reductions over some axes and
// constant padding of any rank. Registered in the op table like every op (forward and backward side by side), with
// plain-JS CPU kernels: these run on small tensors (a per-channel constant, one LRN map), the
// heavy layers map onto the library's SIMD ops. Single-threaded, so the same bits on any thread
// count. Their WebGPU kernels are in gpu.ts.
import { defineOp, empty, OpError, shapeStr, type Tensor } from "../index.js";

/** The largest output these JS kernels make (their index tables take 4 bytes an element more). */
const MAX_ELEMENTS = 2 ** 26;

/** Checks, before anything is made, that an output fits the engine's memory (init's maxMemory). */
function checkFits(op: string, shape: readonly number[], engine: unknown, why: string): void {
  const bytes = 4 * shape.reduce((p, d) => p * d, 1);
  const limit: number = (engine as any)?.arena?.limit ?? 2 ** 32;
  if (bytes > limit) fail(op, `the output ${shapeStr(shape)} would need ${bytes} bytes, more than the engine's memory can hold (${limit}) (${why})`);
}

export type BinaryKind = "add" | "sub" | "mul" | "div" | "pow";

function fail(op: string, msg: string): never {
  throw new OpError(`${op}: ${msg}`);
}

/** NumPy/ONNX multidirectional broadcasting: the output shape, or null when the shapes do not fit. */
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] | null {
  const n = Math.max(a.length, b.length), out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1, y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** For each output element, the flat index of the input element it reads (broadcast). */
function sourceIndex(shape: readonly number[], out: readonly number[]): Int32Array {
  const n = out.length, size = out.reduce((p, d) => p * d, 1);
  const strides = new Array(n).fill(0);
  for (let i = n - 1, s = 1, j = shape.length - 1; i >= 0; i--, j--) {
    const d = j >= 0 ? shape[j] : 1;
    strides[i] = d === 1 ? 0 : s;
    s *= d;
  }
  const idx = new Int32Array(size), pos = new Array(n).fill(0);
  let at = 0;
  for (let k = 0; k < size; k++) {
    idx[k] = at;
    for (let i = n - 1; i >= 0; i--) {
      pos[i]++;
      at += strides[i];
      if (pos[i] < out[i]) break;
      at -= strides[i] * pos[i];
      pos[i] = 0;
    }
  }
  return idx;
}

const FORWARD: Record<BinaryKind, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => Math.pow(a, b),
};

export const broadcastBinaryOp = defineOp<{ kind: BinaryKind }>(
  {
    name: "onnx_binary",
    inputs: ["a", "b"],
    noFixture: "checked through the ONNX import fixtures (test/onnx_import.test.mjs: input normalisation, torch's LocalResponseNorm graph) against PyTorch",
    check([a, b], { kind }) {
      if (!(kind in FORWARD)) fail("onnx_binary", `kind must be one of ${Object.keys(FORWARD).join(", ")}, got ${JSON.stringify(kind)}`);
      const out = broadcastShape(a!.shape, b!.shape);
      if (!out) fail(`onnx_binary (${kind})`, `shapes ${shapeStr(a!.shape)} and ${shapeStr(b!.shape)} do not broadcast`);
      if (out.reduce((p, d) => p * d, 1) > MAX_ELEMENTS) fail(`onnx_binary (${kind})`, `shapes ${shapeStr(a!.shape)} and ${shapeStr(b!.shape)} broadcast to ${shapeStr(out)}, too large`);
      checkFits(`onnx_binary (${kind})`, out, a!.engine, `${shapeStr(a!.shape)} and ${shapeStr(b!.shape)} broadcast`);
    },
    forward(ctx, [a, b], { kind }) {
      const shape = broadcastShape(a!.shape, b!.shape)!;
      const ia = sourceIndex(a!.shape, shape), ib = sourceIndex(b!.shape, shape);
      const y = empty(shape, ctx.engine);
      // views after the allocation (a growing memory detaches older ones)
      const av = a!.data, bv = b!.data, yv = y.data, f = FORWARD[kind];
      for (let i = 0; i < yv.length; i++) yv[i] = f(av[ia[i]], bv[ib[i]]);
      return y;
    },
    backward(ctx, g, [a, b], { kind }, needs) {
      const shape = g.shape;
      const ia = sourceIndex(a!.shape, shape), ib = sourceIndex(b!.shape, shape);
      const da = needs[0] ? new Float64Array(a!.size) : null, db = needs[1] ? new Float64Array(b!.size) : null;
      const av = a!.data, bv = b!.data, gv = g.data, yv = kind === "pow" ? ctx.out.data : null;
      for (let i = 0; i < gv.length; i++) {
        const x = av[ia[i]], z = bv[ib[i]], d = gv[i];
        switch (kind) {
          case "add": if (da) da[ia[i]] += d; if (db) db[ib[i]] += d; break;
          case "sub": if (da) da[ia[i]] += d; if (db) db[ib[i]] -= d; break;
          case "mul": if (da) da[ia[i]] += d * z; if (db) db[ib[i]] += d * x; break;
          case "div": if (da) da[ia[i]] += d / z; if (db) db[ib[i]] -= (d * x) / (z * z); break;
          case "pow":
            if (da) da[ia[i]] += d * z * Math.pow(x, z - 1);
            if (db) db[ib[i]] += d * yv![i] * Math.log(x);
            break;
        }
      }
      const toTensor = (v: Float64Array | null, like: Tensor) => {
        if (!v) return null;
        const t = empty(like.shape, ctx.engine);
        t.data.set(v);
        return t;
      };
      return [toTensor(da, a!), toTensor(db, b!)];
    },
  },
  { kind: undefined },
);

/** a (kind) b with broadcasting. */
export function binary(kind: BinaryKind, a: Tensor, b: Tensor): Tensor {
  return broadcastBinaryOp.apply([a, b], { kind });
}

/** The shape a reduction over `axes` keeps (each reduced axis 1). */
export function reducedShape(op: string, shape: readonly number[], axes: readonly number[]): number[] {
  if (!Array.isArray(axes) || axes.some((a) => !Number.isInteger(a) || a < 0 || a >= shape.length) || new Set(axes).size !== axes.length)
    fail(op, `axes must be distinct integers from 0 to ${shape.length - 1} for an input ${shapeStr(shape)}, got ${JSON.stringify(axes)}`);
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** ReduceSum / ReduceMean over some axes, keeping them (size 1): out = sum / div, where div is
 *  1 (sum) or the count of elements each output adds (mean). The full reductions without kept
 *  axes map onto the library's sum and mean; this is the rest (the per-channel statistics of
 *  the ONNX form of a batch norm without running statistics). */
export const reduceOp = defineOp<{ axes: number[]; mean: boolean }>(
  {
    name: "onnx_reduce",
    inputs: ["input"],
    noFixture: "checked through test/onnx_ops.test.mjs (ReduceSum and ReduceMean over axes against ONNX Runtime, the backward by finite differences) and test/onnx_roundtrip.test.mjs",
    check([x], { axes, mean }) {
      reducedShape("onnx_reduce", x!.shape, axes);
      if (typeof mean !== "boolean") fail("onnx_reduce", `mean must be true or false, got ${JSON.stringify(mean)}`);
    },
    forward(ctx, [x], { axes, mean }) {
      const shape = reducedShape("onnx_reduce", x!.shape, axes);
      const idx = sourceIndex(shape, x!.shape);
      const acc = new Float64Array(shape.reduce((p, d) => p * d, 1)), xv = x!.data;
      for (let i = 0; i < xv.length; i++) acc[idx[i]] += xv[i];
      const div = mean ? x!.size / acc.length : 1;
      const y = empty(shape, ctx.engine);
      const yv = y.data;
      for (let i = 0; i < yv.length; i++) yv[i] = acc[i] / div;
      return y;
    },
    backward(ctx, g, [x], { mean }) {
      const idx = sourceIndex(g.shape, x!.shape);
      const div = mean ? x!.size / g.size : 1;
      const dx = empty(x!.shape, ctx.engine);
      const gv = g.data, dv = dx.data;
      for (let i = 0; i < dv.length; i++) dv[i] = gv[idx[i]] / div;
      return [dx];
    },
  },
  { axes: undefined, mean: false },
);

/** The sizes around a gather's axis: [outer, axis length, inner]. */
export function gatherGeom(shape: readonly number[], axis: number) {
  const prod = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
  return { outer: prod(shape.slice(0, axis)), n: shape[axis], inner: prod(shape.slice(axis + 1)) };
}

/** Gather of a data tensor along one axis at constant indices: out[o, j, i] = x[o, indices[j], i]
 *  (the exporter's rows and columns of a nearest upsampling whose index tables ONNX's Resize
 *  cannot express). The node reshapes for indices of other ranks. */
export const gatherOp = defineOp<{ axis: number; indices: number[] }>(
  {
    name: "onnx_gather",
    inputs: ["input"],
    noFixture: "checked through test/onnx_ops.test.mjs (Gather against ONNX Runtime, the backward by finite differences) and test/onnx_roundtrip.test.mjs (nearest upsampling at uneven scales)",
    check([x], { axis, indices }) {
      const op = "onnx_gather";
      if (!Number.isInteger(axis) || axis < 0 || axis >= x!.rank) fail(op, `axis must be an integer from 0 to ${x!.rank - 1} for an input ${shapeStr(x!.shape)}, got ${JSON.stringify(axis)}`);
      const n = x!.shape[axis];
      if (!Array.isArray(indices) || indices.some((i) => !Number.isInteger(i) || i < 0 || i >= n))
        fail(op, `indices must be integers from 0 to ${n - 1} (axis ${axis} of ${shapeStr(x!.shape)}), got ${JSON.stringify(indices).slice(0, 80)}`);
      const out = [...x!.shape];
      out[axis] = indices.length;
      if (out.reduce((p, d) => p * d, 1) > MAX_ELEMENTS) fail(op, `the output ${shapeStr(out)} is too large`);
      checkFits(op, out, x!.engine, `input ${shapeStr(x!.shape)}, ${indices.length} indices`);
    },
    forward(ctx, [x], { axis, indices }) {
      const { outer, n, inner } = gatherGeom(x!.shape, axis), J = indices.length;
      const shape = [...x!.shape];
      shape[axis] = J;
      const y = empty(shape, ctx.engine);
      const xv = x!.data, yv = y.data;
      for (let o = 0; o < outer; o++)
        for (let j = 0; j < J; j++) yv.set(xv.subarray((o * n + indices[j]) * inner, (o * n + indices[j] + 1) * inner), (o * J + j) * inner);
      return y;
    },
    backward(ctx, g, [x], { axis, indices }) {
      const { outer, n, inner } = gatherGeom(x!.shape, axis), J = indices.length;
      // in increasing j for each input element (the GPU kernel's order)
      const acc = new Float64Array(x!.size), gv = g.data;
      for (let o = 0; o < outer; o++)
        for (let j = 0; j < J; j++) {
          const src = (o * J + j) * inner, dst = (o * n + indices[j]) * inner;
          for (let i = 0; i < inner; i++) acc[dst + i] += gv[src + i];
        }
      const dx = empty(x!.shape, ctx.engine);
      dx.data.set(acc);
      return [dx];
    },
  },
  { axis: undefined, indices: undefined },
);

/** Output shape of a constant pad; pads = [begin_0.., end_0..] (ONNX order), negative crops. */
export function paddedShape(op: string, shape: readonly number[], pads: readonly number[]): number[] {
  const n = shape.length;
  if (!Array.isArray(pads) || pads.length !== 2 * n || pads.some((p) => !Number.isInteger(p)))
    fail(op, `pads must be ${2 * n} integers (begin and end for each of the ${n} dimensions of ${shapeStr(shape)}), got ${JSON.stringify(pads)}`);
  const out = shape.map((d, i) => d + pads[i] + pads[n + i]);
  if (out.some((d) => d < 0)) fail(op, `pads ${JSON.stringify(pads)} crop more than the input ${shapeStr(shape)} has`);
  if (out.reduce((p, d) => p * d, 1) > MAX_ELEMENTS) fail(op, `pads ${JSON.stringify(pads)} make the output ${shapeStr(out)} too large`);
  return out;
}

/** For each output element of a pad, the flat input index it copies, or -1 for a pad value. */
function padIndex(shape: readonly number[], pads: readonly number[], out: readonly number[]): Int32Array {
  const n = shape.length, size = out.reduce((p, d) => p * d, 1);
  const strides = new Array(n).fill(1);
  for (let i = n - 2; i >= 0; i--) strides[i] = strides[i + 1] * shape[i + 1];
  const idx = new Int32Array(size), pos = new Array(n).fill(0);
  for (let k = 0; k < size; k++) {
    let at = 0;
    for (let i = 0; i < n; i++) {
      const p = pos[i] - pads[i];
      if (p < 0 || p >= shape[i]) {
        at = -1;
        break;
      }
      at += p * strides[i];
    }
    idx[k] = at;
    for (let i = n - 1; i >= 0; i--) {
      if (++pos[i] < out[i]) break;
      pos[i] = 0;
    }
  }
  return idx;
}

export const constantPadOp = defineOp<{ pads: number[]; value: number }>(
  {
    name: "onnx_pad",
    inputs: ["input"],
    noFixture: "checked through the ONNX import fixtures (test/onnx_import.test.mjs: Pad before AveragePool, torch's LocalResponseNorm graph) against PyTorch",
    check([x], { pads, value }) {
      checkFits("onnx_pad", paddedShape("onnx_pad", x!.shape, pads), x!.engine, `input ${shapeStr(x!.shape)}, pads ${JSON.stringify(pads)}`);
      if (typeof value !== "number" || Number.isNaN(value)) fail("onnx_pad", `value must be a number, got ${JSON.stringify(value)}`);
    },
    forward(ctx, [x], { pads, value }) {
      const shape = paddedShape("onnx_pad", x!.shape, pads);
      const idx = padIndex(x!.shape, pads, shape);
      const y = empty(shape, ctx.engine);
      const xv = x!.data, yv = y.data;
      for (let i = 0; i < yv.length; i++) yv[i] = idx[i] < 0 ? value : xv[idx[i]];
      return y;
    },
    backward(ctx, g, [x], { pads }) {
      const idx = padIndex(x!.shape, pads, g.shape);
      const dx = empty(x!.shape, ctx.engine);
      const gv = g.data, dv = dx.data;
      dv.fill(0);
      for (let i = 0; i < gv.length; i++) if (idx[i] >= 0) dv[idx[i]] = gv[i];
      return [dx];
    },
  },
  { pads: undefined, value: 0 },
);

export function constantPad(x: Tensor, pads: number[], value = 0): Tensor {
  return constantPadOp.apply([x], { pads, value });
}

/** Source rows (or columns) and weights of ONNX's linear resize with coordinate_transformation_mode
 *  asymmetric: x_original = x_resized / scale (scale = out / in when sizes are given), clamped
 *  to the input (the last row repeats). PyTorch has no such mode (its bilinear is half_pixel or
 *  align_corners); Upsample's linear mode is this one. */
function asymmetricTable(inSize: number, outSize: number, scale: number) {
  const i0 = new Int32Array(outSize), i1 = new Int32Array(outSize), w1 = new Float64Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const src = o / scale;
    const lo = Math.min(Math.floor(src), inSize - 1);
    i0[o] = lo;
    i1[o] = Math.min(lo + 1, inSize - 1);
    w1[o] = Math.min(Math.max(src - lo, 0), 1);
  }
  return { i0, i1, w1 };
}

interface AsymAttrs {
  /** output [OH, OW] */
  size: number[];
  /** the scales over H and W (out / in when the file gave sizes) */
  scales: number[];
}

export function asymGeom(x: Tensor, a: AsymAttrs) {
  const [N, C, H, W] = x.shape, [OH, OW] = a.size;
  return { NC: N * C, H, W, OH, OW, rows: asymmetricTable(H, OH, a.scales[0]), cols: asymmetricTable(W, OW, a.scales[1]) };
}

export const resizeLinearAsymmetricOp = defineOp<AsymAttrs>(
  {
    name: "onnx_resize_linear_asymmetric",
    inputs: ["input"],
    noFixture: "checked through the ONNX import fixtures (test/onnx_import.test.mjs: handmade_d, Resize and Upsample linear asymmetric) against a PyTorch reference",
    check([x], a) {
      const op = "onnx_resize_linear_asymmetric";
      if (x!.rank !== 4 || x!.shape.some((d) => d < 1)) fail(op, `input must be a non-empty [N, C, H, W], got ${shapeStr(x!.shape)}`);
      if (!Array.isArray(a.size) || a.size.length !== 2 || a.size.some((d) => !Number.isInteger(d) || d < 1)) fail(op, `size must be two integers >= 1, got ${JSON.stringify(a.size)}`);
      if (!Array.isArray(a.scales) || a.scales.length !== 2 || a.scales.some((s) => !(s > 0) || !Number.isFinite(s))) fail(op, `scales must be two positive numbers, got ${JSON.stringify(a.scales)}`);
      const out = [x!.shape[0], x!.shape[1], ...a.size];
      if (out.reduce((p, d) => p * d, 1) > MAX_ELEMENTS) fail(op, `the output ${shapeStr(out)} is too large`);
      checkFits(op, out, x!.engine, `input ${shapeStr(x!.shape)}, size ${JSON.stringify(a.size)}`);
    },
    forward(ctx, [x], a) {
      const g = asymGeom(x!, a);
      const y = empty([x!.shape[0], x!.shape[1], g.OH, g.OW], ctx.engine);
      const xv = x!.data, yv = y.data, { rows, cols } = g;
      for (let p = 0; p < g.NC; p++)
        for (let oh = 0; oh < g.OH; oh++) {
          const r0 = (p * g.H + rows.i0[oh]) * g.W, r1 = (p * g.H + rows.i1[oh]) * g.W, wr = rows.w1[oh];
          for (let ow = 0; ow < g.OW; ow++) {
            const c0 = cols.i0[ow], c1 = cols.i1[ow], wc = cols.w1[ow];
            const top = xv[r0 + c0] * (1 - wc) + xv[r0 + c1] * wc, bottom = xv[r1 + c0] * (1 - wc) + xv[r1 + c1] * wc;
            yv[(p * g.OH + oh) * g.OW + ow] = top * (1 - wr) + bottom * wr;
          }
        }
      return y;
    },
    backward(ctx, gy, [x], a) {
      const g = asymGeom(x!, a);
      const acc = new Float64Array(x!.size), gv = gy.data, { rows, cols } = g;
      for (let p = 0; p < g.NC; p++)
        for (let oh = 0; oh < g.OH; oh++) {
          const r0 = (p * g.H + rows.i0[oh]) * g.W, r1 = (p * g.H + rows.i1[oh]) * g.W, wr = rows.w1[oh];
          for (let ow = 0; ow < g.OW; ow++) {
            const c0 = cols.i0[ow], c1 = cols.i1[ow], wc = cols.w1[ow], d = gv[(p * g.OH + oh) * g.OW + ow];
            acc[r0 + c0] += d * (1 - wr) * (1 - wc);
            acc[r0 + c1] += d * (1 - wr) * wc;
            acc[r1 + c0] += d * wr * (1 - wc);
            acc[r1 + c1] += d * wr * wc;
          }
        }
      const dx = empty(x!.shape, ctx.engine);
      dx.data.set(acc);
      return [dx];
    },
  },
  { size: undefined, scales: undefined },
);
