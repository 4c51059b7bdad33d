// Every public options object rejects keys it does not know, naming the function (or layer, or
// op), the key, the known key it is probably a slip for, and the keys there are; a non-object
// where options go is an error too. And each still takes every key it documents.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as sn from "../dist/index.js";
import { toyData, tinyModel } from "./helpers.mjs";
const { nn, models, data, viz } = sn;

let rows;
test.before(async () => {
  await sn.init({ threads: 2 });
  rows = table();
});

const x4 = () => sn.tensor(Float32Array.from({ length: 2 * 3 * 6 * 6 }, (_, i) => Math.sin(i)), [2, 3, 6, 6]);
const w4 = () => sn.tensor(Float32Array.from({ length: 4 * 3 * 3 * 3 }, (_, i) => Math.cos(i) / 4), [4, 3, 3, 3]);
const logits = () => sn.tensor([0.1, 0.5, -0.3, 0.2, 0.9, -1], [2, 3]);
const labels = () => sn.tensor([2, 0], [2]);
const params = () => [sn.tensor([1, 2, 3], [3]).requireGrad()];
const sgd = () => new sn.SGD(params(), { lr: 0.1 });
const rgba = { data: new Uint8ClampedArray(4 * 4 * 4).fill(128), width: 4, height: 4 };
const img = { data: new Float32Array(16).fill(0.5), c: 1, h: 4, w: 4 };
const idx = () => ({ images: sn.data.parseIdx(sn.data.writeIdx({ type: "u8", shape: [2, 2, 2], data: [0, 1, 2, 3, 4, 5, 6, 7] })), labels: sn.data.parseIdx(sn.data.writeIdx({ type: "u8", shape: [2], data: [0, 1] })) });
const idxBytes = () => [sn.data.writeIdx({ type: "u8", shape: [2, 2, 2], data: [0, 1, 2, 3, 4, 5, 6, 7] }), sn.data.writeIdx({ type: "u8", shape: [2], data: [0, 1] })];
const forward = (x) => sn.flatten(x);
let dir;
const tmp = () => (dir ??= mkdtempSync(join(tmpdir(), "simdnet-options-")));
test.after(() => dir && rmSync(dir, { recursive: true, force: true }));

/**
 * One row per public entry point: `call(opts)` calls it with the options object; `bad` holds
 * one misspelt key (its value a plausible one); `want` the key it should suggest (null: none is
 * close); `good` every key the entry point documents, with values it accepts. `where` is the
 * name the message starts with; `in` a nested object's name.
 */
