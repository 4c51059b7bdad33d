// Loss ops (kernels in assembly/loss.ts): cross_entropy, binary_cross_entropy (on probabilities
// and on logits), multi_margin_loss (multiclass hinge), mse_loss, l1_loss.
//
// Targets are data: no gradient flows to them (noGradInputs), class indices are f32 holding
// integers. A forward writes the unreduced loss; "mean" and "sum" reduce it with a fixed-order
// f64 sum (sumTo in shape.ts), so the result has the same bits on any thread count.
import { Tensor, shapeStr, empty } from "../tensor.js";
import { defineOp, fail, checkRank, sameShape, type OpContext } from "./table.js";
import { sumTo } from "./shape.js";
import { describe } from "../options.js";

type Reduction = "mean" | "sum" | "none";

function checkReduction(op: string, r: unknown) {
  if (r !== "mean" && r !== "sum" && r !== "none") fail(op, `reduction must be "mean", "sum" or "none", got ${describe(r)}`);
}

/** The unreduced loss, or its sum / mean as a scalar tensor (the unreduced buffer is freed). */
function reduce(ctx: OpContext, loss: Tensor, reduction: Reduction): Tensor {
  if (reduction === "none") return loss;
  const y = empty([], ctx.engine);
  sumTo(ctx.engine, loss, y, reduction === "mean" ? loss.size : 1);
  loss.dispose();
  return y;
}

/** Output-gradient arguments of a backward kernel: pointer, stride (0: one scalar), scale. */
function gradArgs(g: Tensor, reduction: Reduction, count: number): number[] {
  return [g.ptr, reduction === "none" ? 1 : 0, reduction === "mean" ? 1 / count : 1];
}

/** logits [N, C] and class indices [N]: shapes, and every target an integer in [0, C). */
function checkClassTargets(op: string, x: Tensor, t: Tensor) {
  checkRank(op, "input", x, 2);
  checkRank(op, "target", t, 1);
  const [N, C] = x.shape;
  if (t.shape[0] !== N) fail(op, `target ${shapeStr(t.shape)} does not match input batch ${N} (input ${shapeStr(x.shape)})`);
  if (C === 0) fail(op, `input ${shapeStr(x.shape)} has no classes`);
  // values on the GPU cannot be read here: its kernels check them and the next read reports a bad
  // one (src/webgpu/ops/loss.ts)
  if (t.device !== "cpu") return;
  const td = t.data;
  for (let i = 0; i < N; i++)
    if (!Number.isInteger(td[i]) || td[i] < 0 || td[i] >= C)
      fail(op, `target[${i}] = ${td[i]} is not a class index in [0, ${C}) (input ${shapeStr(x.shape)})`);
}

// ---- classification losses: logits [N, C], class indices [N] ----
// cross_entropy also takes score maps [N, C, d1, ...] with class maps [N, d1, ...] (a class per
// pixel: segmentation), as PyTorch's does.

interface CeAttrs { reduction: Reduction; ignore_index: number }

/** [N, C, d1, ...] logits and [N, d1, ...] targets: shapes, and every target a class index in
 *  [0, C) or ignore_index. Returns how many targets count (not ignored). */
function checkCrossEntropy(x: Tensor, t: Tensor, ignore: number): number {
  const op = "cross_entropy";
  if (x.shape.length < 2) fail(op, `input must be [N, C] logits or [N, C, d1, ...] score maps, got ${shapeStr(x.shape)}`);
  const [N, C, ...rest] = x.shape;
  const want = [N, ...rest];
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i]))
    fail(op, `target ${shapeStr(t.shape)} does not match input ${shapeStr(x.shape)}: expected class indices of shape ${shapeStr(want)}`);
  if (C === 0) fail(op, `input ${shapeStr(x.shape)} has no classes`);
  if (t.device !== "cpu") return -1; // on the GPU its kernels check (as checkClassTargets says)
  const td = t.data;
  let counted = 0;
  for (let i = 0; i < td.length; i++) {
    if (td[i] === ignore) continue;
    if (!Number.isInteger(td[i]) || td[i] < 0 || td[i] >= C)
      fail(op, `target[${i}] = ${td[i]} is not a class index in [0, ${C})${ignore >= 0 && ignore < C ? "" : ` or ignore_index ${ignore}`} (input ${shapeStr(x.shape)})`);
    counted++;
  }
  return counted;
}

