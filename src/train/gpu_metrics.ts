// fit()/evaluate() on webgpu: the loss and top-1/top-5 hits of every step are added up on the
// GPU (wgsl/metrics.wgsl) and read back once per logging interval, so a training step does no
// readback.
import code from "../../wgsl/metrics.wgsl";
import { Tensor, zeros, keep } from "../tensor.js";
import { wgslFile, type GpuEngine } from "../webgpu/engine.js";

const K = wgslFile("metrics.wgsl", code, ["step_metrics"] as const);

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
    const v = await this.acc.read();
    return { loss: v[0], n: v[1], top1: v[2], top5: v[3], nonFinite: v[4] };
  }

  dispose(): void {
    this.acc.dispose();
  }
}
