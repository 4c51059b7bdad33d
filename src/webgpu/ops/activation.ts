// WebGPU kernels of the ops in src/ops/activation.ts (wgsl/activation.wgsl, after the shared
// wgsl/act_math.wgsl), attached to their op-table entries. Offsets are passed in elements.
import math from "../../../wgsl/act_math.wgsl";
import code from "../../../wgsl/activation.wgsl";
import { empty, shapeStr, type Tensor } from "../../tensor.js";
import { leakyReluOp, sigmoidOp, tanhOp, softmaxOp, logSoftmaxOp } from "../../ops/activation.js";
import { wgslFile, f32bits } from "../engine.js";
import type { OpEntry } from "../../ops/table.js";

export const K = wgslFile("activation.wgsl", math + code, [
  "leaky_fwd", "leaky_bwd", "sigmoid_fwd", "sigmoid_bwd", "tanh_fwd", "tanh_bwd",
  "softmax_fwd_t", "softmax_fwd_wg", "softmax_bwd_t", "softmax_bwd_wg",
] as const);

const e = (t: Tensor) => t.ptr >>> 2;
const groups = (n: number) => Math.ceil(n / 256);

/** Reductions along D of an [outer, D, inner] view: a workgroup a row when rows are long
 *  (D >= 128), unless there are many rows of inner > 1 (then one thread a row keeps the reads of
 *  neighbouring threads together and the GPU busy). A function of the shapes only, so a shape
 *  always gets the same kernel and the same bits. Returns [use the _wg kernels, workgroups]. */
export function rowLaunch(outer: number, D: number, inner: number): [boolean, number] {
  const rows = outer * inner;
  const wg = D >= 128 && (inner === 1 || rows < 4096);
  return [wg, wg ? rows : groups(rows)];
}

leakyReluOp.webgpu = {
  forward(ctx, [x], a) {
    const y = empty(x!.shape, ctx.engine);
    ctx.gpu!.dispatch(K.leaky_fwd, [e(x!), e(y), y.size, f32bits(a.negative_slope)], groups(y.size));
    return y;
  },
  backward(ctx, g, [x], a) {
    const dx = empty(x!.shape, ctx.engine);
    ctx.gpu!.dispatch(K.leaky_bwd, [e(x!), e(g), e(dx), dx.size, f32bits(a.negative_slope)], groups(dx.size));
    return [dx];
  },
};

/** sigmoid and tanh: forward from x, backward from x (as the CPU: accurate where they saturate) */
function unaryFromInput(op: OpEntry<{}>, fwd: (typeof K)[keyof typeof K], bwd: (typeof K)[keyof typeof K]) {
  op.webgpu = {
    forward(ctx, [x]) {
      const y = empty(x!.shape, ctx.engine);
      ctx.gpu!.dispatch(fwd, [e(x!), e(y), y.size], groups(y.size));
      return y;
    },
    backward(ctx, g, [x]) {
      const dx = empty(x!.shape, ctx.engine);
      ctx.gpu!.dispatch(bwd, [e(x!), e(g), e(dx), dx.size], groups(dx.size));
      return [dx];
    },
  };
}
unaryFromInput(sigmoidOp, K.sigmoid_fwd, K.sigmoid_bwd);
unaryFromInput(tanhOp, K.tanh_fwd, K.tanh_bwd);

/** [outer, D, inner] around dim (check() has validated dim) */
function split(x: Tensor, dim: number): [number, number, number] {
  const d = dim < 0 ? dim + x.rank : dim;
  const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  if (!(d >= 0 && d < x.rank)) throw new Error(`softmax: dim ${dim} out of range for ${shapeStr(x.shape)}`);
  return [prod(x.shape.slice(0, d)), x.shape[d], prod(x.shape.slice(d + 1))];
}

function softmaxKernels(op: OpEntry<{ dim: number }>, log: number) {
  op.webgpu = {
    forward(ctx, [x], a) {
      const [outer, D, inner] = split(x!, a.dim);
      const y = empty(x!.shape, ctx.engine);
      const [wg, n] = rowLaunch(outer, D, inner);
      ctx.gpu!.dispatch(wg ? K.softmax_fwd_wg : K.softmax_fwd_t, [e(x!), e(y), outer, D, inner, log], n);
      return y;
    },
    // from the output y: softmax dx = y (dy - sum(dy y)); log_softmax dx = dy - exp(y) sum(dy)
    backward(ctx, g, [x], a) {
      const [outer, D, inner] = split(x!, a.dim);
      const dx = empty(x!.shape, ctx.engine);
      const [wg, n] = rowLaunch(outer, D, inner);
      ctx.gpu!.dispatch(wg ? K.softmax_bwd_wg : K.softmax_bwd_t, [e(ctx.out), e(g), e(dx), outer, D, inner, log], n);
      return [dx];
    },
  };
}
softmaxKernels(softmaxOp, 0);
softmaxKernels(logSoftmaxOp, 1);
