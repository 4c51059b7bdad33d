// Ops that ONNX graphs need and the library's op table does not have: element-wise arithmetic
// with broadcasting (Sub, Mul, Div, Pow, and Add of different shapes: input normalisation, the
// ~20 element-wise nodes torch exports for nn.LocalResponseNorm) and constant padding of any
// rank. Registered in the op table like every op (forward and backward side by side), with
// plain-JS CPU kernels: these run on small tensors (a per-channel constant, one LRN map), the
// heavy layers map onto the library's SIMD ops. Single-threaded, so the same bits on any thread
// count; no WebGPU kernels (the op table then says to move the inputs to the CPU).
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

function asymGeom(x: Tensor, a: AsymAttrs) {
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