const table = () => [
  // the six of the issue (init's rows are last: its good row starts a new engine)
  { where: "fit", call: (o) => sn.fit(tinyModel(), toyData(8), o), bad: { epoch: 2 }, want: "epochs" },
  { where: "fit", call: (o) => sn.fit(tinyModel(), toyData(8), o), bad: { batch_size: 32 }, want: "batchSize" },
  { where: "lenet", call: (o) => models.lenet(o), bad: { clases: 10 }, want: "classes", good: { classes: 3, inChannels: 1, inputSize: 28, batchNorm: true } },
  { where: "conv2d", noun: "attribute", call: (o) => sn.conv2d(x4(), w4(), null, o), bad: { pading: 1 }, want: "padding", good: { stride: 1, padding: 1, dilation: 1, groups: 1 } },
  { where: "Conv2d", call: (o) => new nn.Conv2d(3, 4, 3, o), bad: { pading: 1 }, want: "padding", good: { stride: 2, padding: 1, dilation: 1, groups: 1, bias: false } },
  // training
  {
    where: "fit", call: (o) => sn.fit(tinyModel(), toyData(8), o), bad: { shufle: false }, want: "shuffle",
    good: {
      epochs: 2, batchSize: 4, optimizer: "sgd", lr: 0.05, momentum: 0.9, weightDecay: 1e-4, scheduler: (opt) => new sn.StepLR(opt, { step_size: 1 }), schedulerStep: "epoch",
      l1: 1e-5, clipGradValue: 10, clipGradNorm: 10, loss: (out, y) => sn.cross_entropy(out, y), validation: toyData(4, 2), metrics: ["loss", "top1"], shuffle: true, seed: 1,
      augment: [data.shift(1)], normalize: { mean: 0.5, std: 0.5 }, callbacks: { onBatchEnd() {}, onEpochEnd() {} }, earlyStopping: { monitor: "val_loss", patience: 3, minDelta: 0, restoreBest: true },
      onProgress() {}, checkpoint: undefined, checkpointEvery: 1, resume: false, device: "cpu", logEvery: 5,
    },
  },
  { where: "fit", in: "earlyStopping", call: (o) => sn.fit(tinyModel(), toyData(8), { earlyStopping: o }), bad: { patiense: 2 }, want: "patience" },
  { where: "fit", in: "callbacks", call: (o) => sn.fit(tinyModel(), toyData(8), { callbacks: o }), bad: { onEpochend() {} }, want: "onEpochEnd" },
  { where: "fit", in: "normalize", call: (o) => sn.fit(tinyModel(), toyData(8), { normalize: o }), bad: { mean: 0, sdt: 1 }, want: "std" },
  { where: "evaluate", call: (o) => sn.evaluate(tinyModel(), toyData(8), o), bad: { batch_size: 4 }, want: "batchSize", good: { batchSize: 4, normalize: { mean: 0, std: 1 }, loss: (out, y) => sn.cross_entropy(out, y) } },
  { where: "evaluateAsync", call: (o) => sn.evaluateAsync(tinyModel(), toyData(8), o), bad: { normalise: { mean: 0, std: 1 } }, want: "normalize", good: { batchSize: 4, normalize: { mean: 0, std: 1 }, loss: (out, y) => sn.cross_entropy(out, y) } },
  { where: "createOptimizer", call: (o) => sn.createOptimizer("sgd", params(), o), bad: { lr: 0.1, momentun: 0.9 }, want: "momentum", good: { lr: 0.1, momentum: 0.9, weightDecay: 0.01 } },
  { where: "packCheckpoint", call: (o) => sn.packCheckpoint(o), bad: { model: tinyModel(), epoch: 1, optimiser: sgd() }, want: "optimizer", good: { model: tinyModel(), optimizer: null, scheduler: null, loader: null, epoch: 1, history: [], extra: {} } },
  { where: "unpackCheckpoint", call: (o) => sn.unpackCheckpoint(sn.packCheckpoint({ model: tinyModel(), epoch: 1 }), o), bad: { model: tinyModel(), schedular: null }, want: "scheduler", good: { model: tinyModel(), optimizer: null, scheduler: null, loader: null, expectExtra: {} } },
  { where: "saveCheckpoint", call: (o) => sn.saveCheckpoint(join(tmp(), "c.safetensors"), o), bad: { model: tinyModel(), epochs: 1 }, want: "epoch", good: { model: tinyModel(), epoch: 1 } },
  { where: "loadCheckpoint", call: async (o) => { await sn.saveCheckpoint(join(tmp(), "l.safetensors"), { model: tinyModel(), epoch: 1 }); return sn.loadCheckpoint(join(tmp(), "l.safetensors"), o); }, bad: { modle: tinyModel() }, want: "model", good: { model: tinyModel(), expectExtra: {} } },
  // data
  { where: "DataLoader", call: (o) => new sn.DataLoader(toyData(8), o).dispose(), bad: { batchsize: 4 }, want: "batchSize", good: { batchSize: 4, shuffle: false, seed: 3, dropLast: true, augment: [], normalize: { mean: [0.5], std: [0.25] } } },
  { where: "DataLoader", in: "normalize", call: (o) => new sn.DataLoader(toyData(8), { normalize: o }), bad: { mean: 0, stdev: 1 }, want: "std" },
  { where: "Dataset", call: (o) => new sn.Dataset(new Float32Array(2 * 4), [2, 1, 2, 2], new Int32Array(2 * 4), 2, o), bad: { ignore_index: 255 }, want: "ignoreIndex", good: { targets: "pixels", ignoreIndex: 255 } },
  { where: "Dataset.segmentation", call: (o) => sn.Dataset.segmentation(new Float32Array(2 * 4), [2, 1, 2, 2], new Int32Array(2 * 4), 2, o), bad: { ignore: 255 }, want: null, good: { ignoreIndex: 255 } },
  { where: "Dataset.fromIdx", call: (o) => sn.Dataset.fromIdx(idx().images, idx().labels, o), bad: { clases: ["a", "b"] }, want: "classes", good: { classes: ["a", "b"], what: "toy" } },
  { where: "Dataset.fromIdxBytes", call: (o) => sn.Dataset.fromIdxBytes(...idxBytes(), o), bad: { wat: "toy" }, want: "what", good: { classes: ["a", "b"], what: "toy" } },
  { where: "loadMnistDigits", call: (o) => sn.loadMnistDigits(o), bad: { testfraction: 0.5 }, want: "testFraction", good: { testFraction: 0.5 } },
  { where: "fromPixels", call: (o) => sn.fromPixels(rgba, o), bad: { channel: 1 }, want: "channels", good: { channels: 1, invert: true, mean: 0.5, std: 0.5 } },
  { where: "fromPixels", call: (o) => data.pixelsToArray(rgba, o), bad: { invrt: true }, want: "invert", good: { channels: 3, invert: true, mean: [0, 0, 0], std: [1, 1, 1] } },
  // augmentations
  { where: "randomCrop", call: (o) => data.randomCrop(4, o)(img, new sn.Generator(1)), bad: { paddding: 1 }, want: "padding", good: { padding: 1, fill: 0, maskFill: 0 } },
  { where: "shift", call: (o) => data.shift(1, o)(img, new sn.Generator(1)), bad: { fil: 0 }, want: "fill", good: { fill: 0, maskFill: 0 } },
  { where: "rotation", call: (o) => data.rotation(10, o)(img, new sn.Generator(1)), bad: { mask_fill: 0 }, want: "maskFill", good: { fill: 0, maskFill: 0 } },
  { where: "colorJitter", call: (o) => data.colorJitter(o)(img, new sn.Generator(1)), bad: { brightnes: 0.2 }, want: "brightness", good: { brightness: 0.2, contrast: 0.2, clamp: [0, 1] } },
  // ops: every attribute object (apply() checks the keys of the op's defaults)
  { where: "conv_transpose2d", noun: "attribute", call: (o) => sn.conv_transpose2d(x4(), sn.tensor(new Float32Array(3 * 2 * 3 * 3), [3, 2, 3, 3]), null, o), bad: { outputpadding: 1 }, want: "output_padding", good: { stride: 2, padding: 1, output_padding: 1, dilation: 1, groups: 1 } },
  { where: "conv2d_input", noun: "attribute", call: (o) => sn.conv2d_input([2, 3, 6, 6], w4(), sn.zeros([2, 4, 6, 6]), o), bad: { pad: 1 }, want: null, good: { stride: 1, padding: 1, dilation: 1, groups: 1 } },
  { where: "conv2d_weight", noun: "attribute", call: (o) => sn.conv2d_weight(x4(), [4, 3, 3, 3], sn.zeros([2, 4, 6, 6]), o), bad: { groupss: 1 }, want: "groups", good: { stride: 1, padding: 1, dilation: 1, groups: 1 } },
  { where: "max_pool2d", noun: "attribute", call: (o) => sn.max_pool2d(x4(), { kernel_size: 2, ...o }), bad: { strides: 1 }, want: "stride", good: { kernel_size: 3, stride: 2, padding: 1, dilation: 1, ceil_mode: true } },
  { where: "avg_pool2d", noun: "attribute", call: (o) => sn.avg_pool2d(x4(), { kernel_size: 2, ...o }), bad: { countIncludePad: false }, want: "count_include_pad", good: { kernel_size: 3, stride: 2, padding: 1, ceil_mode: true, count_include_pad: false, divisor_override: null } },
  { where: "batch_norm", noun: "attribute", call: (o) => sn.batch_norm(x4(), null, null, null, null, o), bad: { momentun: 0.1 }, want: "momentum", good: { training: true, momentum: 0.2, eps: 1e-3 } },
  { where: "dropout", noun: "attribute", call: (o) => sn.dropout(x4(), o), bad: { P: 0.1 }, want: "p", good: { p: 0.2, training: true, seed: 7 } },
  { where: "local_response_norm", noun: "attribute", call: (o) => sn.local_response_norm(x4(), 3, o), bad: { aplha: 1e-3 }, want: "alpha", good: { alpha: 1e-3, beta: 0.5, k: 2 } },
  { where: "cross_entropy", noun: "attribute", call: (o) => sn.cross_entropy(logits(), labels(), o), bad: { ignore_idx: 1 }, want: "ignore_index", good: { reduction: "sum", ignore_index: 1 } },
  { where: "multi_margin_loss", noun: "attribute", call: (o) => sn.multi_margin_loss(logits(), labels(), o), bad: { margn: 2 }, want: "margin", good: { p: 2, margin: 2, reduction: "none" } },
  { where: "mse_loss", noun: "attribute", call: (o) => sn.mse_loss(logits(), logits(), o), bad: { ignore_index: 0 }, want: null, good: { reduction: "sum" } },
  { where: "matmul", noun: "attribute", call: (o) => sn.matmul(logits(), logits(), o), bad: { transa: true }, want: "transA", good: { transA: true, transB: false } },
  { where: "gemm", noun: "attribute", call: (o) => sn.gemm(logits(), logits(), null, o), bad: { transB: true, alpah: 2 }, want: "alpha", good: { transA: false, transB: true, alpha: 2, beta: 0 } },
  { where: "interpolate", noun: "attribute", call: (o) => sn.interpolate(x4(), { scale_factor: 2, ...o }), bad: { modes: "bilinear" }, want: "mode", good: { mode: "bilinear", align_corners: true, recompute_scale_factor: null } },
  { where: "upsample_nearest2d", noun: "attribute", call: (o) => sn.opTable.get("upsample_nearest2d").apply([x4()], { size: 12, ...o }), bad: { scalefactor: 2 }, want: "scale_factor", good: { size: 12, scale_factor: null, align_corners: null, recompute_scale_factor: null } },
  { where: "relu", noun: "attribute", call: (o) => sn.opTable.get("relu").apply([x4()], o), bad: { inplace: true }, want: null, good: {} },
  // models: every factory (in models/) checks its options
  { where: "lenet5", call: (o) => models.lenet5(o), bad: { inputsize: 28 }, want: "inputSize", good: { classes: 5, inChannels: 1, inputSize: 28 } },
  { where: "resnet18", call: (o) => models.resnet18(o), bad: { clases: 10 }, want: "classes" },
  { where: "resnet", call: (o) => sn.createModel("resnet", o), bad: { deph: 34 }, want: "depth" },
  { where: "vgg11", call: (o) => models.vgg11(o), bad: { batchnorm: true }, want: "batchNorm" },
  { where: "resnet20", call: (o) => models.resnet20(o), bad: { width: [8, 16, 32] }, want: "widths", good: { classes: 4, inChannels: 1, inputSize: 8, shortcut: "B", widths: [2, 4, 4] } },
  { where: "unet", call: (o) => models.unet(o), bad: { widht: 8 }, want: "width", good: { classes: 2, inChannels: 1, inputSize: 16, depth: 1, width: 2, batchNorm: true } },
  { where: "fcn8s", call: (o) => models.fcn8s(o), bad: { batch_norm: true }, want: "batchNorm" },
  { where: "googlenet", call: (o) => models.googlenet(o), bad: { five_by_five: true }, want: "fiveByFive" },
  { where: "alexnet2012", call: (o) => models.alexnet2012(o), bad: { tower: 2 }, want: "towers" },
  { where: "ResidualBlock", call: (o) => new models.ResidualBlock([["conv1", new nn.Conv2d(1, 1, 1)]], o), bad: { residul: false }, want: "residual", good: { downsample: null, residual: true } },
  { where: "basicConv", call: (o) => models.basicConv(1, 2, 3, o), bad: { strid: 2 }, want: "stride", good: { stride: 2, padding: 1 } },
  // layers
  { where: "ConvTranspose2d", call: (o) => new nn.ConvTranspose2d(3, 4, 3, o), bad: { output_padding: 1 }, want: "outputPadding", good: { stride: 2, padding: 1, outputPadding: 1, dilation: 1, groups: 1, bias: false } },
  { where: "PartialConv2d", call: (o) => new nn.PartialConv2d(2, [[0], [0, 1]], 3, o), bad: { pading: 1 }, want: "padding", good: { stride: 1, padding: 1, bias: false } },
  { where: "Linear", call: (o) => new nn.Linear(3, 4, o), bad: { biases: false }, want: "bias", good: { bias: false } },
  { where: "MaxPool2d", call: (o) => new nn.MaxPool2d(2, o), bad: { ceil_mode: true }, want: "ceilMode", good: { stride: 1, padding: 1, ceilMode: true, dilation: 1 } },
  { where: "AvgPool2d", call: (o) => new nn.AvgPool2d(2, o), bad: { dilation: 2 }, want: null, good: { stride: 1, padding: 1, ceilMode: true, countIncludePad: false } },
  { where: "BatchNorm2d", call: (o) => new nn.BatchNorm2d(3, o), bad: { track_running_stats: false }, want: "trackRunningStats", good: { eps: 1e-3, momentum: 0.2, affine: false, trackRunningStats: false } },
  { where: "BatchNorm1d", call: (o) => new nn.BatchNorm1d(3, o), bad: { afine: false }, want: "affine", good: { eps: 1e-3, momentum: 0.2, affine: false, trackRunningStats: true } },
  { where: "LocalResponseNorm", call: (o) => new nn.LocalResponseNorm(5, o), bad: { K: 2 }, want: "k", good: { alpha: 1e-3, beta: 0.5, k: 2 } },
  { where: "Upsample", call: (o) => new nn.Upsample(o), bad: { scale_factor: 2 }, want: "scaleFactor", good: { scaleFactor: 2, mode: "bilinear", alignCorners: true } },
  { where: "Sequential.loadStateDict", call: (o) => nn.sequential(new nn.Linear(2, 2)).loadStateDict(new nn.Linear(2, 2).stateDict(), o), bad: { stict: false }, want: "strict", good: { strict: false } },
  { where: "kaimingNormal", call: (o) => nn.init.kaimingNormal(sn.zeros([4, 3]), o), bad: { nonlinearty: "relu" }, want: "nonlinearity", good: { a: 0, mode: "fan_out", nonlinearity: "relu", rng: new sn.Generator(1) } },
  { where: "xavierUniform", call: (o) => nn.init.xavierUniform(sn.zeros([4, 3]), o), bad: { gian: 2 }, want: "gain", good: { gain: 2, rng: new sn.Generator(1) } },
  { where: "gaussian", call: (o) => nn.init.gaussian(sn.zeros([4, 3]), 0.1, o), bad: { std: 1 }, want: null, good: { mean: 1, rng: new sn.Generator(1) } },
  // optimisers and schedules
  { where: "SGD", call: (o) => new sn.SGD(params(), { lr: 0.1, ...o }), bad: { momentun: 0.9 }, want: "momentum", good: { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: false, weight_decay: 0.1 } },
  { where: "Adam", call: (o) => new sn.Adam(params(), o), bad: { weightDecay: 0.1 }, want: "weight_decay", good: { lr: 0.1, betas: [0.8, 0.9], eps: 1e-6, weight_decay: 0.1, amsgrad: true } },
  { where: "RMSprop", in: "parameter group 0", whose: "a parameter group", call: (o) => new sn.RMSprop([{ params: params(), ...o }]), bad: { alhpa: 0.9 }, want: "alpha", good: { lr: 0.1, alpha: 0.9, eps: 1e-6, weight_decay: 0.1, momentum: 0.5, centered: true } },
  { where: "StepLR", call: (o) => new sn.StepLR(sgd(), o), bad: { stepSize: 2 }, want: "step_size", good: { step_size: 2, gamma: 0.5 } },
  { where: "CosineAnnealingLR", call: (o) => new sn.CosineAnnealingLR(sgd(), o), bad: { t_max: 5 }, want: "T_max", good: { T_max: 5, eta_min: 0.01 } },
  { where: "LinearLR", call: (o) => new sn.LinearLR(sgd(), o), bad: { total_iter: 3 }, want: "total_iters", good: { start_factor: 0.5, end_factor: 1, total_iters: 3 } },
  { where: "ExponentialLR", call: (o) => new sn.ExponentialLR(sgd(), o), bad: { gama: 0.9 }, want: "gamma", good: { gamma: 0.9 } },
  { where: "linearWarmup", call: (o) => { const opt = sgd(); return sn.linearWarmup(opt, { then: new sn.ExponentialLR(opt, { gamma: 0.9 }), ...o }); }, bad: { step: 2 }, want: "steps", good: { steps: 2, start_factor: 0.5 } },
  // saving and loading
  { where: "saveModel", call: (o) => sn.saveModel(tinyModel(), tmp(), o), bad: { nmae: "m" }, want: "name", good: { name: "m", meta: { a: 1 } } },
  { where: "loadWeights", call: (o) => sn.loadWeights(tinyModel(), sn.weightsToSafetensors(tinyModel()), o), bad: { strcit: true }, want: "strict", good: { strict: true, what: "w" } },
  // gradcheck
  { where: "gradcheck", call: (o) => sn.gradcheck((a) => sn.sum(sn.tanh(a)), [sn.tensor([0.1, 0.2], [2]).requireGrad()], o), bad: { maxElement: 4 }, want: "maxElements", good: { eps: 1e-2, rtol: 1e-2, atol: 1e-3, maxElements: 4, seed: 2, throws: true } },
  { where: "gradcheckModule", call: (o) => sn.gradcheckModule(new nn.Linear(2, 1), sn.tensor([0.1, 0.2], [1, 2]), o), bad: { atoll: 1e-3 }, want: "atol", good: { atol: 1e-3, maxElements: 4 } },
  // visualisation
  { where: "tileGrid", call: (o) => viz.tileGrid([new Float32Array(4)], 2, 2, o), bad: { colums: 2 }, want: "cols", good: { cols: 1, scale: 2, heat: true, pad: 0, rgb: false } },
  { where: "filterGrid", call: (o) => viz.filterGrid(w4(), o), bad: { scal: 2 }, want: "scale", good: { scale: 2, cols: 2 } },
  { where: "activationGrid", call: (o) => viz.activationGrid(sn.zeros([1, 3, 4, 4]), o), bad: { colls: 2 }, want: "cols", good: { scale: 2, cols: 2 } },
  { where: "occlusion", call: (o) => viz.occlusion(forward, sn.zeros([1, 1, 4, 4]), 0, o), bad: { pach: 2 }, want: "patch", good: { patch: 2, stride: 2, value: 0.5, batch: 2 } },
  { where: "classModel", call: (o) => viz.classModel(forward, [1, 1, 4, 4], 0, o), bad: { step: 2 }, want: "steps", good: { steps: 2, lr: 0.1, l2: 0.01, start: new Float32Array(16) } },
  { where: "encodePNG", call: (o) => viz.encodePNG({ width: 1, height: 1, data: new Uint8ClampedArray(4) }, o), bad: { deflte: null }, want: "deflate", good: { deflate: (raw) => raw } },
  // the engine
  { where: "init", call: (o) => sn.init(o), bad: { thread: 1 }, want: "threads", good: { threads: 2, build: "auto", sentinels: false, sharedMemory: true, minParallelWork: 32768, warmUp: false, webgpu: false } },
  { where: "init", in: "webgpu", call: (o) => sn.init({ threads: 2, webgpu: o }), bad: { allowFalback: false }, want: "allowFallback" },
  { where: "Engine.create", call: async (o) => (await sn.Engine.create(o)).dispose(), bad: { warmup: false }, want: "warmUp", good: { threads: 1, warmUp: false } },
];