/** N, C and the positions per image P of a cross_entropy input. */
function ceDims(x: Tensor): [number, number, number] {
  const [N, C, ...rest] = x.shape;
  return [N, C, rest.reduce((a, b) => a * b, 1)];
}

export const crossEntropyOp = defineOp<CeAttrs>(
  {
    name: "cross_entropy",
    inputs: ["input", "target"],
    noGradInputs: ["target"],
    check([x, t], a) {
      checkReduction("cross_entropy", a.reduction);
      // the kernels compare it as a 32-bit integer
      if (!Number.isInteger(a.ignore_index) || a.ignore_index < -(2 ** 31) || a.ignore_index > 2 ** 31 - 1)
        fail("cross_entropy", `ignore_index must be an integer in [-2^31, 2^31), got ${describe(a.ignore_index)}`);
      checkCrossEntropy(x!, t!, a.ignore_index);
    },
    forward(ctx, [x, t], a) {
      const [N, C, P] = ceDims(x!);
      const loss = empty(t!.shape, ctx.engine);
      if (x!.shape.length === 2) ctx.engine.run("f32_cross_entropy_fwd", [x!.ptr, t!.ptr, loss.ptr, N, C, a.ignore_index], N * C * 20);
      else ctx.engine.run("f32_cross_entropy_map_fwd", [x!.ptr, t!.ptr, loss.ptr, N, C, P, a.ignore_index], N * C * P * 20);
      // the mean is over the targets that count (PyTorch's: NaN when all are ignored); counted
      // once, for backward too
      ctx.saved = a.reduction === "mean" ? ceCount(t!, a.ignore_index) : N * P;
      if (a.reduction !== "mean") return reduce(ctx, loss, a.reduction);
      const y = empty([], ctx.engine);
      sumTo(ctx.engine, loss, y, ctx.saved);
      loss.dispose();
      return y;
    },
    backward(ctx, g, [x, t], a) {
      const [N, C, P] = ceDims(x!);
      const dx = empty(x!.shape, ctx.engine);
      const [gp, gs, scale] = gradArgs(g, a.reduction, ctx.saved);
      if (x!.shape.length === 2) ctx.engine.run("f32_cross_entropy_bwd", [x!.ptr, t!.ptr, gp, gs, scale, dx.ptr, N, C, a.ignore_index], N * C * 25);
      else ctx.engine.run("f32_cross_entropy_map_bwd", [x!.ptr, t!.ptr, gp, gs, scale, dx.ptr, N, C, P, a.ignore_index], N * C * P * 25);
      return [dx, null];
    },
  },
  { reduction: "mean", ignore_index: -100 },
);

/** How many targets are not ignore_index (the divisor of the mean). */
function ceCount(t: Tensor, ignore: number): number {
  const td = t.data;
  let n = 0;
  for (let i = 0; i < td.length; i++) if (td[i] !== ignore) n++;
  return n;
}

/** Softmax cross-entropy of logits [N, C] against class indices [N], or of score maps
 *  [N, C, d1, ...] against class maps [N, d1, ...] (segmentation: a class per pixel). Targets
 *  equal to `ignore_index` (default -100, PyTorch's) add nothing and do not count in the mean. */
export function cross_entropy(input: Tensor, target: Tensor, opts: Partial<CeAttrs> = {}): Tensor {
  return crossEntropyOp.apply([input, target], opts);
}

interface MarginAttrs { p: number; margin: number; reduction: Reduction }

