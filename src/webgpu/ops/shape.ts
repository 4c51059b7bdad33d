// WebGPU kernels of the ops in src/ops/shape.ts (wgsl/shape.wgsl), attached to their op-table
// entries: cat, bias_add, upsample_bilinear2d / upsample_nearest2d, sum, mean, mul_scalar. Also
// gpuReduce, the deterministic sums that the linalg (and conv) backward passes use.
import code from "../../../wgsl/shape.wgsl";
import { empty, type Tensor } from "../../tensor.js";
import { catOp, biasAddOp, upsampleBilinear2dOp, upsampleNearest2dOp, sumOp, meanOp, mulScalarOp, upGeom, linearTable, nearestTable, type UpAttrs } from "../../ops/shape.js";
import { wgslFile, f32bits, type GpuEngine } from "../engine.js";
import { gpuClone, gpuScale } from "./eltwise.js";

export const K = wgslFile("shape.wgsl", code, [
  "copy_rows", "bias_add", "fill_div", "red_seg", "red_cols",
  "up_nearest_fwd", "up_nearest_bwd", "up_bilinear_fwd", "up_bilinear_bwd",
] as const);

const e = (t: Tensor) => t.ptr >>> 2;
const groups = (n: number) => Math.ceil(n / 256);
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

// ---- reductions ----

export interface GpuReduce {
  /** outputs, and the distance between the first elements of consecutive outputs */
  C: number; sC: number;
  /** outer summed index (n < N0, stride sN) and inner contiguous one (i < I) */
  N0: number; sN: number; I: number;
  /** out[c] = scale * sum / div (defaults 1, 1) */
  scale?: number; div?: number;
}

/** out[c] = (scale * sum_{n < N0, i < I} mem[x + n*sN + c*sC + i]) / div, for c < C (offsets in
 *  elements). Deterministic: the summation order depends only on the sizes. Long sums go in two
 *  passes (chunks, then the chunks' partial sums in order) so that many workgroups share them.
 *  I > 1 (or C = 1): a workgroup per output and chunk with a tree reduction (red_seg); I = 1: a
 *  thread per output walking n in order (red_cols: coalesced column sums of a row-major
 *  [N0, C]). Examples: bias gradient of linear, g [R, C]: { C, sC: 1, N0: R, sN: C, I: 1 };
 *  of a conv, g [N, C, HW]: { C, sC: HW, N0: N, sN: C*HW, I: HW }; full sum: { C: 1, sC: 0,
 *  N0: 1, sN: 0, I: size }. */
export function gpuReduce(g: GpuEngine, x: number, out: number, r: GpuReduce): void {
  const { C, sC, N0, sN, I } = r;
  const scale = f32bits(r.scale ?? 1), div = f32bits(r.div ?? 1), one = f32bits(1);
  if (C === 0) return;
  if (I === 1 && C > 1) {
    // thread per column; split the rows when there are few column groups and many rows
    const colGroups = groups(C);
    const P = colGroups < 32 && N0 >= 1024 ? Math.min(64, Math.ceil(N0 / 256)) : 1;
    const ch = Math.ceil(N0 / P);
    if (P === 1) return g.dispatch(K.red_cols, [x, out, C, sC, N0, sN, 1, 1, Math.max(ch, 1), scale, div], colGroups);
    const part = g.alloc(P * C * 4, "reduction partials");
    g.dispatch(K.red_cols, [x, part >>> 2, C, sC, N0, sN, 1, P, ch, one, one], colGroups * P);
    g.dispatch(K.red_cols, [part >>> 2, out, C, 1, P, C, 1, 1, P, scale, div], colGroups);
    g.release(part);
    return;
  }
  const L = N0 * I;
  // chunks of at least 4096 elements, at most 256 of them (one tree in the second pass)
  const P = L > 8192 ? Math.min(256, Math.ceil(L / 4096)) : 1;
  const ch = Math.max(1, Math.ceil(L / P));
  if (P === 1) return g.dispatch(K.red_seg, [x, out, C, sC, N0, sN, I, 1, ch, scale, div], C);
  const part = g.alloc(C * P * 4, "reduction partials");
  g.dispatch(K.red_seg, [x, part >>> 2, C, sC, N0, sN, I, P, ch, one, one], C * P);
  g.dispatch(K.red_seg, [part >>> 2, out, C, P, 1, 0, P, 1, P, scale, div], C);
  g.release(part);
}

