// fit()/evaluate() on webgpu: the loss and top-1/top-5 hits of every step are added up on the
// GPU (wgsl/metrics.wgsl) and read back once per logging interval, so a training step does no
// readback.
import code from "../../wgsl/metrics.wgsl";
import { Tensor, zeros, keep, empty } from "../tensor.js";
import { f32bits } from "../webgpu/engine.js";
import type { PixelCounts } from "./metrics.js";
import { wgslFile, type GpuEngine } from "../webgpu/engine.js";

const K = wgslFile("metrics.wgsl", code, ["step_metrics", "pixel_ranks", "pixel_counts"] as const);

export interface GpuSums {
  /** Σ loss·n over finite losses, n, top-1 hits, top-5 hits, steps with a non-finite loss */
  loss: number;
  n: number;
  top1: number;
  top5: number;
  nonFinite: number;
}

export class GpuMetrics {
  private acc: Tensor;
  constructor(private gpu: GpuEngine) {
    this.acc = keep(zeros([8], gpu as any));
  }

  /** Adds one step: scores [n, k], labels [n] (class indices as floats), loss a scalar (the
   *  batch mean). */
  add(scores: Tensor, labels: Tensor, loss: Tensor): void {
    const n = scores.shape[0], k = scores.size / Math.max(1, n);
    this.gpu.dispatch(K.step_metrics, [scores.ptr >>> 2, labels.ptr >>> 2, n, k, loss.ptr >>> 2, this.acc.ptr >>> 2, n], 1);
  }

  /** Adds a step's loss alone, weighted by n images. */
  addLoss(loss: Tensor, n: number): void {
    this.gpu.dispatch(K.step_metrics, [0, 0, 0, 0, loss.ptr >>> 2, this.acc.ptr >>> 2, n], 1);
  }

  /** The sums so far (one read). */
  async read(): Promise<GpuSums> {
    // the name is for the error of a kernel's check that this read finds (a custom loss given
    // bad targets: fit and evaluate check the labels only for their default loss)
    const v = await this.gpu.read(this.acc.ptr, this.acc.size, "the loss and metrics summed on the GPU by fit/evaluateAsync");
    return { loss: v[0], n: v[1], top1: v[2], top5: v[3], nonFinite: v[4] };
  }

  dispose(): void {
    this.acc.dispose();
  }
}

/** Per-pixel top-1/top-5 hits and the per-class counts behind IoU (train/metrics.ts pixelCounts'
 *  rules), added up on the GPU over the steps and read once. */
export class GpuPixelMetrics {
  private acc: Tensor;
  constructor(private gpu: GpuEngine, private k: number) {
    this.acc = keep(zeros([2 * (3 + 3 * k)], gpu as any));
  }

  /** scores [n, k, H, W], labels [n, H, W] (classes as floats; the caller has checked them) */
  add(scores: Tensor, labels: Tensor, ignoreIndex: number): void {
    const [n, k] = scores.shape, P = scores.size / Math.max(1, n * k);
    if (k !== this.k) throw new Error(`metrics: score maps of ${k} classes after ${this.k}`);
    if (n * P >= 2 ** 24) throw new Error(`metrics: ${n * P} pixels in one batch; per-pixel metrics on webgpu count up to 2^24 per batch`);
    const scratch = empty([3 * n * P], this.gpu as any);
    try {
      this.gpu.dispatch(K.pixel_ranks, [scores.ptr >>> 2, labels.ptr >>> 2, n, k, P, f32bits(ignoreIndex), scratch.ptr >>> 2], Math.ceil((n * P) / 256));
      this.gpu.dispatch(K.pixel_counts, [scratch.ptr >>> 2, n * P, k, this.acc.ptr >>> 2], 3 + 3 * k);
    } finally {
      scratch.dispose(); // the queue runs in order: freed once its last use is queued
    }
  }

  async read(): Promise<PixelCounts> {
    const v = await this.gpu.read(this.acc.ptr, this.acc.size, "the per-pixel counts summed on the GPU by fit/evaluateAsync");
    const at = (c: number) => v[2 * c] * 1048576 + v[2 * c + 1];
    const k = this.k;
    return {
      count: at(0),
      top1: at(1),
      top5: at(2),
      pred: Float64Array.from({ length: k }, (_, j) => at(3 + j)),
      truth: Float64Array.from({ length: k }, (_, j) => at(3 + k + j)),
      tp: Float64Array.from({ length: k }, (_, j) => at(3 + 2 * k + j)),
    };
  }

  dispose(): void {
    this.acc.dispose();
  }
}
