// The models that the ONNX tests export: every zoo model (small inputs, few classes) and
// compositions of every layer, each op's ONNX form. Shared by test/onnx_export.test.mjs (against
// ONNX Runtime) and test/onnx_roundtrip.test.mjs (exported and loaded back with loadOnnx).
import * as sn from "../dist/index.js";
const { nn } = sn;

/** deterministic values in [lo, hi) */
export function values(n, seed, lo = -1, hi = 1) {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + ((s >>> 8) / 2 ** 24) * (hi - lo);
  });
}

/** Batch norms with statistics and affine parameters away from their defaults (mean 0, var 1,
 *  weight 1, bias 0 would hide a swapped input of BatchNormalization). */
export function perturbNorms(model) {
  let seed = 7;
  for (const [name, t] of model.stateDict()) {
    const set = (lo, hi) => t.data.set(values(t.size, seed++, lo, hi));
    if (name.endsWith("running_mean")) set(-0.2, 0.2);
    else if (name.endsWith("running_var")) set(0.5, 1.5);
    else if (/(^|\.)(bn\d*|norm|batch_norm|\d+)\.weight$/.test(name) && t.rank === 1) set(0.5, 1.5);
  }
}

// ---- the zoo: small inputs and few classes so that ONNX Runtime runs them fast ----

export const ZOO = [
  ["lenet", {}, [2, 1, 28, 28]],
  ["lenet", { batchNorm: true }, [2, 1, 28, 28]],
  ["lenet5", {}, [2, 1, 32, 32]], // PartialConv2d (C3), Subsampling
  ["alexnet", { classes: 10, inputSize: 63 }, [1, 3, 63, 63]], // adaptive pool 1x1 -> 6x6 (MatMul form)
  ["alexnet2012", { classes: 10, inputSize: 67, towers: 2 }, [1, 3, 67, 67]], // LRN, grouped convs
  ["vgg11_lrn_bn", { classes: 10, inputSize: 32, hidden: 64, poolSize: 1 }, [1, 3, 32, 32]],
  ["vgg16_c_bn", { classes: 10, inputSize: 32, hidden: 64, poolSize: 2 }, [1, 3, 64, 64]],
  ["googlenet", { classes: 10, inputSize: 64 }, [1, 3, 64, 64]], // ceil-mode pools, Concat, aux heads off in eval
  ["resnet18", { classes: 10, inputSize: 32 }, [1, 3, 32, 32]],
  ["resnet50", { classes: 10, inputSize: 32 }, [1, 3, 32, 32]], // bottlenecks
  ["resnet20", { classes: 10 }, [2, 3, 32, 32]], // option A shortcuts (ZeroPadShortcut)
  ["cifar_resnet", { depth: 8, shortcut: "B" }, [2, 3, 32, 32]],
  ["plain20", {}, [1, 3, 32, 32]],
  ["fcn", { backbone: "lenet", inChannels: 1, inputSize: 28, classes: 10 }, [1, 1, 40, 44]],
  ["unet", { depth: 2, width: 8, batchNorm: true }, [1, 1, 32, 32]], // ConvTranspose2d, crops by cat
  ["fcn32s", { classes: 5, inputSize: 64, hidden: 32 }, [1, 3, 64, 64]],
  ["fcn16s", { classes: 5, inputSize: 64, hidden: 32 }, [1, 3, 64, 64]],
  ["fcn8s", { classes: 5, inputSize: 64, hidden: 32 }, [1, 3, 64, 64]],
];

/** Zoo names not exported above: deeper or shallower builds of the same layers as the one named
 *  (the same ops with the same attributes, more of them), left out for the test's time. */
export const SAME_LAYERS_AS = {
  vgg: "vgg16_c_bn", vgg11: "vgg11_lrn_bn", vgg11_bn: "vgg11_lrn_bn", vgg11_lrn: "vgg11_lrn_bn", vgg13: "vgg16_c_bn", vgg13_bn: "vgg16_c_bn",
  vgg16_c: "vgg16_c_bn", vgg16: "vgg16_c_bn", vgg16_bn: "vgg16_c_bn", vgg19: "vgg16_c_bn", vgg19_bn: "vgg16_c_bn",
  resnet: "resnet18", resnet34: "resnet18", resnet101: "resnet50", resnet152: "resnet50",
  resnet32: "resnet20", resnet44: "resnet20", resnet56: "resnet20", resnet110: "resnet20",
  plain32: "plain20", plain44: "plain20", plain56: "plain20", plain110: "plain20",
};

// ---- compositions of the layers, each op's ONNX form ----

/** A module whose forward is code of its own, with ops the layers do not use. */
export class Custom extends nn.Module {
  type = "Custom";
  constructor(fn) {
    super();
    this.fn = fn;
    this.conv = this.registerModule("conv", new nn.Conv2d(3, 4, 3, { padding: 1 }));
    this.registerBuffer("scale", sn.tensor(values(4, 99, 0.5, 1.5), [4]));
  }
  forward(x) {
    return this.fn.call(this, x);
  }
}

