// fit(): the training loop most people want (mini-batches shuffled each epoch, metrics,
// validation, callbacks, early stopping, checkpoints and resume), and evaluate(), for one
// class per image (classification) or a class per pixel (segmentation). Each step
// runs inside tidy(), so memory stays flat: the only tensors that outlive a step are the
// parameters, their gradients and the optimiser's state.
import { Tensor, tidy } from "../tensor.js";
import { noGrad } from "../autograd.js";
import { Module } from "../nn/module.js";
import { cross_entropy } from "../ops/index.js";
import { Dataset } from "../data/dataset.js";
import { DataLoader, type DataLoaderOptions, type Batch } from "../data/loader.js";
import type { Transform } from "../data/augment.js";
import { MetricSums, topkCorrect, pixelCounts, labelledPixels, checkTargets } from "./metrics.js";
import { traceNonFinite, nonFiniteError } from "./nan.js";
import { packCheckpoint, unpackCheckpoint, type Optimizer, type Stateful } from "./checkpoint.js";
import { createOptimizer, type OptimizerName } from "./optimizers.js";
import { clipGradNorm, clipGradNormTensor, clipGradValue, addL1Grad } from "../optim/clip.js";
import { gpuEngine } from "../engine/engine.js";
import type { GpuEngine } from "../webgpu/engine.js";
import { GpuMetrics, GpuPixelMetrics } from "./gpu_metrics.js";
import { summary } from "../summary.js";
import { nodeFs } from "../platform/index.js";
import { checkOptions, keysOf, badArgument } from "../options.js";

export type LossFn = (output: Tensor, target: Tensor) => Tensor;

export interface EpochRecord {
  /** 1-based */
  epoch: number;
  loss: number;
  /** training accuracies, present when `metrics` asks for them; for per-pixel targets, over
   *  the labelled pixels (top1: pixel accuracy) */
  top1?: number;
  top5?: number;
  /** per-pixel targets: mean intersection over union of the classes predicted or present */
  miou?: number;
  val_loss?: number;
  val_top1?: number;
  val_top5?: number;
  val_miou?: number;
  /** learning rate during the epoch (schedulerStep "batch": of its last batch), when the
   *  optimiser says */
  lr?: number;
  seconds: number;
  imagesPerSec: number;
}

export type Monitor = "loss" | "top1" | "top5" | "miou" | "val_loss" | "val_top1" | "val_top5" | "val_miou";
type Metric = "loss" | "top1" | "top5" | "miou";

export interface Progress {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  /** mean training loss so far this epoch */
  loss: number;
  imagesPerSec: number;
  /** seconds since fit() started, and an estimate of the seconds left for the training batches */
  elapsed: number;
  eta: number;
}

