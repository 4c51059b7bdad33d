// Shape and reduction ops (kernels in assembly/shape.ts and assembly/upsample.ts): cat,
// bias_add, upsample_bilinear2d / upsample_nearest2d (interpolate), sum, mean, mul_scalar.
import { Tensor, shapeStr, empty } from "../tensor.js";
import { defineOp, fail, checkRank, pair, OpError, checkOutputSize, MAX_INT_ATTR } from "./table.js";
import { checkOptions, describe } from "../options.js";
import { clone } from "./eltwise.js";
import { withTable } from "./scratch.js";
import type { Engine } from "../engine/engine.js";

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** dst[0] = sum(src) / div, summed in f64 in chunks fixed by the size (not the thread count). */
export function sumTo(eng: Engine, src: Tensor, dst: Tensor, div: number): void {
  const CHUNK = 4096; // assembly/common.ts
  const chunks = Math.max(1, Math.ceil(src.size / CHUNK));
  const partials = eng.alloc(chunks * 8, "sum partials");
  try {
    if (src.size === 0) new Float64Array(eng.memory.buffer, partials, 1)[0] = 0;
    else eng.run("f32_sum_chunks", [src.ptr, src.size, partials], src.size);
    eng.run("f32_sum_finish", [partials, chunks, dst.ptr, div], 0);
  } finally {
    eng.release(partials);
  }
}

// ---- cat ----

function catDim(inputs: (Tensor | null)[], dim: unknown): number {
  if (inputs.length === 0) fail("cat", "needs at least one tensor");
  const first = inputs[0]!;
  const r = first.rank;
  if (r === 0) fail("cat", `cannot concatenate scalars ${shapeStr(first.shape)}`);
  if (typeof dim !== "number" || !Number.isInteger(dim) || dim < -r || dim >= r)
    fail("cat", `dim must be an integer in [${-r}, ${r - 1}] for inputs of rank ${r}, got ${describe(dim)}`);
  const d = dim < 0 ? dim + r : dim;
  inputs.forEach((t, i) => {
    if (t!.rank !== r || t!.shape.some((s, j) => j !== d && s !== first.shape[j]))
      fail("cat", `input ${i} ${shapeStr(t!.shape)} does not match input 0 ${shapeStr(first.shape)} outside dim ${d}`);
  });
  return d;
}

export const catOp = defineOp<{ dim: number }>(
  {
    name: "cat",
    inputs: ["inputs..."],
    check(inputs, a) {
      catDim(inputs, a.dim);
    },
    forward(ctx, inputs, a) {
      const d = catDim(inputs, a.dim);
      const shape = [...inputs[0]!.shape];
      shape[d] = inputs.reduce((n, t) => n + t!.shape[d], 0);
      const y = empty(shape, ctx.engine);
      const outer = prod(shape.slice(0, d)), inner = prod(shape.slice(d + 1)), rowOut = shape[d] * inner;
      let at = 0;
      for (const t of inputs) {
        const len = t!.shape[d] * inner;
        ctx.engine.run("f32_copy_rows", [t!.ptr, y.ptr + at * 4, outer, len, len, rowOut], t!.size);
        at += len;
      }
      return y;
    },
    backward(ctx, g, inputs, a, needs) {
      const d = catDim(inputs, a.dim);
      const outer = prod(g.shape.slice(0, d)), inner = prod(g.shape.slice(d + 1)), rowOut = g.shape[d] * inner;
      let at = 0;
      return inputs.map((t, i) => {
        const len = t!.shape[d] * inner;
        let dx: Tensor | null = null;
        if (needs[i]) {
          dx = empty(t!.shape, ctx.engine);
          ctx.engine.run("f32_copy_rows", [g.ptr + at * 4, dx.ptr, outer, len, rowOut, len], dx.size);
        }
        at += len;
        return dx;
      });
    },
  },
  { dim: 1 },
);

/** Concatenation along dim (channels by default: Inception, U-Net skips). */
export function cat(tensors: Tensor[], dim = 1): Tensor {
  if (!Array.isArray(tensors)) fail("cat", `expects an array of tensors, got ${typeof tensors}`);
  return catOp.apply(tensors, { dim });
}

