// Pooling ops (kernels in assembly/pool.ts): max_pool2d, avg_pool2d, adaptive_avg_pool2d,
// global_avg_pool2d. Output sizes, padding rules and divisors follow PyTorch.
import { Tensor, shapeStr, empty } from "../tensor.js";
import { defineOp, fail, checkRank, pair, type OpDefaults, checkOutputSize } from "./table.js";
import { withTable } from "./scratch.js";
import { fmt } from "../engine/arena.js";
import type { Engine } from "../engine/engine.js";
import { describe } from "../options.js";

type IntOr2 = number | [number, number];

/** PyTorch's pooling_output_shape: floor (or ceil) division, and with ceil_mode the last window
 *  must start inside the input or its left padding. */
function poolOut(size: number, k: number, pad: number, stride: number, dil: number, ceil: boolean): number {
  let o = Math.floor((size + 2 * pad - dil * (k - 1) - 1 + (ceil ? stride - 1 : 0)) / stride) + 1;
  if (ceil && (o - 1) * stride >= size + pad) o--;
  return o;
}

export interface PoolGeom {
  N: number; C: number; H: number; W: number; OH: number; OW: number;
  k: [number, number]; s: [number, number]; p: [number, number]; d: [number, number];
}

/** Validates a pooling call and returns its geometry (the GPU kernels use it too). */
export function poolGeom(op: string, x: Tensor, a: { kernel_size: IntOr2; stride?: IntOr2 | null; padding?: IntOr2; dilation?: IntOr2; ceil_mode?: boolean }): PoolGeom {
  checkRank(op, "input", x, 4);
  const [N, C, H, W] = x.shape;
  if (C === 0 || H === 0 || W === 0) fail(op, `input ${shapeStr(x.shape)} has an empty channel or spatial dimension`);
  const k = pair(op, "kernel_size", a.kernel_size, 1);
  const s = a.stride == null || (Array.isArray(a.stride) && (a.stride as number[]).length === 0) ? k : pair(op, "stride", a.stride, 1);
  const p = pair(op, "padding", a.padding ?? 0, 0);
  const d = pair(op, "dilation", a.dilation ?? 1, 1);
  if (a.ceil_mode !== undefined && typeof a.ceil_mode !== "boolean") fail(op, `ceil_mode must be a boolean, got ${describe(a.ceil_mode)}`);
  if (p[0] > k[0] >> 1 || p[1] > k[1] >> 1)
    fail(op, `padding [${p}] must be at most half the kernel size [${k}] (input ${shapeStr(x.shape)})`);
  const ceil = !!a.ceil_mode;
  const OH = poolOut(H, k[0], p[0], s[0], d[0], ceil), OW = poolOut(W, k[1], p[1], s[1], d[1], ceil);
  if (OH < 1 || OW < 1)
    fail(op, `input ${shapeStr(x.shape)} is too small for kernel [${k}] with padding [${p}] and dilation [${d}]: output would be ${OH}x${OW}`);
  checkOutputSize(op, [N, C, OH, OW], x.engine, `input ${shapeStr(x.shape)}, kernel [${k}], stride [${s}], padding [${p}]`, 12 * (OH + OW));
  return { N, C, H, W, OH, OW, k, s, p, d };
}

// ---- max_pool2d ----

interface MaxPoolAttrs { kernel_size: IntOr2; stride?: IntOr2 | null; padding: IntOr2; dilation: IntOr2; ceil_mode: boolean }

/** A window whose positions all fall in the padding (possible with dilation) has no max. */
function checkWindowsHitInput(op: string, x: Tensor, g: PoolGeom) {
  // the first tap at or after the input's start, and whether it is still inside the input
  const hits = (o: number, s: number, p: number, k: number, d: number, size: number) => {
    const i0 = Math.max(0, Math.ceil((p - o * s) / d));
    return i0 < k && o * s - p + i0 * d < size;
  };
  for (let oh = 0; oh < g.OH; oh++)
    if (!hits(oh, g.s[0], g.p[0], g.k[0], g.d[0], g.H)) fail(op, `window of output row ${oh} lies wholly in the padding (input ${shapeStr(x.shape)}, kernel [${g.k}], padding [${g.p}], dilation [${g.d}])`);
  for (let ow = 0; ow < g.OW; ow++)
    if (!hits(ow, g.s[1], g.p[1], g.k[1], g.d[1], g.W)) fail(op, `window of output column ${ow} lies wholly in the padding (input ${shapeStr(x.shape)}, kernel [${g.k}], padding [${g.p}], dilation [${g.d}])`);
}

/** Floats in a padded row buffer of the max pool kernels: left padding, the row, the last window,
 *  and room for the vector reads of a last partial group of four outputs. */
function maxRowLen(g: PoolGeom): number {
  return Math.max(g.p[1] + g.W, (g.OW - 1) * g.s[1] + (g.k[1] - 1) * g.d[1] + 1) + 3 * g.s[1] + 8;
}