// ---- cat ----

/** The index of dim (already checked by the op). */
const dimOf = (t: Tensor, dim: number) => (dim < 0 ? dim + t.rank : dim);

catOp.webgpu = {
  forward(ctx, inputs, a) {
    const g = ctx.gpu!;
    const d = dimOf(inputs[0]!, a.dim);
    const shape = [...inputs[0]!.shape];
    shape[d] = inputs.reduce((n, t) => n + t!.shape[d], 0);
    const y = empty(shape, ctx.engine);
    const outer = prod(shape.slice(0, d)), inner = prod(shape.slice(d + 1)), rowOut = shape[d] * inner;
    let at = 0;
    for (const t of inputs) {
      const len = t!.shape[d] * inner;
      g.dispatch(K.copy_rows, [e(t!), e(y) + at, outer, len, len, rowOut], groups(t!.size));
      at += len;
    }
    return y;
  },
  backward(ctx, gy, inputs, a, needs) {
    const g = ctx.gpu!;
    const d = dimOf(inputs[0]!, a.dim);
    const outer = prod(gy.shape.slice(0, d)), inner = prod(gy.shape.slice(d + 1)), rowOut = gy.shape[d] * inner;
    let at = 0;
    return inputs.map((t, i) => {
      const len = t!.shape[d] * inner;
      let dx: Tensor | null = null;
      if (needs[i]) {
        dx = empty(t!.shape, ctx.engine);
        g.dispatch(K.copy_rows, [e(gy) + at, e(dx), outer, len, rowOut, len], groups(dx.size));
      }
      at += len;
      return dx;
    });
  },
};

// ---- bias_add ----

biasAddOp.webgpu = {
  forward(ctx, [x, b]) {
    const y = empty(x!.shape, ctx.engine);
    ctx.gpu!.dispatch(K.bias_add, [e(x!), e(b!), e(y), y.size, x!.shape[1], prod(x!.shape.slice(2))], groups(y.size));
    return y;
  },
  backward(ctx, gy, [x, b], _a, needs) {
    let db: Tensor | null = null;
    if (needs[1]) {
      const [N, C] = x!.shape, inner = prod(x!.shape.slice(2));
      db = empty(b!.shape, ctx.engine);
      gpuReduce(ctx.gpu!, e(gy), e(db), { C, sC: inner, N0: N, sN: C * inner, I: inner });
    }
    return [needs[0] ? gpuClone(gy) : null, db];
  },
};

// ---- upsampling ----
// The index / weight tables depend only on the sizes and attributes: they are built on the CPU
// exactly as src/ops/shape.ts builds them (float64 arithmetic, PyTorch's rules) and uploaded once
// per geometry (kept in the arena, a few per engine), so no values are read back.

/** Output size and scale factors: the CPU op's geometry (check() has validated it). */
function geometry(bilinear: boolean, x: Tensor, a: UpAttrs) {
  const g = upGeom(bilinear ? "upsample_bilinear2d" : "upsample_nearest2d", x, a);
  return { ...g, NC: g.N * g.C };
}

/** For the backward gathers: for each input index, the range [start, end) of outputs whose
 *  source index (any of `srcs`) is it. The sources grow with the output index, so it is one range. */
function ranges(inSize: number, outSize: number, srcs: ArrayLike<number>[]): [Float32Array, Float32Array] {
  const s = new Float32Array(inSize), en = new Float32Array(inSize);
  for (let o = outSize - 1; o >= 0; o--) for (const src of srcs) s[src[o]] = o;
  for (let o = 0; o < outSize; o++) for (const src of srcs) en[src[o]] = o + 1;
  return [s, en];
}

const tables = new WeakMap<GpuEngine, Map<string, number>>();
const MAX_TABLES = 32;

