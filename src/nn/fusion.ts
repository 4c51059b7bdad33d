// Automatic fusion. For inference: in a chain of layers (a Sequential, a ResidualBlock's body),
// Conv2d -> BatchNorm2d in eval mode [-> ReLU], and a ResidualBlock's ending
// Conv2d -> BatchNorm2d -> (+ shortcut) -> ReLU, run as one conv2d_fused op (src/ops/fused.ts):
// one pass over the output instead of up to four (one dispatch instead of four on the GPU),
// with the same bits as the layers one by one.
//
// It applies only where nothing could tell the difference:
// - batch norm in eval mode with running statistics (training mode normalises with the batch's
//   statistics and updates the running ones: never fused);
// - no gradient recorded (noGrad(), or nothing involved requires one): the fused op's scale and
//   shift are not functions of batch norm's parameters for autograd;
// - no forward hook (withForwardHook sees every layer's output; the fused layers have none);
// - the layers are the library's own Conv2d, BatchNorm2d and ReLU (not subclasses or patched
//   forwards);
// - fusion is on: init({ fuse: false }) or engine().fuse = false turns it off, and exportOnnx
//   turns it off while it traces (withoutFusion), so the ONNX graph keeps Conv,
//   BatchNormalization, Add and Relu.
// In training (and in eval mode with gradients recorded), where the convolution cannot take the
// batch norm, BatchNorm2d (or BatchNorm1d) -> ReLU and a block's ending BatchNorm2d -> +
// shortcut -> ReLU run as one batch_norm_fused op (src/ops/norm.ts: one pass forward, the ReLU
// mask inside batch norm's backward pass, the same bits), on the CPU, under the same conditions
// but the first two; and
// Conv2d -> ReLU with no batch norm between (LeNet, VGG, AlexNet) as conv2d_fused with only its
// ReLU, in any mode (its backward takes ReLU's mask from the output: the same gradients).
// The profiler times a fused group as its first layer (the convolution's, or the batch norm's
// for batch_norm_fused; the layers after it have no rows of their own then); a fused conv's path
// reads "fused <conv path>".
import { Tensor } from "../tensor.js";
import { isGradEnabled, needsGrad } from "../autograd.js";
import { Module, hasForwardHooks } from "./module.js";
import { Conv2d } from "./conv.js";
import { BatchNorm2d, BatchNorm1d } from "./norm.js";
import { ReLU } from "./activation.js";
import { conv2d_fused } from "../ops/fused.js";
import { batchNormEvalParams } from "../ops/norm.js";
import { engine } from "../engine/engine.js";
import { badArgument } from "../options.js";

let suppressed = 0;

/** Runs fn with the automatic fusion off (exportOnnx's tracing: it records the layers' own ops). */
export function withoutFusion<T>(fn: () => T): T {
  if (typeof fn !== "function") badArgument("withoutFusion", "its argument", "a function", fn);
  suppressed++;
  try {
    return fn();
  } finally {
    suppressed--;
  }
}

/** batch norm's eval-mode scale and shift for GPU tensors (set by src/webgpu/ops/conv.ts). */
let gpuEvalParams: typeof batchNormEvalParams | null = null;
export function _setGpuBatchNormEvalParams(f: typeof batchNormEvalParams): void {
  gpuEvalParams = f;
}

const own = (m: Module, cls: { prototype: { forward: unknown } }) =>
  !Object.prototype.hasOwnProperty.call(m, "forward") && m.forward === cls.prototype.forward;

const isReLU = (m: Module | undefined): m is ReLU => !!m && m instanceof ReLU && m.type === "ReLU" && own(m, ReLU);

/** Whether conv -> bn can run fused on input x now. */
function fusible(conv: Module | undefined, bn: Module | undefined, x: Tensor): boolean {
  if (!(conv instanceof Conv2d) || conv.type !== "Conv2d" || !own(conv, Conv2d)) return false;
  if (!(bn instanceof BatchNorm2d) || bn.type !== "BatchNorm2d" || !own(bn, BatchNorm2d)) return false;
  if (bn.training || !bn.trackRunningStats || !bn.runningMean || !bn.runningVar || bn.numFeatures !== conv.outChannels) return false;
  if (suppressed || hasForwardHooks()) return false;
  if (x.device === "cpu" ? !engine().fuse : !gpuEvalParams || !engine().fuse) return false;
  return !isGradEnabled() || ![x, conv.weight, conv.bias, bn.weight, bn.bias].some((t) => t && needsGrad(t));
}

