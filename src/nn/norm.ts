// Normalisation layers. BatchNorm keeps running statistics as buffers (running_mean,
// running_var, num_batches_tracked: PyTorch's state-dict names) that the op updates in place
// while training and uses in eval mode.
import { Tensor, zeros, ones, full } from "../tensor.js";
import { Module } from "./module.js";
import { batch_norm, batch_norm_fused, local_response_norm, accumulateInto } from "../ops/index.js";
import { checkOptions, keysOf } from "../options.js";
import { layerOptions, checkBool, checkNumber, describe } from "./shapes.js";

export interface BatchNormOptions {
  eps?: number;
  momentum?: number;
  /** learnable scale (weight) and shift (bias), default true */
  affine?: boolean;
  /** keep running statistics for eval mode, default true */
  trackRunningStats?: boolean;
}

const BATCH_NORM_OPTIONS = keysOf<BatchNormOptions>({ eps: true, momentum: true, affine: true, trackRunningStats: true });

abstract class BatchNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor | null;
  readonly runningVar: Tensor | null;
  readonly numBatchesTracked: Tensor | null;
  readonly eps: number;
  readonly momentum: number;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;

  constructor(type: string, readonly numFeatures: number, options: BatchNormOptions) {
    super();
    const { eps = 1e-5, momentum = 0.1, affine = true, trackRunningStats = true } = layerOptions<BatchNormOptions>(type, options, ["eps", "momentum", "affine", "trackRunningStats"]);
    if (!Number.isInteger(numFeatures) || numFeatures < 1) throw new Error(`${type}: num_features must be a positive integer, got ${describe(numFeatures)}`);
    checkNumber(`${type}: eps`, eps, (v) => v > 0, "> 0");
    checkNumber(`${type}: momentum`, momentum, (v) => v >= 0 && v <= 1, "in [0, 1]");
    checkBool(`${type}: affine`, affine);
    checkBool(`${type}: trackRunningStats`, trackRunningStats);
    this.eps = eps;
    this.momentum = momentum;
    this.affine = affine;
    this.trackRunningStats = trackRunningStats;
    this.weight = affine ? this.registerParameter("weight", ones([numFeatures])) : null;
    this.bias = affine ? this.registerParameter("bias", zeros([numFeatures])) : null;
    this.runningMean = trackRunningStats ? this.registerBuffer("running_mean", zeros([numFeatures])) : null;
    this.runningVar = trackRunningStats ? this.registerBuffer("running_var", ones([numFeatures])) : null;
    // PyTorch keeps this as a 0-d int64; here a 0-d float32 (exact up to 2^24 batches)
    this.numBatchesTracked = trackRunningStats ? this.registerBuffer("num_batches_tracked", full([], 0)) : null;
  }

  protected abstract ranks: number[];

  outputShape(i: number[]): number[] {
    if (!this.ranks.includes(i.length)) throw new Error(`expected rank ${this.ranks.join(" or ")}, got rank ${i.length} [${i}]`);
    if (i[1] !== this.numFeatures) throw new Error(`expected ${this.numFeatures} channels, got ${i[1]}`);
    return i;
  }

  forward(x: Tensor): Tensor {
    return batch_norm(x, this.runningMean, this.runningVar, this.weight, this.bias, this.countBatch());
  }

  /** forward, then + residual (if given), then ReLU, as one batch_norm_fused op: the same values,
   *  running statistics and gradients (src/nn/fusion.ts calls it; the caller times it as this
   *  layer). */
  _forwardFused(x: Tensor, residual: Tensor | null): Tensor {
    return batch_norm_fused(x, this.runningMean, this.runningVar, this.weight, this.bias, residual, { ...this.countBatch(), relu: true });
  }

  /** Counts a training batch; the op's attributes: batch statistics while training, or always
   *  when there are no running ones (PyTorch). */
  private countBatch(): { training: boolean; momentum: number; eps: number } {
    const useBatch = this.training || !this.trackRunningStats;
    if (this.training && this.numBatchesTracked) {
      const n = this.numBatchesTracked;
      if (n.device === "cpu") n.data[0] += 1;
      else {
        // on the GPU: += 1 queued in order (no readback)
        const one = full(n.shape, 1, n.engine);
        accumulateInto(n, one);
        one.dispose();
      }
    }
    return { training: useBatch, momentum: this.momentum, eps: this.eps };
  }

  protected args() {
    return [this.numFeatures, { eps: this.eps, momentum: this.momentum, affine: this.affine, trackRunningStats: this.trackRunningStats }];
  }

  protected extraRepr() {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=${this.affine ? "True" : "False"}, track_running_stats=${this.trackRunningStats ? "True" : "False"}`;
  }
}

export class BatchNorm2d extends BatchNorm {
  readonly type = "BatchNorm2d";
  protected ranks = [4];
  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super("BatchNorm2d", numFeatures, options);
  }
}

export class BatchNorm1d extends BatchNorm {
  readonly type = "BatchNorm1d";
  protected ranks = [2, 3];
  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super("BatchNorm1d", numFeatures, options);
  }
}

/** AlexNet's local response normalisation across `size` neighbouring channels. */
export class LocalResponseNorm extends Module {
  readonly type = "LocalResponseNorm";
  readonly alpha: number;
  readonly beta: number;
  readonly k: number;

  constructor(readonly size: number, options: { alpha?: number; beta?: number; k?: number } = {}) {
    super();
    const { alpha = 1e-4, beta = 0.75, k = 1 } = layerOptions<{ alpha?: number; beta?: number; k?: number }>("LocalResponseNorm", options, ["alpha", "beta", "k"]);
    if (!Number.isInteger(size) || size < 1 || size > 2 ** 31 - 1) throw new Error(`LocalResponseNorm: size must be a positive integer, got ${describe(size)}`);
    checkNumber("LocalResponseNorm: alpha", alpha);
    checkNumber("LocalResponseNorm: beta", beta);
    checkNumber("LocalResponseNorm: k", k);
    this.alpha = alpha;
    this.beta = beta;
    this.k = k;
  }

  outputShape(i: number[]): number[] {
    if (i.length < 3) throw new Error(`expected rank 3 or more (N, C, ...), got rank ${i.length} [${i}]`);
    return i;
  }

  forward(x: Tensor): Tensor {
    return local_response_norm(x, this.size, { alpha: this.alpha, beta: this.beta, k: this.k });
  }

  protected args() {
    return [this.size, { alpha: this.alpha, beta: this.beta, k: this.k }];
  }

  protected extraRepr() {
    return `${this.size}, alpha=${this.alpha}, beta=${this.beta}, k=${this.k}`;
  }
}
