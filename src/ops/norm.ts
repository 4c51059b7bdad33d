// Normalisation ops (kernels in assembly/norm.ts): batch_norm, batch_norm_fused (batch norm +
// residual + ReLU in one op), local_response_norm, dropout.
// Semantics follow torch.nn.functional (1.13).
import { Tensor, shapeStr, empty } from "../tensor.js";
import { defineOp, fail, checkRank, checkInt, OpError, sameShape, type OpContext, type OpEntry } from "./table.js";
import { checkOptions, describe } from "../options.js";
import { clone, addOp, reluOp } from "./eltwise.js";
import { isGradEnabled, needsGrad } from "../autograd.js";

/** Whether the op's backward will be recorded (else what forward would keep for it is freed at
 *  once: inference should not depend on the garbage collector). */
function recording(...inputs: (Tensor | null)[]): boolean {
  return isGradEnabled() && inputs.some((t) => needsGrad(t));
}

function checkNumber(op: string, what: string, v: unknown, min = -Infinity, max = Infinity, maxOpen = false): number {
  const ok = typeof v === "number" && Number.isFinite(v) && v >= min && (maxOpen ? v < max : v <= max);
  if (!ok) {
    const range = min === -Infinity && max === Infinity ? "a finite number" : `a number in [${min}, ${max}${maxOpen ? ")" : "]"}`;
    fail(op, `${what} must be ${range}, got ${describe(v)}`);
  }
  return v as number;
}

function checkBool(op: string, what: string, v: unknown): boolean {
  if (typeof v !== "boolean") fail(op, `${what} must be true or false, got ${describe(v)}`);
  return v as boolean;
}

/** The input seen as [N, C, HW]. */
function nchw(x: Tensor): [number, number, number] {
  return [x.shape[0], x.shape[1], x.shape.slice(2).reduce((a, b) => a * b, 1)];
}

function saved(op: string, ...ts: Tensor[]): void {
  for (const t of ts) t.assertUsable(`${op} backward (a tensor kept from forward)`);
}

// ---- batch_norm ----

export interface BatchNormAttrs {
  training: boolean;
  momentum: number;
  eps: number;
}

/** batch_norm's checks (batch_norm_fused runs them too, under its own name). */
function checkBatchNorm(op: string, x: Tensor, rm: Tensor | null, rv: Tensor | null, w: Tensor | null, b: Tensor | null, a: BatchNormAttrs): void {
  checkRank(op, "input ([N,C], [N,C,L] or [N,C,H,W])", x, [2, 3, 4]);
  checkBool(op, "training", a.training);
  checkNumber(op, "momentum", a.momentum, 0, 1);
  checkNumber(op, "eps", a.eps, 0);
  const C = x.shape[1];
  const perChannel: [string, Tensor | null][] = [["running_mean", rm], ["running_var", rv], ["weight", w], ["bias", b]];
  for (const [what, t] of perChannel)
    if (t && (t.rank !== 1 || t.shape[0] !== C))
      fail(op, `${what} must have shape [C] = [${C}] for input ${shapeStr(x.shape)}, got ${shapeStr(t.shape)}`);
  if (!!rm !== !!rv) fail(op, `running_mean and running_var must be given together (input ${shapeStr(x.shape)})`);
  if (!a.training && !rm) fail(op, `running_mean and running_var are required when training is false (input ${shapeStr(x.shape)})`);
  const [N, , HW] = nchw(x);
  // PyTorch's rule: the unbiased running variance needs at least two values per channel
  if (a.training && N * HW <= 1) fail(op, `expected more than 1 value per channel when training, got input ${shapeStr(x.shape)}`);
}

export interface BatchNormFusedAttrs extends BatchNormAttrs {
  /** max(y, 0) at the end */
  relu: boolean;
}

/** The forward of batch_norm (r = null, relu false) and batch_norm_fused: y = relu?(batch
 *  norm(x) + r) by f32_batchnorm_fwd, which does batch norm's multiply and add, then f32_add's
 *  add and f32_relu_fwd's max, in that order (the same bits as those ops one by one). */
