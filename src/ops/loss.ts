// Loss ops (kernels in assembly/loss.ts): cross_entropy, binary_cross_entropy (on probabilities
// and on logits), multi_margin_loss (multiclass hinge), mse_loss, l1_loss.
//
// Targets are data: no gradient flows to them (noGradInputs), class indices are f32 holding
// integers. A forward writes the unreduced loss; "mean" and "sum" reduce it with a fixed-order
// f64 sum (sumTo in shape.ts), so the result has the same bits on any thread count.
import { Tensor, shapeStr, empty } from "../tensor.js";
import { defineOp, fail, checkRank, sameShape, type OpContext } from "./table.js";
import { sumTo } from "./shape.js";

type Reduction = "mean" | "sum" | "none";

function checkReduction(op: string, r: unknown) {
  if (r !== "mean" && r !== "sum" && r !== "none") fail(op, `reduction must be "mean", "sum" or "none", got ${JSON.stringify(r)}`);
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
  const td = t.data;
  for (let i = 0; i < N; i++)
    if (!Number.isInteger(td[i]) || td[i] < 0 || td[i] >= C)
      fail(op, `target[${i}] = ${td[i]} is not a class index in [0, ${C}) (input ${shapeStr(x.shape)})`);
}

// ---- classification losses: logits [N, C], class indices [N] ----

interface CeAttrs { reduction: Reduction }

export const crossEntropyOp = defineOp<CeAttrs>(
  {
    name: "cross_entropy",
    inputs: ["input", "target"],
    noGradInputs: ["target"],
    check([x, t], a) {
      checkClassTargets("cross_entropy", x!, t!);
      checkReduction("cross_entropy", a.reduction);
    },
    forward(ctx, [x, t], a) {
      const [N, C] = x!.shape;
      const loss = empty([N], ctx.engine);
      ctx.engine.run("f32_cross_entropy_fwd", [x!.ptr, t!.ptr, loss.ptr, N, C], N * C * 20);
      return reduce(ctx, loss, a.reduction);
    },
    backward(ctx, g, [x, t], a) {
      const [N, C] = x!.shape;
      const dx = empty(x!.shape, ctx.engine);
      ctx.engine.run("f32_cross_entropy_bwd", [x!.ptr, t!.ptr, ...gradArgs(g, a.reduction, N), dx.ptr, N, C], N * C * 25);
      return [dx, null];
    },
  },
  { reduction: "mean" },
);

/** Softmax cross-entropy of logits [N, C] against class indices [N]. */
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
      if (a.p !== 1 && a.p !== 2) fail(op, `p must be 1 or 2, got ${JSON.stringify(a.p)}`);
      if (typeof a.margin !== "number" || !Number.isFinite(a.margin)) fail(op, `margin must be a finite number, got ${JSON.stringify(a.margin)}`);
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
  return defineOp<CeAttrs>(
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
  const d = x.data;
  for (let i = 0; i < d.length; i++)
    if (!(d[i] >= 0 && d[i] <= 1))
      fail("binary_cross_entropy", `input values must be probabilities in [0, 1], got ${d[i]} at element ${i} (input ${shapeStr(x.shape)})`);
});
export const bceWithLogitsOp = elementLoss("binary_cross_entropy_with_logits", "bce_logits");

/** Squared error (L2). */
export function mse_loss(input: Tensor, target: Tensor, opts: Partial<CeAttrs> = {}): Tensor {
  return mseLossOp.apply([input, target], opts);
}

/** Absolute error (L1). */
export function l1_loss(input: Tensor, target: Tensor, opts: Partial<CeAttrs> = {}): Tensor {
  return l1LossOp.apply([input, target], opts);
}

/** Binary cross-entropy of probabilities (logs clamped at -100, as PyTorch). */
export function binary_cross_entropy(input: Tensor, target: Tensor, opts: Partial<CeAttrs> = {}): Tensor {
  return bceOp.apply([input, target], opts);
}

/** Binary cross-entropy on logits (a sigmoid folded in, stable for any logit). */
export function binary_cross_entropy_with_logits(input: Tensor, target: Tensor, opts: Partial<CeAttrs> = {}): Tensor {
  return bceWithLogitsOp.apply([input, target], opts);
}