export interface FitOptions {
  epochs?: number;
  batchSize?: number;
  /** an optimiser, a function making one from the trainable parameters, or a name
   *  ("sgd", "adam", "adamw", "rmsprop") built with lr / momentum / weightDecay */
  optimizer?: Optimizer | ((params: Tensor[]) => Optimizer) | OptimizerName;
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  /** stepped once per epoch after validation (StepLR, ExponentialLR, CosineAnnealingLR, ...),
   *  or after every optimiser step with schedulerStep "batch" */
  scheduler?: (Stateful & { step(): void }) | ((opt: Optimizer) => Stateful & { step(): void });
  /** when the scheduler steps: "epoch" (default) or "batch" (its epochs are then iterations, so
   *  linearWarmup's `steps` counts optimiser steps) */
  schedulerStep?: "epoch" | "batch";
  /** between backward() and the optimiser's step, on the trainable parameters, in this order:
   *  add the gradient of l1·Σ|w| (every trainable parameter, biases included), clamp each
   *  gradient element to ±clipGradValue, scale the gradients so that their joint L2 norm is at
   *  most clipGradNorm (torch.nn.utils.clip_grad_norm_) */
  l1?: number;
  clipGradValue?: number;
  clipGradNorm?: number;
  /** default: softmax cross-entropy on class indices (for per-pixel targets on score maps,
   *  with the data set's ignoreIndex) */
  loss?: LossFn;
  validation?: Dataset;
  /** which of top1 / top5 (and miou, for per-pixel targets) to compute (the loss always is);
   *  default all. The history has only these (val_top1 / val_top5 / val_miou too). For
   *  per-pixel targets top1 is pixel accuracy and top5 the share of pixels whose class is
   *  among their 5 highest scores, both over the pixels that are not the ignore index; miou
   *  the mean over classes of intersection / union (predicted class: the highest score) */
  metrics?: Metric[];
  shuffle?: boolean;
  /** seed of the data loader's generator (order and augmentation) */
  seed?: number;
  augment?: Transform[];
  normalize?: DataLoaderOptions["normalize"];
  callbacks?: {
    onBatchEnd?: (info: { epoch: number; batch: number; step: number; loss: number; size: number }) => void;
    /** return false to stop after this epoch */
    onEpochEnd?: (record: EpochRecord, history: EpochRecord[]) => void | boolean;
  };
  /** stop when `monitor` has not improved by minDelta for `patience` epochs */
  earlyStopping?: { monitor?: Monitor; patience?: number; minDelta?: number; restoreBest?: boolean };
  /** called after every batch (progress bars) */
  onProgress?: (p: Progress) => void;
  /** Node: write a checkpoint here after every `checkpointEvery` epochs (atomically) */
  checkpoint?: string;
  checkpointEvery?: number;
  /** Node: continue from this checkpoint file (true: the `checkpoint` path, which must then be
   *  given). A file that does not exist is not an error: training starts from scratch, so the
   *  same call starts a run and, run again after an interruption, continues it. A file that
   *  exists but does not fit the model, optimiser or scheduler is an error, and nothing is
   *  restored from it. */
  resume?: string | boolean;
  /** a JSON object stored in each checkpoint as it is (e.g. the settings of the run that wrote
   *  it); readCheckpointInfo() reads it back without restoring anything, so a program can compare
   *  a resumed run's settings with the saved ones before it calls fit */
  checkpointInfo?: Record<string, unknown>;
  /** where to train: "cpu" (default), "webgpu" (the model, its optimiser state and each batch
   *  move there; needs init({ webgpu: true })) or "auto" (webgpu when init found a real, not a
   *  software, adapter and the model is large: see pickDevice). On webgpu the loss and
   *  accuracies are added up on the GPU and read every `logEvery` steps, so onProgress and
   *  onBatchEnd see the loss as of the last read. */
  device?: "cpu" | "webgpu" | "auto";
  /** webgpu: steps between reads of the running metrics (default 25) */
  logEvery?: number;
}

export interface FitResult {
  history: EpochRecord[];
  /** why training ended before `epochs`, if it did */
  stopped?: string;
  /** the epoch of the best monitored value (early stopping) */
  bestEpoch?: number;
  optimizer: Optimizer;
  /** where it trained, and why there when device was "auto" */
  device: "cpu" | "webgpu";
  deviceReason?: string;
}

/** Multiply-adds per image above which device "auto" takes a real GPU (LeNet: 0.4 M, a CIFAR
 *  ResNet-20: 41 M, ResNet-18 at 224: 1.8 G). Below it the kernels are too small to fill a GPU
 *  and each step's fixed costs dominate. */
export const AUTO_GPU_MACS = 50e6;

/** Where device "auto" trains a model on inputs of shape [C, H, W], and why. */
export function pickDevice(model: Module, inputShape: readonly number[]): { device: "cpu" | "webgpu"; reason: string } {
  let g: GpuEngine | null = null;
  try {
    g = gpuEngine();
  } catch {
    return { device: "cpu", reason: "no WebGPU engine (init({ webgpu: true }) not called, or it found no adapter)" };
  }
  if (g.info.isFallback) return { device: "cpu", reason: `the only WebGPU adapter is a software one (${g.info.adapter}): the CPU engine is faster` };
  let macs = 0;
  try {
    macs = summary(model, [1, ...inputShape]).totalMacs;
  } catch {
    macs = Infinity;
  }
  if (macs < AUTO_GPU_MACS) return { device: "cpu", reason: `${(macs / 1e6).toFixed(1)} M multiply-adds per image is below ${AUTO_GPU_MACS / 1e6} M: too small a net to gain from the GPU` };
  return { device: "webgpu", reason: `a real GPU (${g.info.adapter}) and ${(macs / 1e6).toFixed(0)} M multiply-adds per image` };
}

const FIT_OPTIONS = keysOf<FitOptions>({
  epochs: true, batchSize: true, optimizer: true, lr: true, momentum: true, weightDecay: true, scheduler: true, schedulerStep: true,
  l1: true, clipGradValue: true, clipGradNorm: true, loss: true, validation: true, metrics: true, shuffle: true, seed: true,
  augment: true, normalize: true, callbacks: true, earlyStopping: true, onProgress: true, checkpoint: true, checkpointEvery: true,
  resume: true, checkpointInfo: true, device: true, logEvery: true,
});
const CALLBACKS = keysOf<NonNullable<FitOptions["callbacks"]>>({ onBatchEnd: true, onEpochEnd: true });
const EARLY_STOPPING = keysOf<NonNullable<FitOptions["earlyStopping"]>>({ monitor: true, patience: true, minDelta: true, restoreBest: true });
const NORMALIZE = keysOf<NonNullable<DataLoaderOptions["normalize"]>>({ mean: true, std: true });
const EVALUATE_OPTIONS = keysOf<EvaluateOptions>({ batchSize: true, normalize: true, loss: true });