function normForward(ctx: OpContext, [x, rm, rv, w, b, r]: (Tensor | null)[], a: BatchNormFusedAttrs): Tensor {
  const eng = ctx.engine;
  const [N, C, HW] = nchw(x!);
  const y = empty(x!.shape, eng);
  const rec = recording(x, w, b, r);
  const run = (mean: number, invstd: number, w: number, b: number) =>
    eng.run("f32_batchnorm_fwd", [x!.ptr, y.ptr, mean, invstd, w, b, r?.ptr ?? 0, a.relu ? 1 : 0, N, C, HW], 2 * x!.size);
  if (!a.training) {
    // inference: y = x*s + t per channel (s, t in f64, rounded once; the kernel's mean 0: x - 0
    // is x), the same two f32 operations as conv2d_fused's epilogue, so fusing changes no bit
    const { scale, shift } = batchNormEvalParams(rm!, rv!, w, b, a.eps);
    run(0, scale.ptr, 0, shift.ptr);
    scale.dispose(), shift.dispose();
    if (rec) {
      // a copy: a later training call may update the running statistics before this backward
      const mean = clone(rm!), invstd = empty([C], eng);
      eng.run("f32_batchnorm_invstd", [rv!.ptr, C, a.eps, invstd.ptr], C);
      ctx.saved = { mean, invstd };
    }
    return y;
  }
  // training: the batch's statistics (and the running ones updated in place)
  const mean = empty([C], eng), invstd = empty([C], eng);
  rm?.markWritten();
  rv?.markWritten();
  eng.run("f32_batchnorm_stats", [x!.ptr, N, C, HW, a.eps, a.momentum, mean.ptr, invstd.ptr, rm?.ptr ?? 0, rv?.ptr ?? 0], 2 * x!.size);
  run(mean.ptr, invstd.ptr, w?.ptr ?? 0, b?.ptr ?? 0);
  if (rec) ctx.saved = { mean, invstd };
  else mean.dispose(), invstd.dispose();
  return y;
}

/** The backward of both: with relu, gm = g where y > 0 (relu's backward, written in the pass
 *  that sums it for the parameters' gradients), which is also the residual's gradient; then
 *  batch norm's input gradient of gm. [dx, -, -, dw, db, dr]. */
function normBackward(op: string, ctx: OpContext, g: Tensor, [x, , , w]: (Tensor | null)[], a: BatchNormFusedAttrs, needs: boolean[]): (Tensor | null)[] {
  const eng = ctx.engine;
  const [N, C, HW] = nchw(x!);
  const { mean, invstd } = ctx.saved as { mean: Tensor; invstd: Tensor };
  saved(op, mean, invstd, ...(a.relu ? [ctx.out] : []));
  const stats = (a.training && needs[0]) || needs[3] || needs[4];
  let dw: Tensor | null = stats ? empty([C], eng) : null, db: Tensor | null = stats ? empty([C], eng) : null;
  const z = a.relu ? ctx.out.ptr : 0;
  if (a.training && needs[0] && HW > 1) {
    // the sums and dx a channel at a time (f32_batchnorm_bwd: the two kernels below in one pass
    // per channel, the same bits); the masked gradient is kept only as the residual's gradient
    const gm = a.relu && needs[5] ? empty(g.shape, eng) : null;
    const dx = empty(x!.shape, eng);
    eng.run("f32_batchnorm_bwd", [x!.ptr, g.ptr, z, gm?.ptr ?? 0, mean.ptr, invstd.ptr, w?.ptr ?? 0, N, C, HW, dw!.ptr, db!.ptr, dx.ptr], 3 * x!.size);
    if (!needs[3]) dw!.dispose(), (dw = null);
    if (!needs[4]) db!.dispose(), (db = null);
    return [dx, null, null, dw, db, needs[5] ? gm ?? clone(g) : null];
  }
  const gm = a.relu ? empty(g.shape, eng) : g;
  if (stats) eng.run("f32_batchnorm_bwd_params", [x!.ptr, g.ptr, z, gm.ptr, mean.ptr, invstd.ptr, N, C, HW, dw!.ptr, db!.ptr], 2 * x!.size);
  else if (a.relu) eng.run("f32_relu_bwd", [ctx.out.ptr, g.ptr, gm.ptr, gm.size], gm.size);
  let dx: Tensor | null = null;
  if (needs[0]) {
    dx = empty(x!.shape, eng);
    eng.run("f32_batchnorm_bwd_input", [x!.ptr, gm.ptr, mean.ptr, invstd.ptr, w?.ptr ?? 0, dw?.ptr ?? 0, db?.ptr ?? 0, N, C, HW, a.training ? 1 : 0, dx.ptr], x!.size);
  }
  if (dw && !needs[3]) dw.dispose(), (dw = null);
  if (db && !needs[4]) db.dispose(), (db = null);
  // the residual's gradient: gm itself (ours), or a copy of g (not ours)
  const dr = needs[5] ? (gm === g ? clone(g) : gm) : null;
  if (gm !== g && gm !== dr) gm.dispose();
  return [dx, null, null, dw, db, dr];
}

