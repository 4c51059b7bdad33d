// WebGPU kernels of the ops in src/ops/norm.ts (wgsl/norm.wgsl), attached to their op-table
// entries: batch_norm, local_response_norm, dropout, forward and backward, with the CPU op's
// contracts (what is kept for backward, which inputs are written, the dropout mask).
import code from "../../../wgsl/norm.wgsl";
import { empty, type Tensor } from "../../tensor.js";
import { batchNormOp, lrnOp, dropoutOp } from "../../ops/norm.js";
import { isGradEnabled, needsGrad } from "../../autograd.js";
import { wgslFile, f32bits } from "../engine.js";
import { gpuClone } from "./eltwise.js";

export const K = wgslFile(
  "norm.wgsl",
  code,
  ["bn_partials", "bn_mean0", "bn_stats", "bn_stats_small", "bn_bwd_params_small", "bn_invstd", "bn_fwd", "bn_bwd_partials", "bn_bwd_params", "bn_bwd_input", "lrn_fwd", "lrn_bwd", "dropout"] as const,
);

const e = (t: Tensor) => t.ptr >>> 2;
const groups = (n: number) => Math.ceil(n / 256);

/** Whether the op's backward will be recorded (else nothing is kept for it), as the CPU op. */
function recording(...inputs: (Tensor | null)[]): boolean {
  return isGradEnabled() && inputs.some((t) => needsGrad(t));
}

/** The input seen as [N, C, HW]. */
function nchw(x: Tensor): [number, number, number] {
  return [x.shape[0], x.shape[1], x.shape.slice(2).reduce((a, b) => a * b, 1)];
}

// ---- batch_norm ----

/** Values of a channel per pass-1 workgroup (16 per thread): S = ceil(N·HW / CH) partials. */
const CH = 4096;
/** Up to this many values per channel, one thread a channel reduces them (the *_small kernels). */
const SMALL_M = 512;

batchNormOp.webgpu = {
  forward(ctx, [x, rm, rv, w, b], a) {
    const gpu = ctx.gpu!;
    const [N, C, HW] = nchw(x!);
    const y = empty(x!.shape, ctx.engine);
    let mean: Tensor;
    const invstd = empty([C], ctx.engine);
    if (a.training) {
      // batch statistics, two passes as the CPU: a first mean m0, then the deviations from it;
      // each pass per-(channel, chunk) partials, then per channel. Running stats in place.
      const M = N * HW, S = Math.ceil(M / CH);
      mean = empty([C], ctx.engine);
      const run = rm && rv ? [e(rm), e(rv), f32bits(a.eps), f32bits(a.momentum), 1] : [0, 0, f32bits(a.eps), f32bits(a.momentum), 0];
      if (M <= SMALL_M) {
        gpu.dispatch(K.bn_stats_small, [e(x!), e(mean), e(invstd), run[0], run[1], N, C, HW, ...run.slice(2)], Math.ceil(C / 64));
      } else {
        const part = empty([C * S * 2], ctx.engine);
        gpu.dispatch(K.bn_partials, [e(x!), e(part), N, C, HW, S, CH, 0, 0], C * S);
        gpu.dispatch(K.bn_mean0, [e(part), e(mean), C, S, M], C);
        gpu.dispatch(K.bn_partials, [e(x!), e(part), N, C, HW, S, CH, e(mean), 1], C * S);
        gpu.dispatch(K.bn_stats, [e(part), e(mean), e(invstd), run[0], run[1], C, S, M, ...run.slice(2)], C);
        part.dispose();
      }
    } else {
      // a copy: a later training call may update the running statistics before this backward
      mean = gpuClone(rm!);
      gpu.dispatch(K.bn_invstd, [e(rv!), e(invstd), C, f32bits(a.eps)], groups(C));
    }
    gpu.dispatch(K.bn_fwd, [e(x!), e(y), e(mean), e(invstd), w ? e(w) : 0, b ? e(b) : 0, x!.size, C, HW, w ? 1 : 0, b ? 1 : 0], groups(x!.size));
    if (recording(x, w, b)) ctx.saved = { mean, invstd };
    else mean.dispose(), invstd.dispose();
    return y;
  },
  backward(ctx, g, [x, , , w], a, needs) {
    const gpu = ctx.gpu!;
    const [N, C, HW] = nchw(x!);
    const { mean, invstd } = ctx.saved as { mean: Tensor; invstd: Tensor };
    for (const t of [mean, invstd]) t.assertUsable("batch_norm backward (a tensor kept from forward)");
    let dw: Tensor | null = null, db: Tensor | null = null;
    if ((a.training && needs[0]) || needs[3] || needs[4]) {
      const M = N * HW, S = Math.ceil(M / CH);
      dw = empty([C], ctx.engine);
      db = empty([C], ctx.engine);
      if (M <= SMALL_M) {
        gpu.dispatch(K.bn_bwd_params_small, [e(x!), e(g), e(mean), e(invstd), e(dw), e(db), N, C, HW], Math.ceil(C / 64));
      } else {
        const part = empty([C * S * 2], ctx.engine);
        gpu.dispatch(K.bn_bwd_partials, [e(x!), e(g), e(mean), e(part), N, C, HW, S, CH], C * S);
        gpu.dispatch(K.bn_bwd_params, [e(part), e(invstd), e(dw), e(db), C, S], C);
        part.dispose();
      }
    }
    let dx: Tensor | null = null;
    if (needs[0]) {
      dx = empty(x!.shape, ctx.engine);
      const train = a.training ? 1 : 0;
      gpu.dispatch(
        K.bn_bwd_input,
        [e(x!), e(g), e(mean), e(invstd), w ? e(w) : 0, dw ? e(dw) : 0, db ? e(db) : 0, x!.size, C, HW, f32bits(N * HW), train, w ? 1 : 0, e(dx)],
        groups(x!.size),
      );
    }
    if (dw && !needs[3]) dw.dispose(), (dw = null);
    if (db && !needs[4]) db.dispose(), (db = null);
    return [dx, null, null, dw, db];
  },
};