/** Runs a call that may return a promise; its error (or null). */
async function errorOf(f) {
  try {
    await f();
    return null;
  } catch (e) {
    return e;
  }
}

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

test("every row's misspelt key is refused, naming the function, the key, the likely key and the keys there are", async () => {
  const wrong = [];
  for (const r of rows) {
    const key = Object.keys(r.bad).at(-1); // the misspelt key is the last
    const e = await errorOf(() => r.call(r.bad));
    const noun = r.noun ?? "option";
    const hint = r.want ? ` \\(did you mean '${esc(r.want)}'\\?\\)` : "";
    const want = new RegExp(`^${esc(r.where)}: unknown ${noun} '${esc(key)}'${hint}${r.in ? ` in ${esc(r.in)}` : ""}; ${esc(r.whose ?? r.in ?? r.where)} takes `);
    if (!e || !want.test(e.message)) wrong.push(`${r.where} ${JSON.stringify(Object.keys(r.bad))}: ${e ? e.message : "no error"} (want ${want})`);
    else if (r.want && !e.message.split(" takes ")[1].split(", ").includes(r.want)) wrong.push(`${r.where}: the list of keys lacks '${r.want}': ${e.message}`);
  }
  assert.equal(wrong, [], wrong.join("\n"));
});

test("every row still takes every key it documents", async () => {
  const wrong = [];
  for (const r of rows.filter((r) => r.good)) {
    const e = await errorOf(() => r.call(r.good));
    if (e) wrong.push(`${r.where} ${JSON.stringify(Object.keys(r.good))}: ${e.message}`);
  }
  assert.equal(wrong, [], wrong.join("\n"));
});