export const batchNormOp = defineOp<BatchNormAttrs>(
  {
    name: "batch_norm",
    inputs: ["input", "running_mean?", "running_var?", "weight?", "bias?"],
    noGradInputs: ["running_mean", "running_var"],
    check([x, rm, rv, w, b], a) {
      checkBatchNorm("batch_norm", x!, rm, rv, w, b, a);
    },
    forward: (ctx, inputs, a) => normForward(ctx, [...inputs, null], { ...a, relu: false }),
    backward: (ctx, g, inputs, a, needs) => normBackward("batch_norm", ctx, g, inputs, { ...a, relu: false }, [...needs, false]).slice(0, 5),
  },
  { training: false, momentum: 0.1, eps: 1e-5 },
);

// ---- batch_norm_fused: batch norm (+ residual) (-> ReLU) in one op, for training ----

/**
 * y = relu?(batch_norm(x) + residual), as batch_norm, add and relu in a row (the same bits, the
 * same running statistics), in one pass over the output instead of three, keeping only y for
 * backward (not batch norm's and the add's outputs), and a backward whose ReLU mask is taken
 * in the same pass as batch norm's sums. src/nn/fusion.ts runs a chain's BatchNorm2d -> ReLU and
 * a residual block's BatchNorm2d -> + shortcut -> ReLU through it in training (in inference the
 * convolution takes them: conv2d_fused). On WebGPU it runs the unfused ops' kernels in a row.
 */
export const batchNormFusedOp = defineOp<BatchNormFusedAttrs>(
  {
    name: "batch_norm_fused",
    inputs: ["input", "running_mean?", "running_var?", "weight?", "bias?", "residual?"],
    noGradInputs: ["running_mean", "running_var"],
    check([x, rm, rv, w, b, r], a) {
      const op = "batch_norm_fused";
      checkBatchNorm(op, x!, rm, rv, w, b, a);
      checkBool(op, "relu", a.relu);
      if (r && !sameShape(r.shape, x!.shape)) fail(op, `residual ${shapeStr(r.shape)} must have the input's shape ${shapeStr(x!.shape)}`);
    },
    forward: normForward,
    backward: (ctx, g, inputs, a, needs) => normBackward("batch_norm_fused", ctx, g, inputs, a, needs),
    webgpu: {
      // the unfused ops' WebGPU kernels in a row (the same contract: running statistics, what is
      // kept, the gradients)
      forward(ctx, [x, rm, rv, w, b, r], a) {
        const { relu, ...bn } = a;
        const gpu = (op: OpEntry) => op.webgpu!;
        const bnCtx: OpContext = { ...ctx, saved: null };
        let y = gpu(batchNormOp).forward(bnCtx, [x, rm, rv, w, b], bn);
        if (r) {
          const s = gpu(addOp).forward({ ...ctx }, [y, r], {});
          y.dispose(), (y = s);
        }
        if (relu) {
          const z = gpu(reluOp).forward({ ...ctx }, [y], {});
          y.dispose(), (y = z);
        }
        ctx.saved = bnCtx.saved;
        return y;
      },
      backward(ctx, g, [x, rm, rv, w, b], a, needs) {
        const { relu, ...bn } = a;
        if (relu) saved("batch_norm_fused", ctx.out);
        // relu's backward from the output: y > 0 exactly where relu's argument is
        const gm = relu ? reluOp.webgpu!.backward!(ctx, g, [ctx.out], {}, [true])[0]! : g;
        try {
          const [dx, , , dw, db] = batchNormOp.webgpu!.backward!(ctx, gm, [x, rm, rv, w, b], bn, needs.slice(0, 5));
          return [dx, null, null, dw, db, needs[5] ? clone(gm) : null];
        } finally {
          if (gm !== g) gm.dispose();
        }
      },
    },
  },
  { training: false, momentum: 0.1, eps: 1e-5, relu: true },
);