/** evaluate's options; batchSize and normalize make the loader of a Dataset, so they cannot
 *  apply to a DataLoader given instead (it has its own) */
function checkEvaluateOptions(where: string, model: unknown, data: unknown, opts: EvaluateOptions): void {
  if (!(model instanceof Module)) badArgument(where, "the model", "a Module", model);
  if (!(data instanceof DataLoader) && !(data instanceof Dataset)) badArgument(where, "the data", "a Dataset or a DataLoader", data);
  checkOptions(where, opts, EVALUATE_OPTIONS);
  if (opts.normalize !== undefined) checkOptions(where, opts.normalize, NORMALIZE, { in: "normalize" });
  if (data instanceof DataLoader) {
    const given = (["batchSize", "normalize"] as const).filter((k) => opts[k] !== undefined);
    if (given.length) throw new Error(`${where}: ${given.join(" and ")} ${given.length > 1 ? "apply" : "applies"} when the data is a Dataset; the DataLoader given has its own (make it with the ${given.join(" and ")} wanted)`);
  }
}

const crossEntropy: LossFn = (out, y) => cross_entropy(out, y);

/** cross-entropy, for per-pixel targets with the data set's ignore index */
function defaultLoss(data: Dataset): LossFn {
  if (data.targets !== "pixels") return crossEntropy;
  const ignore_index = data.ignoreIndex;
  return (out, y) => cross_entropy(out, y, { ignore_index });
}

/** per-pixel targets [B, H, W] need score maps [B, K, H, W] (tidy() frees the step's tensors
 *  when this throws) */
function checkMaps(what: string, out: Tensor, batch: Batch): void {
  const s = out.shape, t = batch.y.shape;
  if (s.length !== 4 || s[0] !== t[0] || s[2] !== t[1] || s[3] !== t[2])
    throw new Error(`${what}: the data set has a class per pixel (targets [${t}]) but the model's output is [${s}]; a segmentation model gives score maps [${t[0]}, classes, ${t[1]}, ${t[2]}]`);
}

function currentLr(opt: any): number | undefined {
  const lr = opt?.lr ?? opt?.paramGroups?.[0]?.lr ?? opt?.param_groups?.[0]?.lr ?? opt?.defaults?.lr;
  return typeof lr === "number" ? lr : undefined;
}