export const LAYERS = [
  ["activations", () => nn.sequential(new nn.Conv2d(3, 6, 3, { stride: 2, padding: [1, 0], dilation: [1, 2], bias: false }), new nn.LeakyReLU(0.2), new nn.Conv2d(6, 6, 1, { groups: 3 }), new nn.Sigmoid(), new nn.Conv2d(6, 4, 3), new nn.Tanh(), new nn.Flatten(), new nn.Linear(4 * 3 * 2, 5), new nn.Softmax(1)), [2, 3, 9, 11]],
  ["softmax over the last axis (a negative axis: a 10-byte varint), log_softmax over channels", () => nn.sequential(new nn.Conv2d(3, 4, 3), new nn.Softmax(-1), new nn.LogSoftmax(1)), [1, 3, 6, 6]],
  ["pools", () => nn.sequential(new nn.MaxPool2d(3, { stride: 2, padding: 1 }), new nn.AvgPool2d(3, { stride: 1, padding: 1, countIncludePad: false }), new nn.AvgPool2d(2, { ceilMode: true }), new nn.MaxPool2d(2, { dilation: 2 })), [1, 3, 17, 18]],
  ["ceil_mode pools, clipped border windows", () => nn.sequential(new nn.MaxPool2d(3, { stride: 2, ceilMode: true }), new nn.AvgPool2d(3, { stride: 2, padding: 1, ceilMode: true }), new nn.AvgPool2d(3, { stride: 2, padding: 1, ceilMode: true, countIncludePad: false })), [1, 2, 18, 20]],
  ["ceil_mode pools where PyTorch drops a last window that starts in the padding", () => nn.sequential(new nn.MaxPool2d(2, { padding: 1, ceilMode: true }), new nn.AvgPool2d(2, { padding: 1, ceilMode: true })), [1, 2, 5, 7]],
  ["adaptive average pools", () => new nn.Concat([new nn.AdaptiveAvgPool2d([3, 2]), nn.sequential(new nn.AdaptiveAvgPool2d([5, 4]), new nn.AdaptiveAvgPool2d([3, 2]))]), [1, 3, 9, 7]],
  ["global pools", () => nn.sequential(new nn.Concat([new nn.GlobalAvgPool2d(), new nn.AdaptiveAvgPool2d(1)]), new nn.Flatten()), [2, 3, 5, 4]],
  ["batch norms 1d and 2d", () => nn.sequential(new nn.Conv2d(2, 4, 3), new nn.BatchNorm2d(4), new nn.BatchNorm2d(4, { affine: false }), new nn.Flatten(), new nn.Linear(4 * 16, 6), new nn.BatchNorm1d(6), new nn.ReLU()), [3, 2, 6, 6]],
  ["batch norms without running statistics (the batch's, also in eval mode)", () => nn.sequential(new nn.Conv2d(2, 4, 3), new nn.BatchNorm2d(4, { trackRunningStats: false }), new nn.Flatten(), new nn.Linear(4 * 16, 6), new nn.BatchNorm1d(6, { trackRunningStats: false, affine: false })), [3, 2, 6, 6]],
  ["local response norm", () => nn.sequential(new nn.Conv2d(3, 8, 1), new nn.LocalResponseNorm(3, { alpha: 0.01, beta: 0.6, k: 1.5 })), [1, 3, 4, 4]],
  ["conv transpose", () => nn.sequential(new nn.ConvTranspose2d(4, 6, 3, { stride: 2, padding: 1, outputPadding: 1, groups: 2 }), new nn.ConvTranspose2d(6, 3, [2, 3], { dilation: 2, bias: false })), [1, 4, 5, 6]],
  ["upsampling nearest", () => new nn.Concat([new nn.Upsample({ scaleFactor: 2 }), new nn.Upsample({ size: [10, 12] })]), [1, 2, 5, 6]],
  ["upsampling nearest, non-integer scales", () => new nn.Concat([new nn.Upsample({ scaleFactor: [1.5, 2.5] }), new nn.Upsample({ size: [7, 15] })]), [1, 2, 5, 6]],
  ["upsampling bilinear", () => new nn.Concat([new nn.Upsample({ scaleFactor: 2, mode: "bilinear" }), new nn.Upsample({ size: [10, 12], mode: "bilinear", alignCorners: true }), new nn.Upsample({ scaleFactor: [2, 2], mode: "bilinear", alignCorners: true })]), [1, 2, 5, 6]],
  ["upsampling bilinear, non-integer scales", () => new nn.Concat([new nn.Upsample({ scaleFactor: [1.5, 2.5], mode: "bilinear" }), new nn.Upsample({ size: [7, 15], mode: "bilinear" })]), [1, 2, 5, 6]],
  ["residual, concat, identity, dropout", () => nn.sequential(new nn.Residual(nn.sequential(new nn.Conv2d(3, 3, 3, { padding: 1 }), new nn.ReLU()), null), new nn.Residual(new nn.Conv2d(3, 5, 1, { stride: 2 }), new nn.Conv2d(3, 5, 3, { stride: 2, padding: 1 })), new nn.Concat([new nn.Identity(), new nn.Dropout(0.3)])), [2, 3, 6, 6]],
  ["a model that only passes its input on", () => new nn.Identity(), [2, 3]],
  ["custom forward: bias_add, mul, matmul, gemm, reshape", () => new Custom(function (x) {
    const y = sn.bias_add(this.conv.call(x), this.buffers()[0]); // buffers()[0] is this.scale
    const z = sn.mul(sn.relu(y), 0.5).reshape(2, -1);
    const w = z.reshape(-1, 8); // [16, 8]
    // [16, 16] x [8, 16]^T -> [16, 8]
    return sn.gemm(sn.matmul(w, w, { transB: true }), w.reshape(8, -1), null, { alpha: 0.5, beta: 1, transB: true }).reshape(1, 1, 8, 16);
  }), [2, 3, 4, 4]],
  ["custom forward: full sum and mean", () => new Custom(function (x) {
    const y = this.conv.call(x);
    return sn.cat([sn.sum(y).reshape(1), sn.mean(y).reshape(1)], 0);
  }), [2, 3, 4, 4]],
];