/** conv -> bn (-> + residual) (-> relu) as one conv2d_fused, timed as the conv layer. */
function runFused(conv: Conv2d, bn: BatchNorm2d, x: Tensor, residual: Tensor | null, relu: boolean): Tensor {
  return conv._callFused(x, () => {
    const params = x.device === "cpu" ? batchNormEvalParams : gpuEvalParams!;
    const { scale, shift } = params(bn.runningMean!, bn.runningVar!, bn.weight, bn.bias, bn.eps);
    try {
      return conv2d_fused(x, conv.weight, conv.bias, scale, shift, residual, {
        stride: conv.stride, padding: conv.padding, dilation: conv.dilation, groups: conv.groups, relu,
      });
    } finally {
      scale.dispose(), shift.dispose();
    }
  });
}

/** Whether bn -> ReLU (-> + residual first) can run as one batch_norm_fused on x now: any mode
 *  the conv fusion above did not take (training, or eval with gradients recorded), on the CPU. */
function bnFusible(bn: Module | undefined, x: Tensor): bn is BatchNorm2d | BatchNorm1d {
  const ok = (bn instanceof BatchNorm2d && bn.type === "BatchNorm2d" && own(bn, BatchNorm2d)) ||
    (bn instanceof BatchNorm1d && bn.type === "BatchNorm1d" && own(bn, BatchNorm1d));
  if (!ok || !trainingFusionOn(x)) return false;
  // the layer's own shape errors come from its forward
  return (bn.type === "BatchNorm2d" ? x.rank === 4 : x.rank === 2 || x.rank === 3) && x.shape[1] === bn.numFeatures;
}

/**
 * Runs the layers in order on x, fusing as described above. With `end` (a ResidualBlock), the
 * chain is followed by + end.shortcut(the body's output shape) (when given) and end.relu: when the last two layers
 * fuse, they take both, and `done` says so; else the caller adds and applies them itself.
 */
export function runChain(layers: Module[], x: Tensor, end?: { shortcut: ((yShape: number[]) => Tensor) | null; relu: Module }): { y: Tensor; done: boolean } {
  const n = layers.length;
  const ending = (i: number) => i === n && !!end && isReLU(end.relu);
  for (let i = 0; i < n; ) {
    const [conv, bn] = [layers[i], layers[i + 1]];
    if (fusible(conv, bn, x)) {
      if (ending(i + 2)) {
        // the block's ending: conv -> bn -> + shortcut -> relu
        // the shortcut checks its shape against the body's output (the block's own error)
        const residual = end!.shortcut ? end!.shortcut(conv.outputShape(x.shape as number[])) : null;
        return { y: runFused(conv as Conv2d, bn as BatchNorm2d, x, residual, true), done: true };
      }
      const relu = isReLU(layers[i + 2]);
      x = runFused(conv as Conv2d, bn as BatchNorm2d, x, null, relu);
      i += relu ? 3 : 2;
      continue;
    }
    // training: bn -> relu, and the block's ending bn -> + shortcut -> relu, as batch_norm_fused
    const norm = layers[i];
    if (bnFusible(norm, x) && (ending(i + 1) || isReLU(layers[i + 1]))) {
      const last = ending(i + 1);
      const input = x;
      const residual = last && end!.shortcut ? end!.shortcut(norm.outputShape(input.shape as number[])) : null;
      x = norm._callFused(input, () => norm._forwardFused(input, residual));
      if (last) return { y: x, done: true };
      i += 2;
      continue;
    }
    // conv -> relu without a batch norm between (LeNet, VGG, AlexNet), in any mode: ReLU in the
    // convolution's epilogue; conv2d_fused's backward takes the mask from its output
    const conv1 = layers[i];
    if (isReLU(layers[i + 1]) && convFusible(conv1, x)) {
      const input = x;
      x = conv1._callFused(input, () => conv2d_fused(input, conv1.weight, conv1.bias, null, null, null, {
        stride: conv1.stride, padding: conv1.padding, dilation: conv1.dilation, groups: conv1.groups, relu: true,
      }));
      i += 2;
      continue;
    }
    x = layers[i++].call(x);
  }
  return { y: x, done: false };
}

/** Whether conv -> ReLU can run as one conv2d_fused (relu only) on x now: the library's Conv2d
 *  and ReLU, no hook, fusion on, on the CPU. */
function convFusible(conv: Module | undefined, x: Tensor): conv is Conv2d {
  if (!(conv instanceof Conv2d) || conv.type !== "Conv2d" || !own(conv, Conv2d)) return false;
  return trainingFusionOn(x);
}

/** The conditions the training fusions share: fusion on, not tracing, no forward hook, a CPU
 *  input (on the GPU they would run the same kernels unfused). */
function trainingFusionOn(x: Tensor): boolean {
  return !suppressed && !hasForwardHooks() && x.device === "cpu" && engine().fuse;
}