export async function fit(model: Module, train: Dataset, opts: FitOptions = {}): Promise<FitResult> {
  if (!(model instanceof Module)) throw new Error("fit: the first argument must be a Module");
  if (!(train instanceof Dataset)) throw new Error("fit: the training data must be a Dataset");
  checkOptions("fit", opts, FIT_OPTIONS);
  if (opts.callbacks !== undefined) checkOptions("fit", opts.callbacks, CALLBACKS, { in: "callbacks" });
  if (opts.earlyStopping !== undefined) checkOptions("fit", opts.earlyStopping, EARLY_STOPPING, { in: "earlyStopping" });
  if (opts.normalize !== undefined) checkOptions("fit", opts.normalize, NORMALIZE, { in: "normalize" });
  // the optimiser's settings apply to one given by name; one given built has its own
  if (opts.optimizer !== undefined && typeof opts.optimizer !== "string") {
    const given = (["lr", "momentum", "weightDecay"] as const).filter((k) => opts[k] !== undefined);
    if (given.length) throw new Error(`fit: ${given.join(", ")} ${given.length > 1 ? "are" : "is"} for an optimizer given by name ("sgd", "adam", ...); the optimizer given has its own settings`);
  }
  if ((opts.optimizer === "adam" || opts.optimizer === "adamw") && opts.momentum)
    throw new Error(`fit: momentum is for sgd and rmsprop; ${opts.optimizer} has none (its moment estimates play that part), got momentum ${opts.momentum}`);
  const pixels = train.targets === "pixels";
  const { epochs = 1, batchSize = 32, lr = 0.01, momentum = 0, weightDecay, metrics = pixels ? ["loss", "top1", "top5", "miou"] : ["loss", "top1", "top5"] } = opts;
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`fit: epochs must be a positive integer, got ${epochs}`);
  for (const k of ["clipGradNorm", "clipGradValue", "l1"] as const) {
    const v = opts[k];
    if (v !== undefined && (typeof v !== "number" || !Number.isFinite(v) || v <= 0)) throw new Error(`fit: ${k} must be a finite number > 0, got ${JSON.stringify(v)}`);
  }
  if (opts.schedulerStep !== undefined && opts.schedulerStep !== "epoch" && opts.schedulerStep !== "batch")
    throw new Error(`fit: schedulerStep must be "epoch" or "batch", got ${JSON.stringify(opts.schedulerStep)}`);
  if (opts.schedulerStep !== undefined && !opts.scheduler) throw new Error("fit: schedulerStep is given but there is no scheduler");
  const perBatch = opts.schedulerStep === "batch";
  if (!Array.isArray(metrics) || metrics.some((k) => k !== "loss" && k !== "top1" && k !== "top5" && k !== "miou"))
    throw new Error(`fit: metrics must be a list of "loss", "top1", "top5"${pixels ? ', "miou"' : ""}, got ${JSON.stringify(metrics)}`);
  if (metrics.includes("miou") && !pixels) throw new Error('fit: metric "miou" needs per-pixel targets (a segmentation Dataset); this one has one label per image');
  if (opts.validation) {
    if ((opts.validation.targets ?? "labels") !== train.targets)
      throw new Error(`fit: the training data has ${pixels ? "a class per pixel" : "one label per image"} but the validation data ${pixels ? "one label per image" : "a class per pixel"}`);
  }
  if (opts.checkpointEvery !== undefined && (!Number.isInteger(opts.checkpointEvery) || opts.checkpointEvery < 1))
    throw new Error(`fit: checkpointEvery must be a positive integer, got ${JSON.stringify(opts.checkpointEvery)}`);
  if (opts.resume !== undefined && typeof opts.resume !== "boolean" && (typeof opts.resume !== "string" || !opts.resume))
    throw new Error(`fit: resume must be true, false or a checkpoint path, got ${JSON.stringify(opts.resume)}`);
  if (opts.resume === true && !opts.checkpoint) throw new Error("fit: resume: true continues from the `checkpoint` path, but no checkpoint path is given");
  if (opts.checkpointInfo !== undefined) {
    const ci = opts.checkpointInfo;
    if (!ci || typeof ci !== "object" || Array.isArray(ci)) throw new Error(`fit: checkpointInfo must be a plain object, got ${Array.isArray(ci) ? "an array" : JSON.stringify(ci)}`);
    if (!opts.checkpoint) throw new Error("fit: checkpointInfo is stored in checkpoints, but no checkpoint path is given");
    try {
      JSON.stringify(ci);
    } catch (e) {
      throw new Error(`fit: checkpointInfo must be JSON (it is stored as text): ${(e as Error).message}`);
    }
  }
  // the monitored value must be one the history will have, known before spending a first epoch
  const es = opts.earlyStopping;
  const monitor: Monitor = es?.monitor ?? (opts.validation ? "val_loss" : "loss");
  const computed: Monitor[] = ["loss", ...metrics.filter((k): k is "top1" | "top5" | "miou" => k !== "loss")];
  if (opts.validation) computed.push(...computed.map((k) => `val_${k}` as Monitor));
  if (es && !computed.includes(monitor)) {
    const known = pixels ? ["loss", "top1", "top5", "miou", "val_loss", "val_top1", "val_top5", "val_miou"] : ["loss", "top1", "top5", "val_loss", "val_top1", "val_top5"];
    const why = !known.includes(monitor) ? `it is not one of ${known.join(", ")}` : monitor.startsWith("val_") && !opts.validation ? "there is no validation data" : `metrics does not include '${monitor.replace("val_", "")}'`;
    throw new Error(`fit: earlyStopping monitors '${monitor}' but the history has no such value: ${why}`);
  }
  const lossFn = opts.loss ?? defaultLoss(train);
  if (opts.device !== undefined && !["cpu", "webgpu", "auto"].includes(opts.device as string))
    throw new Error(`fit: device must be "cpu", "webgpu" or "auto", got ${JSON.stringify(opts.device)}`);
  const logEvery = opts.logEvery ?? 25;
  if (!Number.isInteger(logEvery) || logEvery < 1) throw new Error(`fit: logEvery must be a positive integer, got ${JSON.stringify(opts.logEvery)}`);
  const picked = opts.device === "auto" ? pickDevice(model, train.shape.slice(1)) : { device: opts.device ?? model.device, reason: undefined };
  const device = picked.device as "cpu" | "webgpu";
  if (device === "webgpu") {
    gpuEngine(); // a clear error when there is none
  } else if (model.device === "webgpu") throw new Error('fit: the model is on webgpu; pass device: "webgpu", or move it back first (await model.cpu())');
  const params = model.parameters().filter((p) => p.requiresGrad);
  if (!params.length) throw new Error("fit: the model has no trainable parameters (all frozen?)");
  const opt: Optimizer =
    typeof opts.optimizer === "function" ? opts.optimizer(params) : typeof opts.optimizer === "object" && opts.optimizer ? opts.optimizer : createOptimizer(opts.optimizer ?? "sgd", params, { lr, momentum, weightDecay });
  const sched = typeof opts.scheduler === "function" ? opts.scheduler(opt) : opts.scheduler;
  if (sched && typeof sched.step !== "function") throw new Error("fit: the scheduler has no step() method");
  const loader = new DataLoader(train, { batchSize, shuffle: opts.shuffle ?? true, seed: opts.seed ?? 0, augment: opts.augment, normalize: opts.normalize });
  const wantTop1 = metrics.includes("top1"), wantTop5 = metrics.includes("top5"), wantMiou = metrics.includes("miou");
  const wantTopk = wantTop1 || wantTop5 || wantMiou;
  const [, , H, W] = train.shape, ignore = train.ignoreIndex;

  let history: EpochRecord[] = [];
  let start = 0;
  // what a resumed run must share with the saved one beyond the states (a schedule stepped per
  // batch against per epoch would give other learning rates from the same scheduler state)
  const runSettings = { schedulerStep: sched ? (perBatch ? "batch" : "epoch") : null };
  const resumePath = opts.resume === true ? opts.checkpoint : opts.resume || undefined;
  // resume: a path that does not exist yet means a fresh start (see FitOptions.resume)
  if (resumePath) {
    const fs = await nodeFs();
    if (fs.existsSync(resumePath)) {
      const r = unpackCheckpoint(new Uint8Array(fs.readFileSync(resumePath)), { model, optimizer: opt, scheduler: sched, loader, expectExtra: runSettings }, resumePath);
      start = r.epoch;
      history = r.history as EpochRecord[];
    }
  }

  if (device === "webgpu") {
    model.to("webgpu");
    (opt as any).to?.("webgpu");
    // every kernel's pipeline at once, in parallel, rather than one by one in the first step
    await gpuEngine().compileAll();
  }
  const onGpu = device === "webgpu";
  /** checkpoints hold CPU values: on webgpu the model and optimiser state go to the CPU for
   *  the write and back after (once per checkpoint, so a file from either device resumes on
   *  either) */
  const writeCheckpoint = async (epochsDone: number) => {
    const { writeFileAtomic } = await import("./files.js");
    if (onGpu) {
      await model.cpu();
      await (opt as any).cpu?.();
    }
    try {
      await writeFileAtomic(opts.checkpoint!, packCheckpoint({ model, optimizer: opt, scheduler: sched, loader, epoch: epochsDone, history, extra: { ...runSettings, info: opts.checkpointInfo ?? null } }));
    } finally {
      if (onGpu) {
        model.to("webgpu");
        (opt as any).to?.("webgpu");
      }
    }
  };
  const snapshot = async () => {
    const out = new Map<string, { shape: readonly number[]; data: Float32Array }>();
    for (const [n, t] of model.stateDict()) out.set(n, { shape: t.shape, data: await t.read() });
    return out;
  };

  const higherBetter = !monitor.endsWith("loss");
  let best = Infinity * (higherBetter ? -1 : 1);
  let bestEpoch: number | undefined;
  let bestState: Map<string, { shape: readonly number[]; data: Float32Array }> | null = null;
  let sinceBest = 0;
  for (const r of history) {
    const v = r[monitor];
    if (typeof v === "number" && (higherBetter ? v > best + (es?.minDelta ?? 0) : v < best - (es?.minDelta ?? 0))) {
      best = v;
      bestEpoch = r.epoch;
      sinceBest = 0;
    } else sinceBest++;
  }

  const t0 = performance.now();
  let step = start * loader.length;
  let stopped: string | undefined;
  try {
    for (let epoch = start; epoch < epochs && !stopped; epoch++) {
      model.train();
      const sums = new MetricSums();
      const te = performance.now();
      let b = 0;
      let batchLr: number | undefined;
      /** onProgress after batch b: the mean loss so far this epoch, images seen */
      const progress = (b: number, loss: number, images: number) => {
        if (!opts.onProgress) return;
        const elapsed = (performance.now() - t0) / 1000;
        const doneHere = step - start * loader.length;
        const left = epochs * loader.length - step;
        opts.onProgress({ epoch: epoch + 1, epochs, batch: b, batches: loader.length, loss, imagesPerSec: images / ((performance.now() - te) / 1000), elapsed, eta: (elapsed / doneHere) * left });
      };
      let seen = 0;
      const gm = onGpu ? new GpuMetrics(gpuEngine()) : null;
      let pm: GpuPixelMetrics | null = null; // per-pixel counts, made at the first batch (k classes)
      let lastRead = { loss: NaN, n: 0, top1: 0, top5: 0, nonFinite: 0 };
      const readGpu = async (upTo: number) => {
        lastRead = await gm!.read();
        if (lastRead.nonFinite)
          throw new Error(`fit: the loss became non-finite in epoch ${epoch + 1} before batch ${upTo} (on webgpu the loss is read every ${logEvery} batches; train on the CPU to find the step and the layer)`);
      };
      try {
      for (const batch of loader) {
        step++;
        b++;
        if (gm) {
          const labelled = pixels ? labelledPixels(batch.labels, ignore) : batch.size;
          if (!labelled)
            throw new Error(`fit: batch ${b} of epoch ${epoch + 1} has no labelled pixel (every mask value is the ignore index ${ignore}), so its mean loss is 0/0; check the masks and the augmentations' maskFill`);
          tidy(() => {
            const x = batch.x.to("webgpu"), y = batch.y.to("webgpu");
            opt.zeroGrad(true);
            const out = model.forward(x);
            if (pixels) checkMaps("fit", out, batch);
            if (!opts.loss) checkTargets("fit", batch.labels, out.shape[1], pixels ? ignore : undefined);
            const loss = lossFn(out, y);
            loss.backward();
            // as on the CPU, queued on the GPU (the norm is not read back)
            if (opts.l1 !== undefined) addL1Grad(params, opts.l1);
            if (opts.clipGradValue !== undefined) clipGradValue(params, opts.clipGradValue);
            if (opts.clipGradNorm !== undefined) clipGradNormTensor(params, opts.clipGradNorm);
            if (perBatch) batchLr = currentLr(opt);
            opt.step();
            if (perBatch) sched!.step();
            if (!pixels) gm.add(out, y, loss);
            else {
              // the loss weighted by labelled pixels, as on the CPU
              gm.addLoss(loss, labelled);
              if (wantTopk) (pm ??= new GpuPixelMetrics(gpuEngine(), out.shape[1])).add(out, y, ignore);
            }
          });
          if (b % logEvery === 0 || b === loader.length) await readGpu(b);
          const meanLoss = lastRead.loss / Math.max(1, lastRead.n);
          opts.callbacks?.onBatchEnd?.({ epoch: epoch + 1, batch: b, step, loss: meanLoss, size: batch.size });
          seen += batch.size;
          progress(b, meanLoss, seen);
          continue;
        }
        const labelled = pixels ? labelledPixels(batch.labels, ignore) : batch.size;
        if (!labelled)
          throw new Error(`fit: batch ${b} of epoch ${epoch + 1} has no labelled pixel (every mask value is the ignore index ${ignore}), so its mean loss is 0/0; check the masks and the augmentations' maskFill`);
        const r = tidy(() => {
          // drop last step's gradients (torch's set_to_none): backward then writes them
          // instead of filling with zeros and adding; the arena reuses the freed buffers
          opt.zeroGrad(true);
          const out = model.forward(batch.x);
          if (pixels) checkMaps("fit", out, batch);
          const loss = lossFn(out, batch.y);
          const value = loss.item();
          if (!Number.isFinite(value)) return { value, hits: undefined };
          loss.backward();
          if (opts.l1 !== undefined) addL1Grad(params, opts.l1);
          if (opts.clipGradValue !== undefined) clipGradValue(params, opts.clipGradValue);
          if (opts.clipGradNorm !== undefined) clipGradNorm(params, opts.clipGradNorm);
          if (perBatch) batchLr = currentLr(opt);
          opt.step();
          if (perBatch) sched!.step();
          const hits = !wantTopk ? undefined : pixels ? pixelCounts(out.data, batch.size, out.shape[1], H * W, batch.labels, ignore) : topkCorrect(out.data, batch.size, out.shape[1], batch.labels, [1, 5]);
          return { value, hits };
        });
        if (!Number.isFinite(r.value)) throw nonFiniteError(r.value, epoch + 1, step, b, traceNonFinite(model, batch.x));
        sums.add(r.value, batch.size, r.hits, labelled);
        opts.callbacks?.onBatchEnd?.({ epoch: epoch + 1, batch: b, step, loss: r.value, size: batch.size });
        progress(b, sums.loss / sums.n, sums.n);
      }
        if (gm) {
          // the epoch's sums, as MetricSums has them on the CPU
          sums.n = seen;
          sums.weight = lastRead.n;
          sums.loss = lastRead.loss;
          if (!pixels) {
            sums.count = lastRead.n;
            sums.top1 = lastRead.top1;
            sums.top5 = lastRead.top5;
          } else if (pm) sums.add(0, 0, await (pm as GpuPixelMetrics).read(), 0);
        }
      } finally {
        gm?.dispose();
        (pm as GpuPixelMetrics | null)?.dispose();
      }
      const seconds = (performance.now() - te) / 1000;
      const m = sums.result();
      const rec: EpochRecord = { epoch: epoch + 1, loss: m.loss, seconds, imagesPerSec: sums.n / seconds };
      if (wantTop1) rec.top1 = m.top1;
      if (wantTop5) rec.top5 = m.top5;
      if (wantMiou) rec.miou = sums.meanIoU();
      const lrNow = perBatch ? batchLr : currentLr(opt);
      if (lrNow !== undefined) rec.lr = lrNow;
      if (opts.validation) {
        const v = await evaluateAsync(model, opts.validation, { batchSize: Math.max(batchSize, 256), normalize: opts.normalize, loss: opts.loss });
        rec.val_loss = v.loss;
        if (wantTop1) rec.val_top1 = v.top1;
        if (wantTop5) rec.val_top5 = v.top5;
        if (wantMiou) rec.val_miou = v.miou;
      }
      history.push(rec);
      if (opts.callbacks?.onEpochEnd?.(rec, history) === false) stopped = `onEpochEnd stopped training after epoch ${rec.epoch}`;
      if (sched && !perBatch) sched.step();
      if (es) {
        const v = rec[monitor] as number;
        const minDelta = es.minDelta ?? 0;
        if (higherBetter ? v > best + minDelta : v < best - minDelta) {
          best = v;
          bestEpoch = rec.epoch;
          sinceBest = 0;
          if (es.restoreBest) bestState = await snapshot();
        } else if (++sinceBest >= (es.patience ?? 3)) stopped = `early stopping: ${monitor} has not improved for ${sinceBest} epochs (best ${best.toPrecision(4)} at epoch ${bestEpoch})`;
      }
      if (opts.checkpoint && ((epoch + 1 - start) % (opts.checkpointEvery ?? 1) === 0 || epoch + 1 === epochs || stopped)) await writeCheckpoint(epoch + 1);
    }
  } finally {
    loader.dispose();
  }
  if (bestState) model.loadStateDict(bestState);
  const res: FitResult = { history, stopped, bestEpoch, optimizer: opt, device };
  if (picked.reason) res.deviceReason = picked.reason;
  return res;
}