test("options that are not an object are refused, naming the function; undefined is no options", async () => {
  const cases = [
    [() => sn.fit(tinyModel(), toyData(8), 3), /^fit: the options must be an object \{ epochs, batchSize, optimizer, \.\.\. \}, got number 3$/],
    [() => sn.fit(tinyModel(), toyData(8), null), /^fit: the options must be an object .*, got null$/],
    [() => sn.fit(tinyModel(), toyData(8), { earlyStopping: true }), /^fit: earlyStopping must be an object \{ monitor, patience, minDelta, \.\.\. \}, got boolean true$/],
    [() => sn.init("threads"), /^init: the options must be an object .*, got string threads$/],
    [() => sn.init({ webgpu: "yes" }), /^init: webgpu must be an object \{ allowFallback, powerPreference \}, got string yes$/],
    [() => models.lenet([10]), /^lenet: the options must be an object .*, got an array$/],
    [() => models.resnet18(10), /^resnet18: the options must be an object .*, got number 10$/],
    [() => new nn.Conv2d(1, 2, 3, 1), /^Conv2d: the options must be an object .*, got number 1$/],
    [() => sn.conv2d(x4(), w4(), null, 1), /^conv2d: the attributes must be an object \{ stride, padding, dilation, \.\.\. \}, got number 1$/],
    [() => new sn.DataLoader(toyData(4), 16), /^DataLoader: the options must be an object .*, got number 16$/],
    [() => new sn.Adam(params(), 0.1), /^Adam: the options must be an object .*, got number 0.1$/],
    [() => new nn.Dropout({ p: 0.3 }), /^Dropout: p must be a number in \[0, 1\) \(new Dropout\(0\.5\)\), got \{"p":0\.3\}$/],
    [() => data.horizontalFlip({ p: 0.3 }), /^horizontalFlip: p must be a probability in \[0, 1\] \(horizontalFlip\(0\.5\)\), got \{"p":0\.3\}$/],
  ];
  const wrong = [];
  for (const [f, want] of cases) {
    const e = await errorOf(f);
    if (!e || !want.test(e.message)) wrong.push(`${e ? e.message : "no error"} (want ${want})`);
  }
  assert.equal(wrong, [], wrong.join("\n"));
  // a key given as undefined is a key not given
  assert.not.throws(() => models.lenet({ classes: 3, clases: undefined }));
  assert.not.throws(() => sn.conv2d(x4(), w4(), null, undefined));
});