// ---- local_response_norm ----

lrnOp.webgpu = {
  forward(ctx, [x], a) {
    const [N, C, HW] = nchw(x!);
    const y = empty(x!.shape, ctx.engine);
    // the denominators are kept for backward only
    const scale = recording(x) ? empty(x!.shape, ctx.engine) : null;
    ctx.gpu!.dispatch(
      K.lrn_fwd,
      [e(x!), e(y), scale ? e(scale) : 0, N, C, HW, a.size, f32bits(a.alpha / a.size), f32bits(a.beta), f32bits(a.k), scale ? 1 : 0],
      groups(x!.size),
    );
    ctx.saved = { scale };
    return y;
  },
  backward(ctx, g, [x], a) {
    const [N, C, HW] = nchw(x!);
    const { scale } = ctx.saved as { scale: Tensor };
    for (const t of [scale, ctx.out]) t.assertUsable("local_response_norm backward (a tensor kept from forward)");
    const dx = empty(x!.shape, ctx.engine);
    ctx.gpu!.dispatch(K.lrn_bwd, [e(x!), e(ctx.out), e(scale), e(g), e(dx), N, C, HW, a.size, f32bits(a.alpha / a.size), f32bits(a.beta)], groups(x!.size));
    return [dx];
  },
};

// ---- dropout: the CPU's hash mask (same seed, same bits) ----

dropoutOp.webgpu = {
  forward(ctx, [x], a) {
    if (!a.training) return gpuClone(x!);
    const seed = a.seed ?? Math.floor(Math.random() * 2 ** 32);
    const y = empty(x!.shape, ctx.engine);
    ctx.gpu!.dispatch(K.dropout, [e(x!), e(y), x!.size, seed, f32bits(a.p), f32bits(1 / (1 - a.p))], groups(x!.size));
    ctx.saved = { seed };
    return y;
  },
  backward(ctx, g, _in, a) {
    if (!a.training) return [gpuClone(g)];
    const dx = empty(g.shape, ctx.engine);
    ctx.gpu!.dispatch(K.dropout, [e(g), e(dx), g.size, ctx.saved.seed, f32bits(a.p), f32bits(1 / (1 - a.p))], groups(g.size));
    return [dx];
  },
};
