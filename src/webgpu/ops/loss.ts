// WebGPU kernels of the ops in src/ops/loss.ts (wgsl/loss.wgsl, after the shared
// wgsl/act_math.wgsl), attached to their op-table entries. Offsets are passed in elements.
//
// As on the CPU, a forward writes the unreduced loss and "mean"/"sum" reduce it to a scalar:
// here in two passes with a fixed order (sum_partials: a workgroup per 1024 values; sum_finish:
// one workgroup over the partials), so the same inputs give the same bits every run. Nothing is
// read back: cross_entropy's mean divides by the count of targets that are not ignore_index,
// counted on the GPU (count_partials) and kept for backward as a one-element tensor.
//
// Nor can a GPU op check its targets' values as the CPU op does before running (a class index
// out of range, a probability outside [0, 1]): its kernels do, write NaN there and report the
// first bad element (deviceCheck, src/webgpu/engine.ts), and the next read rejects with the same
// error as the CPU op's, naming the value and its index.
import math from "../../../wgsl/act_math.wgsl";
import code from "../../../wgsl/loss.wgsl";
import { empty, shapeStr, type Shape, type Tensor } from "../../tensor.js";
import { crossEntropyOp, multiMarginLossOp, mseLossOp, l1LossOp, bceOp, bceWithLogitsOp } from "../../ops/loss.js";
import { OpError, type OpContext, type OpEntry } from "../../ops/table.js";
import { wgslFile, f32bits, deviceCheck, type DeviceCheck, type GpuEngine, type Kernel } from "../engine.js";
import { rowLaunch } from "./activation.js";

export const K = wgslFile("loss.wgsl", math + code, [
  "ce_fwd_t", "ce_fwd_wg", "ce_bwd_t", "ce_bwd_wg", "margin_fwd", "margin_bwd",
  "mse_fwd", "mse_bwd", "l1_fwd", "l1_bwd", "bce_fwd", "bce_bwd", "bcel_fwd", "bcel_bwd",
  "sum_partials", "count_partials", "sum_finish",
] as const);

type Reduction = "mean" | "sum" | "none";
const e = (t: Tensor) => t.ptr >>> 2;
const groups = (n: number) => Math.ceil(n / 256);
const NONE = 0xffffffff; // "no offset" (loss.wgsl)
const CHUNK = 1024; // values per workgroup of the first reduction pass (loss.wgsl)

/** A scalar tensor: the sum of src's values (or of its targets that are not `ignore`, when
 *  counting) divided by div, or by the scalar at divp (a count made on the GPU). */
function sumScalar(gpu: GpuEngine, src: Tensor, div: number, divp: Tensor | null, count?: number): Tensor {
  const y = empty([], src.engine);
  const parts = Math.ceil(src.size / CHUNK);
  const part = empty([Math.max(1, parts)], src.engine);
  const args = [e(src), src.size, e(part)];
  if (count === undefined) gpu.dispatch(K.sum_partials, args, parts);
  else gpu.dispatch(K.count_partials, [...args, f32bits(count)], parts);
  gpu.dispatch(K.sum_finish, [e(part), parts, e(y), f32bits(div), divp ? e(divp) : NONE], 1);
  part.dispose();
  return y;
}

/** The unreduced loss, or its sum / mean (over `count` values) as a scalar; frees the unreduced. */
function reduce(ctx: OpContext, loss: Tensor, reduction: Reduction, count = loss.size): Tensor {
  if (reduction === "none") return loss;
  const y = sumScalar(ctx.gpu!, loss, reduction === "mean" ? count : 1, null);
  loss.dispose();
  return y;
}

/** Output-gradient arguments of a backward kernel: offset, stride (0: one scalar), scale. */
function gradArgs(g: Tensor, reduction: Reduction, count: number): number[] {
  return [e(g), reduction === "none" ? 1 : 0, f32bits(reduction === "mean" ? 1 / count : 1)];
}

// ---- the checks the kernels make (the CPU ops' messages, src/ops/loss.ts) ----

/** The end of a device check's message: what is known about where and when. */
function context(input: Shape | undefined, where: string, value: number | undefined, info: unknown): string {
  const parts = [input ? `input ${shapeStr(input)}` : null, where];
  if (!info) parts.push("the details of that call were not kept: more than 4096 checking kernels ran before the read");
  else if (value === undefined) parts.push("its value is unknown: the tensor was freed or written before the read");
  return ` (${parts.filter(Boolean).join("; ")})`;
}

interface ClassInfo { input: Shape; C: number; ignore?: number }

/** A target of `op` that is neither a class index in [0, C) nor ignore_index (cross_entropy,
 *  multi_margin_loss): the element is the target's flat index. */
function classTarget(op: string): DeviceCheck<ClassInfo> {
  return deviceCheck({
    error({ index, value, info, where }) {
      const val = value === undefined ? "" : ` = ${value}`;
      if (!info) return new OpError(`${op}: target[${index}] is not a class index${context(undefined, where, value, info)}`);
      const { input, C, ignore } = info;
      const orIgnore = ignore === undefined || (ignore >= 0 && ignore < C) ? "" : ` or ignore_index ${ignore}`;
      return new OpError(`${op}: target[${index}]${val} is not a class index in [0, ${C})${orIgnore}${context(input, where, value, info)}`);
    },
  });
}
const ceTarget = classTarget("cross_entropy");
const marginTarget = classTarget("multi_margin_loss");