// ---- bias_add ----

export const biasAddOp = defineOp<{}>({
  name: "bias_add",
  inputs: ["input", "bias"],
  check([x, b]) {
    if (x!.rank < 2) fail("bias_add", `input must be rank 2 or more [N, C, ...], got rank ${x!.rank} ${shapeStr(x!.shape)}`);
    checkRank("bias_add", "bias", b!, 1);
    if (b!.shape[0] !== x!.shape[1]) fail("bias_add", `bias ${shapeStr(b!.shape)} does not match input channels ${x!.shape[1]} (input ${shapeStr(x!.shape)})`);
  },
  forward(ctx, [x, b]) {
    const y = empty(x!.shape, ctx.engine);
    ctx.engine.run("f32_bias_add_fwd", [x!.ptr, b!.ptr, y.ptr, x!.shape[0], x!.shape[1], prod(x!.shape.slice(2))], y.size);
    return y;
  },
  backward(ctx, g, [x, b], _a, needs) {
    let db: Tensor | null = null;
    if (needs[1]) {
      db = empty(b!.shape, ctx.engine);
      ctx.engine.run("f32_bias_add_bwd", [g.ptr, db.ptr, x!.shape[0], x!.shape[1], prod(x!.shape.slice(2))], g.size);
    }
    return [needs[0] ? clone(g) : null, db];
  },
});

/** x [N, C, ...] + b [C] broadcast over the batch and the spatial dimensions. */
export function bias_add(x: Tensor, b: Tensor): Tensor {
  return biasAddOp.apply([x, b]);
}

// ---- interpolate: upsample_bilinear2d, upsample_nearest2d ----

export interface UpAttrs {
  size?: number | [number, number] | null;
  scale_factor?: number | [number, number] | null;
  align_corners?: boolean | null;
  /** PyTorch's; not supported (an error when true) */
  recompute_scale_factor?: boolean | null;
}

/** Output size and the scale factors given (if any), as F.interpolate (the GPU kernels use it
 *  too). */
export function upGeom(op: string, x: Tensor, a: UpAttrs) {
  checkRank(op, "input", x, 4);
  const [N, C, H, W] = x.shape;
  if (H === 0 || W === 0) fail(op, `input ${shapeStr(x.shape)} has an empty spatial dimension`);
  if (a.recompute_scale_factor) fail(op, "recompute_scale_factor is not supported");
  const hasSize = a.size != null, hasScale = a.scale_factor != null;
  if (hasSize === hasScale) fail(op, `give exactly one of size and scale_factor (input ${shapeStr(x.shape)})`);
  let OH: number, OW: number, sf: [number, number] | null = null;
  if (hasSize) [OH, OW] = pair(op, "size", a.size, 1);
  else {
    const raw = Array.isArray(a.scale_factor) ? a.scale_factor : [a.scale_factor, a.scale_factor];
    if (raw.length !== 2 || raw.some((v) => typeof v !== "number" || !(v > 0) || !Number.isFinite(v)))
      fail(op, `scale_factor must be a positive number or a pair of them, got ${describe(a.scale_factor)}`);
    sf = raw as [number, number];
    OH = Math.floor(H * sf[0]);
    OW = Math.floor(W * sf[1]);
    if (OH < 1 || OW < 1) fail(op, `scale_factor ${describe(a.scale_factor)} gives an empty output ${OH}x${OW} for input ${shapeStr(x.shape)}`);
  }
  // bilinear keeps 4 words per output row and column, nearest 1
  const words = op === "upsample_bilinear2d" ? 4 : 1;
  checkOutputSize(op, [N, C, OH, OW], x.engine, `input ${shapeStr(x.shape)}, ${hasSize ? `size ${describe(a.size)}` : `scale_factor ${describe(a.scale_factor)}`}`, 4 * words * (OH + OW));
  if (OH > MAX_INT_ATTR || OW > MAX_INT_ATTR) fail(op, `the output ${OH}x${OW} is too large (at most 2^31 - 1 a side)`);
  return { N, C, H, W, OH, OW, sf };
}