test("every model factory of the zoo refuses a misspelt option, under its own name", () => {
  const wrong = [];
  for (const name of Object.keys(models.modelFactories)) {
    // fcn passes what it does not know to its backbone (alexnet by default), which refuses it
    const where = name === "fcn" ? "alexnet" : name === "cifar_resnet" ? "cifar_resnet" : name;
    let msg = "no error";
    try {
      sn.createModel(name, { clases: 10 });
    } catch (e) {
      msg = e.message;
    }
    if (!msg.startsWith(`${where}: unknown option 'clases' (did you mean 'classes'?); ${where} takes `)) wrong.push(`${name}: ${msg}`);
  }
  assert.equal(wrong, [], wrong.join("\n"));
});

test("every op's attributes are the keys of its defaults, and apply() refuses any other with the op's name", () => {
  const x = sn.tensor([1, 2, 3, 4], [1, 4]);
  const wrong = [];
  for (const [name, op] of sn.opTable) {
    if (!Array.isArray(op.attributes)) wrong.push(`${name}: no attributes list`);
    let msg = "no error";
    try {
      op.apply([x, x, x, x, x], { no_such_attribute: 1 });
    } catch (e) {
      msg = e.message;
    }
    const takes = op.attributes.length ? `takes ${op.attributes.join(", ")}` : "takes no attributes";
    if (msg !== `${name}: unknown attribute 'no_such_attribute'; ${name} ${takes}`) wrong.push(`${name}: ${msg}`);
  }
  assert.equal(wrong, [], wrong.join("\n"));
});