export const multiMarginLossOp = defineOp<MarginAttrs>(
  {
    name: "multi_margin_loss",
    inputs: ["input", "target"],
    noGradInputs: ["target"],
    check([x, t], a) {
      const op = "multi_margin_loss";
      checkClassTargets(op, x!, t!);
      checkReduction(op, a.reduction);
      if (a.p !== 1 && a.p !== 2) fail(op, `p must be 1 or 2, got ${describe(a.p)}`);
      if (typeof a.margin !== "number" || !Number.isFinite(a.margin)) fail(op, `margin must be a finite number, got ${describe(a.margin)}`);
    },
    forward(ctx, [x, t], a) {
      const [N, C] = x!.shape;
      const loss = empty([N], ctx.engine);
      ctx.engine.run("f32_multi_margin_fwd", [x!.ptr, t!.ptr, loss.ptr, N, C, a.p, a.margin], N * C * 4);
      return reduce(ctx, loss, a.reduction);
    },
    backward(ctx, g, [x, t], a) {
      const [N, C] = x!.shape;
      const dx = empty(x!.shape, ctx.engine);
      ctx.engine.run("f32_multi_margin_bwd", [x!.ptr, t!.ptr, ...gradArgs(g, a.reduction, N), dx.ptr, N, C, a.p, a.margin], N * C * 4);
      return [dx, null];
    },
  },
  { p: 1, margin: 1, reduction: "mean" },
);

/** Multiclass hinge loss (SVM): sum over j != y of max(0, margin - x[y] + x[j])^p / C. */
export function multi_margin_loss(input: Tensor, target: Tensor, opts: Partial<MarginAttrs> = {}): Tensor {
  return multiMarginLossOp.apply([input, target], opts);
}

// ---- element-wise losses: input and target of the same shape ----

/** An element-wise loss with kernels f32_<kernel>_fwd(x, t, loss, n) and
 *  f32_<kernel>_bwd(x, t, g, gs, scale, dx, n). */
function elementLoss(name: string, kernel: string, extraCheck?: (x: Tensor) => void) {
  return defineOp<{ reduction: Reduction }>(
    {
      name,
      inputs: ["input", "target"],
      noGradInputs: ["target"],
      check([x, t], a) {
        if (!sameShape(x!.shape, t!.shape)) fail(name, `target ${shapeStr(t!.shape)} does not match input ${shapeStr(x!.shape)}`);
        checkReduction(name, a.reduction);
        extraCheck?.(x!);
      },
      forward(ctx, [x, t], a) {
        const loss = empty(x!.shape, ctx.engine);
        ctx.engine.run(`f32_${kernel}_fwd`, [x!.ptr, t!.ptr, loss.ptr, x!.size], x!.size * 4);
        return reduce(ctx, loss, a.reduction);
      },
      backward(ctx, g, [x, t], a) {
        const dx = empty(x!.shape, ctx.engine);
        ctx.engine.run(`f32_${kernel}_bwd`, [x!.ptr, t!.ptr, ...gradArgs(g, a.reduction, x!.size), dx.ptr, x!.size], x!.size * 4);
        return [dx, null];
      },
    },
    { reduction: "mean" },
  );
}

export const mseLossOp = elementLoss("mse_loss", "mse");
export const l1LossOp = elementLoss("l1_loss", "l1");
export const bceOp = elementLoss("binary_cross_entropy", "bce", (x) => {
  if (x.device !== "cpu") return; // on the GPU its kernels check, and the next read reports (src/webgpu/ops/loss.ts)
  const d = x.data;
  for (let i = 0; i < d.length; i++)
    if (!(d[i] >= 0 && d[i] <= 1))
      fail("binary_cross_entropy", `input values must be probabilities in [0, 1], got ${d[i]} at element ${i} (input ${shapeStr(x.shape)})`);
});
export const bceWithLogitsOp = elementLoss("binary_cross_entropy_with_logits", "bce_logits");

/** Squared error (L2). */
export function mse_loss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  return mseLossOp.apply([input, target], opts);
}

/** Absolute error (L1). */
export function l1_loss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  return l1LossOp.apply([input, target], opts);
}

/** Binary cross-entropy of probabilities (logs clamped at -100, as PyTorch). */
export function binary_cross_entropy(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  return bceOp.apply([input, target], opts);
}

/** Binary cross-entropy on logits (a sigmoid folded in, stable for any logit). */
export function binary_cross_entropy_with_logits(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  return bceWithLogitsOp.apply([input, target], opts);
}