/** PyTorch's area_pixel_compute_scale and source index rule for linear interpolation, in f64. */
export function linearTable(inSize: number, outSize: number, align: boolean, sf: number | undefined) {
  const scale = align ? (outSize > 1 ? (inSize - 1) / (outSize - 1) : 0) : sf !== undefined ? 1 / sf : inSize / outSize;
  const i0 = new Int32Array(outSize), i1 = new Int32Array(outSize), l0 = new Float32Array(outSize), l1 = new Float32Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const src = align ? scale * o : Math.max(scale * (o + 0.5) - 0.5, 0);
    const lo = Math.min(Math.floor(src), inSize - 1);
    const lambda = Math.min(Math.max(src - lo, 0), 1);
    i0[o] = lo;
    i1[o] = lo + (lo < inSize - 1 ? 1 : 0);
    l1[o] = lambda;
    l0[o] = 1 - lambda;
  }
  return [i0, i1, l0, l1];
}

function runBilinear(eng: Engine, dir: "fwd" | "bwd", x: Tensor, src: Tensor, dst: Tensor, a: UpAttrs) {
  const g = upGeom("upsample_bilinear2d", x, a);
  const align = !!a.align_corners;
  const rows = linearTable(g.H, g.OH, align, g.sf?.[0]), cols = linearTable(g.W, g.OW, align, g.sf?.[1]);
  const scratch = eng.scratch(g.W * 4);
  withTable(eng, [...rows, ...cols], (tab) => {
    eng.run(`f32_upsample_bilinear2d_${dir}`, [src.ptr, dst.ptr, g.N * g.C, g.H, g.W, g.OH, g.OW, tab, scratch, g.W], g.N * g.C * g.OH * (g.W + g.OW) * 2);
  });
}

export const upsampleBilinear2dOp = defineOp<UpAttrs>(
  {
    name: "upsample_bilinear2d",
    inputs: ["input"],
    check([x], a) {
      upGeom("upsample_bilinear2d", x!, a);
      if (a.align_corners != null && typeof a.align_corners !== "boolean")
        fail("upsample_bilinear2d", `align_corners must be a boolean, got ${describe(a.align_corners)}`);
    },
    forward(ctx, [x], a) {
      const g = upGeom("upsample_bilinear2d", x!, a);
      const y = empty([g.N, g.C, g.OH, g.OW], ctx.engine);
      runBilinear(ctx.engine, "fwd", x!, x!, y, a);
      return y;
    },
    backward(ctx, gy, [x], a) {
      const dx = empty(x!.shape, ctx.engine);
      runBilinear(ctx.engine, "bwd", x!, gy, dx, a);
      return [dx];
    },
  },
  { size: null, scale_factor: null, align_corners: false, recompute_scale_factor: null },
);

/** PyTorch's legacy "nearest" source index: floor(dst * scale) in float32, clamped. */
export function nearestTable(inSize: number, outSize: number, sf: number | undefined): Int32Array {
  const t = new Int32Array(outSize);
  const scale = Math.fround(sf !== undefined ? 1 / sf : inSize / outSize);
  for (let o = 0; o < outSize; o++) {
    if (outSize === inSize) t[o] = o;
    else if (outSize === 2 * inSize) t[o] = o >> 1;
    else t[o] = Math.min(Math.floor(Math.fround(o * scale)), inSize - 1);
  }
  return t;
}

function runNearest(eng: Engine, dir: "fwd" | "bwd", x: Tensor, src: Tensor, dst: Tensor, a: UpAttrs) {
  const g = upGeom("upsample_nearest2d", x, a);
  withTable(eng, [nearestTable(g.H, g.OH, g.sf?.[0]), nearestTable(g.W, g.OW, g.sf?.[1])], (tab) => {
    eng.run(`f32_upsample_nearest2d_${dir}`, [src.ptr, dst.ptr, g.N * g.C, g.H, g.W, g.OH, g.OW, tab], g.N * g.C * g.OH * g.OW);
  });
}