function geomArgs(g: PoolGeom): number[] {
  return [g.k[0], g.k[1], g.s[0], g.s[1], g.p[0], g.p[1], g.d[0], g.d[1]];
}

export const maxPool2dOp = defineOp<MaxPoolAttrs>(
  {
    name: "max_pool2d",
    inputs: ["input"],
    check([x], a) {
      const g = poolGeom("max_pool2d", x!, a);
      // the forward kernel keeps a padded row as wide as the windows per thread (the backward
      // k[0] of them: its own scratch request says so if that is too much)
      const perThread = maxRowLen(g) * 4;
      const threads = (x!.engine as any).threads ?? 1;
      const limit: number = (x!.engine as any).arena?.limit ?? 2 ** 32;
      if (perThread * threads > limit)
        fail("max_pool2d", `the window [${g.k}] with dilation [${g.d}] needs ${fmt(perThread)} of scratch per thread, more than the engine's memory can hold (${fmt(limit)}) (input ${shapeStr(x!.shape)}, padding [${g.p}])`);
      checkWindowsHitInput("max_pool2d", x!, g);
    },
    forward(ctx, [x], a) {
      const g = poolGeom("max_pool2d", x!, a);
      const y = empty([g.N, g.C, g.OH, g.OW], ctx.engine);
      const rowLen = maxRowLen(g);
      const scratch = ctx.engine.scratch(rowLen * 4);
      ctx.engine.run("f32_maxpool2d_fwd", [x!.ptr, y.ptr, g.N * g.C, g.H, g.W, g.OH, g.OW, ...geomArgs(g), scratch, rowLen], y.size * g.k[0] * g.k[1]);
      return y;
    },
    // the argmax is found again from x (PyTorch's scan), so nothing is kept from the forward
    backward(ctx, gy, [x], a) {
      const g = poolGeom("max_pool2d", x!, a);
      const dx = empty(x!.shape, ctx.engine);
      const rowLen = maxRowLen(g);
      const stride = g.k[0] * rowLen + Math.ceil(g.OW / 4) * 4;
      const scratch = ctx.engine.scratch(stride * 4);
      ctx.engine.run("f32_maxpool2d_bwd", [x!.ptr, gy.ptr, dx.ptr, g.N * g.C, g.H, g.W, g.OH, g.OW, ...geomArgs(g), scratch, rowLen, stride], gy.size * g.k[0] * g.k[1]);
      return [dx];
    },
  },
  { kernel_size: undefined, stride: null, padding: 0, dilation: 1, ceil_mode: false },
);

/** 2-D max pooling over an NCHW input; padding counts as -Infinity. */
export function max_pool2d(x: Tensor, opts: Partial<MaxPoolAttrs> & { kernel_size: IntOr2 }): Tensor {
  return maxPool2dOp.apply([x], opts);
}

// ---- average pools: one kernel pair driven by a table of window bounds ----

interface Windows { start: Int32Array; end: Int32Array; count: Int32Array }

function avgPoolRun(eng: Engine, kernel: "fwd" | "bwd", src: Tensor, dst: Tensor, NC: number, H: number, W: number, OH: number, OW: number, rows: Windows, cols: Windows) {
  const scratch = eng.scratch(W * 4);
  withTable(eng, [rows.start, rows.end, rows.count, cols.start, cols.end, cols.count], (tab) => {
    eng.run(`f32_avgpool2d_${kernel}`, [src.ptr, dst.ptr, NC, H, W, OH, OW, tab, scratch, W], NC * (OH * W + H * W));
  });
}

/** avg_pool2d windows along one axis (PyTorch): the divisor counts the padding up to the padded
 *  edge when count_include_pad, else only the input. */
function avgWindows(size: number, out: number, k: number, s: number, p: number, includePad: boolean): Windows {
  const w: Windows = { start: new Int32Array(out), end: new Int32Array(out), count: new Int32Array(out) };
  for (let o = 0; o < out; o++) {
    const st = o * s - p, en = Math.min(st + k, size + p);
    w.start[o] = Math.max(st, 0);
    w.end[o] = Math.min(en, size);
    w.count[o] = includePad ? en - st : w.end[o] - w.start[o];
  }
  return w;
}

/** adaptive pooling windows (PyTorch's start_index / end_index): [floor(o*in/out), ceil((o+1)*in/out)) */
function adaptiveWindows(size: number, out: number): Windows {
  const w: Windows = { start: new Int32Array(out), end: new Int32Array(out), count: new Int32Array(out) };
  for (let o = 0; o < out; o++) {
    w.start[o] = Math.floor((o * size) / out);
    w.end[o] = Math.ceil(((o + 1) * size) / out);
    w.count[o] = w.end[o] - w.start[o];
  }
  return w;
}

/** The output size of a window-average op, and its window tables built on demand (after the
 *  output is allocated: they are as long as the output's sides). */
interface AvgPlan { OH: number; OW: number; tables: () => { rows: Windows; cols: Windows } }