/** relu?(batch_norm(x, ...) + residual) in one op (see batchNormFusedOp): the same values, running
 *  statistics and gradients as batch_norm, add and relu in a row. */
export function batch_norm_fused(
  x: Tensor,
  running_mean?: Tensor | null,
  running_var?: Tensor | null,
  weight?: Tensor | null,
  bias?: Tensor | null,
  residual?: Tensor | null,
  opts: Partial<BatchNormFusedAttrs> = {},
): Tensor {
  return batchNormFusedOp.apply([x, running_mean, running_var, weight, bias, residual], opts);
}

/** Batch norm's eval mode as a scale and a shift per channel: s = weight / sqrt(running_var +
 *  eps), t = bias - running_mean * s, in f64 and rounded once to f32 (CPU tensors; the caller
 *  disposes both). batch_norm's eval forward and the automatic fusion (src/nn/fusion.ts) share it. */
export function batchNormEvalParams(rm: Tensor, rv: Tensor, w: Tensor | null, b: Tensor | null, eps: number): { scale: Tensor; shift: Tensor } {
  const C = rm.shape[0], eng = rm.engine;
  const scale = empty([C], eng), shift = empty([C], eng);
  eng.run("f32_batchnorm_eval_params", [rm.ptr, rv.ptr, w?.ptr ?? 0, b?.ptr ?? 0, C, eps, scale.ptr, shift.ptr], C);
  return { scale, shift };
}

/** Batch normalisation over the channel dimension of [N,C], [N,C,L] or [N,C,H,W] (as
 *  torch.nn.functional.batch_norm). Training: batch statistics, and the running statistics (if
 *  given) are updated in place with the unbiased variance; inference: the running statistics. */
export function batch_norm(
  x: Tensor,
  running_mean?: Tensor | null,
  running_var?: Tensor | null,
  weight?: Tensor | null,
  bias?: Tensor | null,
  opts: Partial<BatchNormAttrs> = {},
): Tensor {
  return batchNormOp.apply([x, running_mean, running_var, weight, bias], opts);
}

// ---- local_response_norm ----

export interface LrnAttrs {
  size: number;
  alpha: number;
  beta: number;
  k: number;
}