export const upsampleNearest2dOp = defineOp<UpAttrs>({
  name: "upsample_nearest2d",
  inputs: ["input"],
  check([x], a) {
    upGeom("upsample_nearest2d", x!, a);
    if (a.align_corners != null) fail("upsample_nearest2d", "align_corners applies only to bilinear mode");
  },
  forward(ctx, [x], a) {
    const g = upGeom("upsample_nearest2d", x!, a);
    const y = empty([g.N, g.C, g.OH, g.OW], ctx.engine);
    runNearest(ctx.engine, "fwd", x!, x!, y, a);
    return y;
  },
  backward(ctx, gy, [x], a) {
    const dx = empty(x!.shape, ctx.engine);
    runNearest(ctx.engine, "bwd", x!, gy, dx, a);
    return [dx];
  },
}, { size: null, scale_factor: null, align_corners: null, recompute_scale_factor: null });

/** F.interpolate for NCHW: mode "bilinear" (default align_corners false) or "nearest". */
export function interpolate(x: Tensor, opts: UpAttrs & { mode?: "bilinear" | "nearest" }): Tensor {
  if (opts === undefined) fail("interpolate", "give the size or the scale_factor: interpolate(x, { size }) or interpolate(x, { scale_factor })");
  checkOptions("interpolate", opts, ["size", "scale_factor", "mode", "align_corners", "recompute_scale_factor"], { noun: "attribute", error: OpError });
  const { mode = "nearest", ...rest } = opts;
  if (mode === "bilinear") return upsampleBilinear2dOp.apply([x], rest);
  if (mode === "nearest") return upsampleNearest2dOp.apply([x], rest);
  fail("interpolate", `mode must be "bilinear" or "nearest", got ${describe(mode)}`);
}

// ---- full reductions and scaling ----

function defineReduction(name: string, mean: boolean) {
  return defineOp<{}>({
    name,
    inputs: ["input"],
    forward(ctx, [x]) {
      const y = empty([], ctx.engine);
      sumTo(ctx.engine, x!, y, mean ? x!.size : 1);
      return y;
    },
    backward(ctx, g, [x]) {
      const dx = empty(x!.shape, ctx.engine);
      const v = mean ? Math.fround(g.item() / x!.size) : g.item();
      ctx.engine.run("f32_fill", [dx.ptr, dx.size, v], dx.size);
      return [dx];
    },
  });
}

export const sumOp = defineReduction("sum", false);
export const meanOp = defineReduction("mean", true);

/** Sum of every element: a scalar tensor (shape []). */
export function sum(x: Tensor): Tensor {
  // PyTorch's x.sum(dim) would reduce one dimension: say so rather than sum everything
  if (arguments.length > 1) fail("sum", `sums every element and takes no dim (got a second argument ${describe(arguments[1])}); there is no per-dimension sum yet`);
  return sumOp.apply([x]);
}

/** Mean of every element: a scalar tensor (shape []). */
export function mean(x: Tensor): Tensor {
  if (arguments.length > 1) fail("mean", `averages every element and takes no dim (got a second argument ${describe(arguments[1])}); there is no per-dimension mean yet`);
  return meanOp.apply([x]);
}

export const mulScalarOp = defineOp<{ scalar: number }>({
  name: "mul_scalar",
  inputs: ["input"],
  check(_in, a) {
    if (typeof a.scalar !== "number") fail("mul_scalar", `scalar must be a number, got ${describe(a.scalar)}`);
  },
  forward(ctx, [x], a) {
    const y = empty(x!.shape, ctx.engine);
    ctx.engine.run("f32_scale", [x!.ptr, y.ptr, y.size, a.scalar], y.size);
    return y;
  },
  backward(ctx, g, _in, a) {
    const dx = empty(g.shape, ctx.engine);
    ctx.engine.run("f32_scale", [g.ptr, dx.ptr, dx.size, a.scalar], dx.size);
    return [dx];
  },
}, { scalar: undefined });

/** x * s for a number s. */
export function mul(x: Tensor, s: number): Tensor {
  return mulScalarOp.apply([x], { scalar: s });
}
