// WebGPU kernels of the ops in src/ops/pool.ts (wgsl/pool.wgsl), attached to their op-table
// entries. The ops' check() has validated the geometry; the window rules (padding, ceil_mode,
// count_include_pad, adaptive windows) are the CPU op's, computed by the kernels per output.
import code from "../../../wgsl/pool.wgsl";
import { empty, type Tensor } from "../../tensor.js";
import { maxPool2dOp, avgPool2dOp, adaptiveAvgPool2dOp, globalAvgPool2dOp, poolGeom, type PoolGeom } from "../../ops/pool.js";
import { pair, type OpEntry } from "../../ops/table.js";
import { wgslFile } from "../engine.js";

export const K = wgslFile("pool.wgsl", code, ["maxpool_fwd", "maxpool_argmax", "maxpool_bwd", "avgpool_fwd", "avgpool_fwd_wg", "avgpool_bwd"] as const);

const e = (t: Tensor) => t.ptr >>> 2;
const groups = (n: number) => Math.ceil(n / 256);

// ---- max_pool2d ----

type IntOr2 = number | [number, number];
interface PoolAttrs { kernel_size: IntOr2; stride?: IntOr2 | null; padding?: IntOr2; dilation?: IntOr2; ceil_mode?: boolean }

// the CPU op's geometry (check() has validated it already)
const geom = (op: string, x: Tensor, a: PoolAttrs): PoolGeom => poolGeom(op, x, a);

/** The max-pool kernels' geometry words: NC, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw. */
function maxWords(g: ReturnType<typeof geom>): number[] {
  return [g.N * g.C, g.H, g.W, g.OH, g.OW, g.k[0], g.k[1], g.s[0], g.s[1], g.p[0], g.p[1], g.d[0], g.d[1]];
}

maxPool2dOp.webgpu = {
  // one thread an output: PyTorch's scan of the window (ties to the first max, NaN to the last NaN)
  forward(ctx, [x], a) {
    const g = geom("max_pool2d", x!, a);
    const y = empty([g.N, g.C, g.OH, g.OW], ctx.engine);
    ctx.gpu!.dispatch(K.maxpool_fwd, [e(x!), e(y), ...maxWords(g)], groups(y.size));
    return y;
  },
  // as the CPU, the argmax is found again from x (the same scan): each window's winning tap,
  // then a gather over the windows holding each input element, in output order
  backward(ctx, gy, [x], a) {
    const g = geom("max_pool2d", x!, a);
    const tap = empty([gy.size], ctx.engine);
    ctx.gpu!.dispatch(K.maxpool_argmax, [e(x!), e(tap), ...maxWords(g)], groups(gy.size));
    const dx = empty(x!.shape, ctx.engine);
    ctx.gpu!.dispatch(K.maxpool_bwd, [e(tap), e(gy), e(dx), ...maxWords(g)], groups(dx.size));
    tap.dispose();
    return [dx];
  },
};

// ---- average pools: one kernel pair, the windows given per axis ----

/** Per axis: size, out, k, s, p (k, s, p unused by adaptive windows). */
interface AvgAxes { rows: number[]; cols: number[]; adaptive: boolean; includePad: boolean; area: number }

function avgWords(x: Tensor, ax: AvgAxes): number[] {
  return [x.shape[0] * x.shape[1], ...ax.rows, ...ax.cols, ax.adaptive ? 1 : 0, ax.includePad ? 1 : 0];
}

/** Windows of this many inputs or more get a workgroup each in the forward. */
const WG_WINDOW = 1024;

function attachAvg<A>(op: OpEntry<A>, axes: (x: Tensor, a: A) => AvgAxes) {
  op.webgpu = {
    forward(ctx, [x], a) {
      const ax = axes(x!, a);
      const y = empty([x!.shape[0], x!.shape[1], ax.rows[1], ax.cols[1]], ctx.engine);
      if (ax.area >= WG_WINDOW) ctx.gpu!.dispatch(K.avgpool_fwd_wg, [e(x!), e(y), ...avgWords(x!, ax)], y.size);
      else ctx.gpu!.dispatch(K.avgpool_fwd, [e(x!), e(y), ...avgWords(x!, ax)], groups(y.size));
      return y;
    },
    // a gather: each input element sums its windows' shares (the CPU's order)
    backward(ctx, gy, [x], a) {
      const dx = empty(x!.shape, ctx.engine);
      ctx.gpu!.dispatch(K.avgpool_bwd, [e(gy), e(dx), ...avgWords(x!, axes(x!, a))], groups(dx.size));
      return [dx];
    },
  };
}

/** adaptive windows along one axis: at most ceil(size/out) + 1 long */
const adaptiveAxis = (size: number, out: number) => [size, out, 0, 1, 0];
const adaptiveArea = (H: number, W: number, OH: number, OW: number) => Math.min(H, Math.ceil(H / OH) + 1) * Math.min(W, Math.ceil(W / OW) + 1);

attachAvg(avgPool2dOp, (x, a) => {
  const g = geom("avg_pool2d", x, { ...a, dilation: 1 });
  return {
    rows: [g.H, g.OH, g.k[0], g.s[0], g.p[0]],
    cols: [g.W, g.OW, g.k[1], g.s[1], g.p[1]],
    adaptive: false,
    includePad: a.count_include_pad,
    area: g.k[0] * g.k[1],
  };
});

attachAvg(adaptiveAvgPool2dOp, (x, a) => {
  const [, , H, W] = x.shape;
  const raw = Array.isArray(a.output_size) ? a.output_size : [a.output_size, a.output_size];
  const OH = raw[0] ?? H, OW = raw[1] ?? W;
  return { rows: adaptiveAxis(H, OH), cols: adaptiveAxis(W, OW), adaptive: true, includePad: false, area: adaptiveArea(H, W, OH, OW) };
});

attachAvg(globalAvgPool2dOp, (x) => {
  const [, , H, W] = x.shape;
  return { rows: adaptiveAxis(H, 1), cols: adaptiveAxis(W, 1), adaptive: true, includePad: false, area: H * W };
});