export const lrnOp = defineOp<LrnAttrs>(
  {
    name: "local_response_norm",
    inputs: ["input"],
    check([x], a) {
      const op = "local_response_norm";
      if (x!.rank < 3) fail(op, `input must be rank 3 or more ([N,C,...]), got rank ${x!.rank} ${shapeStr(x!.shape)}`);
      checkInt(op, "size", a.size, 1);
      checkNumber(op, "alpha", a.alpha);
      checkNumber(op, "beta", a.beta);
      checkNumber(op, "k", a.k);
    },
    forward(ctx, [x], a) {
      const eng = ctx.engine;
      const [N, C, HW] = nchw(x!);
      const y = empty(x!.shape, eng);
      // the denominators are kept for backward only
      const scale = recording(x) ? empty(x!.shape, eng) : null;
      // PyTorch averages the squares over the window (always dividing by size), then scales by alpha
      eng.run("f32_lrn_fwd", [x!.ptr, y.ptr, scale?.ptr ?? 0, N, C, HW, a.size, a.alpha / a.size, a.beta, a.k], x!.size * a.size);
      ctx.saved = { scale };
      return y;
    },
    backward(ctx, g, [x], a) {
      const eng = ctx.engine;
      const [N, C, HW] = nchw(x!);
      const { scale } = ctx.saved as { scale: Tensor };
      saved("local_response_norm", scale, ctx.out);
      const dx = empty(x!.shape, eng);
      eng.run("f32_lrn_bwd", [x!.ptr, ctx.out.ptr, scale.ptr, g.ptr, dx.ptr, N, C, HW, a.size, a.alpha / a.size, a.beta], x!.size * a.size);
      return [dx];
    },
  },
  { size: 5, alpha: 1e-4, beta: 0.75, k: 1 },
);

/** Local response normalisation across channels, as torch.nn.functional.local_response_norm:
 *  y_c = x_c / (k + alpha/size · Σ_{window of size channels around c} x²)^beta.
 *  AlexNet: size 5, alpha 1e-4, beta 0.75, k 2. */
export function local_response_norm(x: Tensor, size: number, opts: Partial<Omit<LrnAttrs, "size">> = {}): Tensor {
  checkOptions("local_response_norm", opts, ["alpha", "beta", "k"], { noun: "attribute", error: OpError });
  return lrnOp.apply([x], { ...opts, size });
}

// ---- dropout ----

export interface DropoutAttrs {
  p: number;
  training: boolean;
  /** uint32; the same seed gives the same mask (for a tensor of the same size) */
  seed?: number;
}

function dropoutScale(p: number): number {
  return 1 / (1 - p);
}

export const dropoutOp = defineOp<DropoutAttrs>(
  {
    name: "dropout",
    inputs: ["input"],
    noFixture: "random mask (PyTorch's generator cannot be matched): property tests in test/norm.test.mjs",
    check(_in, a) {
      const op = "dropout";
      checkNumber(op, "p", a.p, 0, 1, true);
      checkBool(op, "training", a.training);
      if (a.seed !== undefined && (typeof a.seed !== "number" || !Number.isInteger(a.seed) || a.seed < 0 || a.seed >= 2 ** 32))
        fail(op, `seed must be an integer in [0, 2^32), got ${describe(a.seed)}`);
    },
    forward(ctx, [x], a) {
      if (!a.training) return clone(x!);
      const seed = a.seed ?? Math.floor(Math.random() * 2 ** 32);
      const y = empty(x!.shape, ctx.engine);
      ctx.engine.run("f32_dropout_fwd", [x!.ptr, y.ptr, x!.size, seed, a.p, dropoutScale(a.p)], x!.size);
      ctx.saved = { seed };
      return y;
    },
    backward(ctx, g, _in, a) {
      if (!a.training) return [clone(g)];
      const dx = empty(g.shape, ctx.engine);
      ctx.engine.run("f32_dropout_bwd", [g.ptr, dx.ptr, g.size, ctx.saved.seed, a.p, dropoutScale(a.p)], g.size);
      return [dx];
    },
  },
  { p: 0.5, training: true, seed: undefined },
);

/** Inverted dropout: each element is kept with probability 1 - p and scaled by 1/(1 - p). The mask
 *  is a hash of (seed, element index): the same on any thread count, recomputed for backward.
 *  Without a seed, a random one is drawn per call. training = false: identity. */
export function dropout(x: Tensor, opts: Partial<DropoutAttrs> = {}): Tensor {
  return dropoutOp.apply([x], opts);
}