export interface EvaluateOptions {
  batchSize?: number;
  normalize?: DataLoaderOptions["normalize"];
  /** default: cross-entropy (with the data set's ignoreIndex for per-pixel targets) */
  loss?: LossFn;
}

export interface EvaluateResult {
  loss: number;
  /** top-1 / top-5 accuracy; for per-pixel targets over the labelled pixels (top1: pixel
   *  accuracy) */
  top1: number;
  top5: number;
  /** images */
  n: number;
  /** per-pixel targets: mean IoU over the classes predicted or present */
  miou?: number;
  /** per-pixel targets: IoU of each class of the model's output (NaN: neither predicted nor
   *  present) */
  iou?: number[];
  /** per-pixel targets: labelled pixels counted */
  pixels?: number;
}

/** Loss and top-1 / top-5 accuracy over a data set (per-pixel targets: the loss's mean over
 *  the labelled pixels, pixel accuracy as top1, IoU), in eval mode without gradients (the
 *  model's modes are put back afterwards). */
export function evaluate(model: Module, data: Dataset | DataLoader, opts: EvaluateOptions = {}): EvaluateResult {
  checkEvaluateOptions("evaluate", model, data, opts);
  const { batchSize = 256, normalize, loss } = opts;
  const loader = data instanceof DataLoader ? data : new DataLoader(data, { batchSize, shuffle: false, normalize });
  const ds = loader.dataset, pixels = ds.targets === "pixels", ignore = ds.ignoreIndex, P = ds.shape[2] * ds.shape[3];
  const lossFn = loss ?? defaultLoss(ds);
  const modes = model.modules().map((m) => m.training);
  model.eval();
  const sums = new MetricSums();
  try {
    noGrad(() => {
      for (const batch of loader) {
        tidy(() => {
          const out = model.forward(batch.x);
          if (!pixels) return sums.add(lossFn(out, batch.y).item(), batch.size, topkCorrect(out.data, batch.size, out.shape[1], batch.labels, [1, 5]));
          checkMaps("evaluate", out, batch);
          const counts = pixelCounts(out.data, batch.size, out.shape[1], P, batch.labels, ignore);
          // a batch with no labelled pixel has a 0/0 mean loss and adds nothing
          sums.add(counts.count ? lossFn(out, batch.y).item() : 0, batch.size, counts, counts.count);
        });
      }
    });
  } finally {
    model.modules().forEach((m, i) => (m.training = modes[i]));
    if (loader !== data) loader.dispose();
  }
  const res: EvaluateResult = { ...sums.result(), n: sums.n };
  if (pixels) Object.assign(res, { miou: sums.meanIoU(), iou: sums.iou(), pixels: sums.count });
  return res;
}