test("fit refuses settings that a given optimiser would silently ignore", async () => {
  const model = tinyModel();
  const opt = new sn.SGD(model.parameters(), { lr: 0.1 });
  const e1 = await errorOf(() => sn.fit(model, toyData(8), { optimizer: opt, lr: 0.5 }));
  assert.match(e1?.message ?? "", /^fit: lr is for an optimizer given by name \("sgd", "adam", \.\.\.\); the optimizer given has its own settings$/);
  const e2 = await errorOf(() => sn.fit(model, toyData(8), { optimizer: (ps) => new sn.Adam(ps), momentum: 0.9, weightDecay: 0.1 }));
  assert.match(e2?.message ?? "", /^fit: momentum, weightDecay are for an optimizer given by name/);
  const e3 = await errorOf(() => sn.fit(model, toyData(8), { optimizer: "adam", momentum: 0.9 }));
  assert.match(e3?.message ?? "", /^fit: momentum is for sgd and rmsprop; adam has none/);
  // momentum 0 (what the command line passes for adam) changes nothing, so it is not an error
  assert.is(await errorOf(() => sn.fit(model, toyData(8), { optimizer: "adam", momentum: 0 })), null);
});

test("evaluate refuses batchSize and normalize for a DataLoader, which has its own", async () => {
  const loader = new sn.DataLoader(toyData(8), { batchSize: 4 });
  try {
    assert.throws(() => sn.evaluate(tinyModel(), loader, { batchSize: 2 }), /^evaluate: batchSize applies when the data is a Dataset; the DataLoader given has its own/);
    const e = await errorOf(() => sn.evaluateAsync(tinyModel(), loader, { batchSize: 2, normalize: { mean: 0, std: 1 } }));
    assert.match(e?.message ?? "", /^evaluateAsync: batchSize and normalize apply when the data is a Dataset/);
    assert.is(sn.evaluate(tinyModel(), loader, { loss: (o, y) => sn.cross_entropy(o, y) }).n, 8);
  } finally {
    loader.dispose();
  }
});

test("no suggestion for a key far from every known one; case, '_' and '-' do not count as edits", () => {
  assert.throws(() => new sn.SGD(params(), { learning_rate: 0.1 }), (e) => e.message === "SGD: unknown option 'learning_rate'; SGD takes lr, momentum, dampening, nesterov, weight_decay, initial_lr");
  assert.throws(() => new sn.Adam(params(), { WEIGHT_DECAY: 0.1 }), /\(did you mean 'weight_decay'\?\)/);
  assert.throws(() => sn.DataLoader && new sn.DataLoader(toyData(4), { "drop-last": true }), /\(did you mean 'dropLast'\?\)/);
});

test.run();