/** binary_cross_entropy's input (not its target) outside [0, 1], as the CPU op checks. */
const probabilityInput: DeviceCheck<{ input: Shape }> = deviceCheck({
  error({ index, value, info, where }) {
    const got = value === undefined ? "got a value" : `got ${value}`;
    return new OpError(`binary_cross_entropy: input values must be probabilities in [0, 1], ${got} at element ${index}${context(info?.input, where, value, info)}`);
  },
});

// ---- cross_entropy: logits [N, C] or score maps [N, C, d1, ...]; one row of C classes per
// position (P positions per image, P = 1 for logits), as softmax's rows (rowLaunch) ----

const ceDims = (x: Tensor) => [x.shape[0], x.shape[1], x.shape.slice(2).reduce((a, b) => a * b, 1)];

crossEntropyOp.webgpu = {
  forward(ctx, [x, t], a) {
    const gpu = ctx.gpu!;
    const [N, C, P] = ceDims(x!);
    const ignore = f32bits(a.ignore_index);
    const loss = empty(t!.shape, ctx.engine);
    const [wg, n] = rowLaunch(N, C, P);
    const tag = gpu.checkTag(ceTarget, t!, { input: x!.shape, C, ignore: a.ignore_index });
    gpu.dispatch(wg ? K.ce_fwd_wg : K.ce_fwd_t, [e(x!), e(t!), e(loss), N, C, P, ignore, tag], n);
    ctx.saved = null;
    if (a.reduction !== "mean") return reduce(ctx, loss, a.reduction);
    // the mean is over the targets that count (NaN when all are ignored, as PyTorch): counted
    // on the GPU, kept for backward
    const counted = sumScalar(gpu, t!, 1, null, a.ignore_index);
    ctx.saved = counted;
    const y = sumScalar(gpu, loss, 1, counted);
    loss.dispose();
    return y;
  },
  backward(ctx, g, [x, t], a) {
    const [N, C, P] = ceDims(x!);
    const dx = empty(x!.shape, ctx.engine);
    const cnt = ctx.saved ? e(ctx.saved as Tensor) : NONE;
    const [wg, n] = rowLaunch(N, C, P);
    const tag = ctx.gpu!.checkTag(ceTarget, t!, { input: x!.shape, C, ignore: a.ignore_index });
    ctx.gpu!.dispatch(wg ? K.ce_bwd_wg : K.ce_bwd_t,
      [e(x!), e(t!), ...gradArgs(g, a.reduction, 1), cnt, e(dx), N, C, P, f32bits(a.ignore_index), tag], n);
    return [dx, null];
  },
};

// ---- multi_margin_loss: logits [N, C], class indices [N]; a thread a row ----

multiMarginLossOp.webgpu = {
  forward(ctx, [x, t], a) {
    const [N, C] = x!.shape;
    const loss = empty([N], ctx.engine);
    const tag = ctx.gpu!.checkTag(marginTarget, t!, { input: x!.shape, C });
    ctx.gpu!.dispatch(K.margin_fwd, [e(x!), e(t!), e(loss), N, C, a.p, f32bits(a.margin), tag], groups(N));
    return reduce(ctx, loss, a.reduction);
  },
  backward(ctx, g, [x, t], a) {
    const [N, C] = x!.shape;
    const dx = empty(x!.shape, ctx.engine);
    const tag = ctx.gpu!.checkTag(marginTarget, t!, { input: x!.shape, C });
    ctx.gpu!.dispatch(K.margin_bwd, [e(x!), e(t!), ...gradArgs(g, a.reduction, N), e(dx), N, C, a.p, f32bits(a.margin), tag], groups(N));
    return [dx, null];
  },
};

// ---- element-wise losses: a thread an element ----

/** checksInput: the kernels check the input's values (binary_cross_entropy's probabilities) and
 *  take a tag as their last argument */
function elementLoss(op: OpEntry<{ reduction: Reduction }>, fwd: Kernel, bwd: Kernel, checksInput?: DeviceCheck<{ input: Shape }>) {
  const tag = (ctx: OpContext, x: Tensor) => (checksInput ? [ctx.gpu!.checkTag(checksInput, x, { input: x.shape })] : []);
  op.webgpu = {
    forward(ctx, [x, t], a) {
      const loss = empty(x!.shape, ctx.engine);
      ctx.gpu!.dispatch(fwd, [e(x!), e(t!), e(loss), x!.size, ...tag(ctx, x!)], groups(x!.size));
      return reduce(ctx, loss, a.reduction);
    },
    backward(ctx, g, [x, t], a) {
      const dx = empty(x!.shape, ctx.engine);
      ctx.gpu!.dispatch(bwd, [e(x!), e(t!), ...gradArgs(g, a.reduction, x!.size), e(dx), x!.size, ...tag(ctx, x!)], groups(x!.size));
      return [dx, null];
    },
  };
}
elementLoss(mseLossOp, K.mse_fwd, K.mse_bwd);
elementLoss(l1LossOp, K.l1_fwd, K.l1_bwd);
elementLoss(bceOp, K.bce_fwd, K.bce_bwd, probabilityInput);
elementLoss(bceWithLogitsOp, K.bcel_fwd, K.bcel_bwd);