/** evaluate() for a model on any device: on webgpu each batch goes to the GPU, the sums stay
 *  there and are read once at the end. */
export async function evaluateAsync(model: Module, data: Dataset | DataLoader, opts: EvaluateOptions = {}): Promise<EvaluateResult> {
  checkEvaluateOptions("evaluateAsync", model, data, opts);
  if (model.device !== "webgpu") return evaluate(model, data, opts);
  const loader = data instanceof DataLoader ? data : new DataLoader(data, { batchSize: opts.batchSize ?? 256, shuffle: false, normalize: opts.normalize });
  const ds = loader.dataset;
  const pixels = ds.targets === "pixels", ignore = ds.ignoreIndex;
  const lossFn = opts.loss ?? defaultLoss(ds);
  const modes = model.modules().map((m) => m.training);
  model.eval();
  const gm = new GpuMetrics(gpuEngine());
  let pm: GpuPixelMetrics | null = null;
  let images = 0;
  try {
    noGrad(() => {
      for (const batch of loader)
        tidy(() => {
          const x = batch.x.to("webgpu"), y = batch.y.to("webgpu");
          const out = model.forward(x);
          images += batch.size;
          if (pixels) checkMaps("evaluate", out, batch);
          if (!opts.loss) checkTargets("evaluate", batch.labels, out.shape[1], pixels ? ignore : undefined);
          if (!pixels) return gm.add(out, y, lossFn(out, y));
          (pm ??= new GpuPixelMetrics(gpuEngine(), out.shape[1])).add(out, y, ignore);
          // a batch with no labelled pixel has a 0/0 mean loss and adds nothing (as on the CPU)
          const labelled = labelledPixels(batch.labels, ignore);
          if (labelled) gm.addLoss(lossFn(out, y), labelled);
        });
    });
    const s = await gm.read();
    if (s.nonFinite) throw new Error(`evaluate: the loss is not finite on ${s.nonFinite} batch(es)`);
    if (!pixels) return { loss: s.loss / s.n, top1: s.top1 / s.n, top5: s.top5 / s.n, n: s.n };
    const sums = new MetricSums();
    sums.add(s.loss / Math.max(1, s.n), images, pm ? await (pm as GpuPixelMetrics).read() : undefined, s.n);
    return { ...sums.result(), n: images, miou: sums.meanIoU(), iou: sums.iou(), pixels: sums.count };
  } finally {
    gm.dispose();
    (pm as GpuPixelMetrics | null)?.dispose();
    model.modules().forEach((m, i) => (m.training = modes[i]));
    if (loader !== data) loader.dispose();
  }
}

// model.fit(data, opts) and model.evaluate(data), as STYLE.md's PyTorch/Keras-like API
declare module "../nn/module.js" {
  interface Module {
    fit(train: Dataset, opts?: FitOptions): Promise<FitResult>;
    evaluate(data: Dataset | DataLoader, opts?: EvaluateOptions): ReturnType<typeof evaluate>;
  }
}
Module.prototype.fit = function (this: Module, train: Dataset, opts?: FitOptions) {
  return fit(this, train, opts);
};
Module.prototype.evaluate = function (this: Module, data: Dataset | DataLoader, opts?: EvaluateOptions) {
  return evaluate(this, data, opts);
};