/** Defines a window-average op: `windows` validates and gives the output size and windows. */
function defineAvgOp<A>(name: string, windows: (x: Tensor, a: A) => AvgPlan, defaults: OpDefaults<A>) {
  return defineOp<A>(
    {
      name,
      inputs: ["input"],
      check([x], a) {
        windows(x!, a);
      },
      forward(ctx, [x], a) {
        const [N, C, H, W] = x!.shape;
        const { OH, OW, tables } = windows(x!, a);
        const y = empty([N, C, OH, OW], ctx.engine);
        const { rows, cols } = tables();
        avgPoolRun(ctx.engine, "fwd", x!, y, N * C, H, W, OH, OW, rows, cols);
        return y;
      },
      backward(ctx, gy, [x], a) {
        const [N, C, H, W] = x!.shape;
        const { OH, OW, tables } = windows(x!, a);
        const dx = empty(x!.shape, ctx.engine);
        const { rows, cols } = tables();
        avgPoolRun(ctx.engine, "bwd", gy, dx, N * C, H, W, OH, OW, rows, cols);
        return [dx];
      },
    },
    defaults,
  );
}

interface AvgPoolAttrs {
  kernel_size: IntOr2;
  stride?: IntOr2 | null;
  padding: IntOr2;
  ceil_mode: boolean;
  count_include_pad: boolean;
  /** PyTorch's; not supported (an error unless null) */
  divisor_override?: number | null;
}

export const avgPool2dOp = defineAvgOp<AvgPoolAttrs>(
  "avg_pool2d",
  (x, a) => {
    const g = poolGeom("avg_pool2d", x, { ...a, dilation: 1 });
    if (typeof a.count_include_pad !== "boolean") fail("avg_pool2d", `count_include_pad must be a boolean, got ${describe(a.count_include_pad)}`);
    if (a.divisor_override != null) fail("avg_pool2d", "divisor_override is not supported");
    return {
      OH: g.OH,
      OW: g.OW,
      tables: () => ({
        rows: avgWindows(g.H, g.OH, g.k[0], g.s[0], g.p[0], a.count_include_pad),
        cols: avgWindows(g.W, g.OW, g.k[1], g.s[1], g.p[1], a.count_include_pad),
      }),
    };
  },
  { kernel_size: undefined, stride: null, padding: 0, ceil_mode: false, count_include_pad: true, divisor_override: null },
);

/** 2-D average pooling over an NCHW input. */
export function avg_pool2d(x: Tensor, opts: Partial<AvgPoolAttrs> & { kernel_size: IntOr2 }): Tensor {
  return avgPool2dOp.apply([x], opts);
}

type OutSize = number | null | [number | null, number | null];

export const adaptiveAvgPool2dOp = defineAvgOp<{ output_size: OutSize }>("adaptive_avg_pool2d", (x, a) => {
  const op = "adaptive_avg_pool2d";
  checkRank(op, "input", x, 4);
  const [, C, H, W] = x.shape;
  if (C === 0 || H === 0 || W === 0) fail(op, `input ${shapeStr(x.shape)} has an empty channel or spatial dimension`);
  const raw = Array.isArray(a.output_size) ? a.output_size : [a.output_size, a.output_size];
  if (raw.length !== 2 || a.output_size === undefined || a.output_size === null)
    fail(op, `output_size must be an int or a pair [h, w] (null keeps the input size), got ${describe(a.output_size)}`);
  // null keeps that dimension's input size (PyTorch's None)
  const [OH, OW] = pair(op, "output_size", [raw[0] ?? H, raw[1] ?? W], 1);
  checkOutputSize(op, [x.shape[0], C, OH, OW], x.engine, `input ${shapeStr(x.shape)}, output_size ${describe(a.output_size)}`, 12 * (OH + OW));
  return { OH, OW, tables: () => ({ rows: adaptiveWindows(H, OH), cols: adaptiveWindows(W, OW) }) };
}, { output_size: undefined });

/** Adaptive average pooling to output_size (int or [h, w]), PyTorch's window rule. */
export function adaptive_avg_pool2d(x: Tensor, output_size: OutSize): Tensor {
  return adaptiveAvgPool2dOp.apply([x], { output_size });
}

export const globalAvgPool2dOp = defineAvgOp<{}>("global_avg_pool2d", (x) => {
  checkRank("global_avg_pool2d", "input", x, 4);
  const [, C, H, W] = x.shape;
  if (C === 0 || H === 0 || W === 0) fail("global_avg_pool2d", `input ${shapeStr(x.shape)} has an empty channel or spatial dimension`);
  return { OH: 1, OW: 1, tables: () => ({ rows: adaptiveWindows(H, 1), cols: adaptiveWindows(W, 1) }) };
}, {});

/** Mean over each channel's plane: [N, C, H, W] -> [N, C, 1, 1]. */
export function global_avg_pool2d(x: Tensor): Tensor {
  return globalAvgPool2dOp.apply([x]);
}