/** The element offset of the table for this geometry, built and uploaded on first use. */
function upTable(g: GpuEngine, bilinear: boolean, x: Tensor, a: UpAttrs): { geo: ReturnType<typeof geometry>; tab: number } {
  const geo = geometry(bilinear, x, a);
  const { H, W, OH, OW, sf } = geo;
  const align = bilinear && !!a.align_corners;
  const key = `${bilinear ? "b" : "n"}:${H},${W},${OH},${OW},${align},${sf?.[0]},${sf?.[1]}`;
  let cache = tables.get(g);
  if (!cache) tables.set(g, (cache = new Map()));
  let ptr = cache.get(key);
  if (ptr === undefined) {
    // the CPU op's tables (indices become exact floats in the arena)
    let parts: ArrayLike<number>[];
    if (bilinear) {
      const [ri0, ri1, rl0, rl1] = linearTable(H, OH, align, sf?.[0]), [ci0, ci1, cl0, cl1] = linearTable(W, OW, align, sf?.[1]);
      parts = [ri0, ri1, rl0, rl1, ci0, ci1, cl0, cl1, ...ranges(H, OH, [ri0, ri1]), ...ranges(W, OW, [ci0, ci1])];
    } else {
      const r = nearestTable(H, OH, sf?.[0]), c = nearestTable(W, OW, sf?.[1]);
      parts = [r, c, ...ranges(H, OH, [r]), ...ranges(W, OW, [c])];
    }
    const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    if (cache.size >= MAX_TABLES) {
      // the oldest goes (freeing is safe in queue order: dispatches recorded before still see it)
      const [k, old] = cache.entries().next().value!;
      cache.delete(k);
      g.release(old);
    }
    ptr = g.alloc(all.byteLength, "upsampling table");
    g.write(ptr, all);
    cache.set(key, ptr);
  }
  return { geo, tab: ptr >>> 2 };
}

function upsampleKernels(bilinear: boolean) {
  const fwd = bilinear ? K.up_bilinear_fwd : K.up_nearest_fwd, bwd = bilinear ? K.up_bilinear_bwd : K.up_nearest_bwd;
  return {
    forward(ctx: any, [x]: (Tensor | null)[], a: UpAttrs) {
      const { geo, tab } = upTable(ctx.gpu, bilinear, x!, a);
      const y = empty([x!.shape[0], x!.shape[1], geo.OH, geo.OW], ctx.engine);
      ctx.gpu.dispatch(fwd, [e(x!), e(y), geo.NC, geo.H, geo.W, geo.OH, geo.OW, tab], groups(y.size));
      return y;
    },
    backward(ctx: any, gy: Tensor, [x]: (Tensor | null)[], a: UpAttrs) {
      const { geo, tab } = upTable(ctx.gpu, bilinear, x!, a);
      const dx = empty(x!.shape, ctx.engine);
      ctx.gpu.dispatch(bwd, [e(gy), e(dx), geo.NC, geo.H, geo.W, geo.OH, geo.OW, tab], groups(dx.size));
      return [dx];
    },
  };
}

upsampleBilinear2dOp.webgpu = upsampleKernels(true);
upsampleNearest2dOp.webgpu = upsampleKernels(false);

// ---- full reductions and scaling ----

function reductionKernels(mean: boolean) {
  return {
    forward(ctx: any, [x]: (Tensor | null)[]) {
      const y = empty([], ctx.engine);
      gpuReduce(ctx.gpu, e(x!), e(y), { C: 1, sC: 0, N0: 1, sN: 0, I: x!.size, div: mean ? x!.size : 1 });
      return y;
    },
    backward(ctx: any, gy: Tensor, [x]: (Tensor | null)[]) {
      // every element gets g (sum) or g / size (mean), g read on the GPU
      const dx = empty(x!.shape, ctx.engine);
      ctx.gpu.dispatch(K.fill_div, [e(gy), e(dx), dx.size, f32bits(mean ? x!.size : 1)], groups(dx.size));
      return [dx];
    },
  };
}

sumOp.webgpu = reductionKernels(false);
meanOp.webgpu = reductionKernels(true);

mulScalarOp.webgpu = {
  forward: (_ctx, [x], a) => gpuScale(x!, a.scalar),
  backward: (_ctx, gy, _in, a) => [gpuScale(gy, a.scalar)],
};
