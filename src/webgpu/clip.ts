// Gradient clipping and the L1 penalty for parameters on webgpu (wgsl/clip.wgsl): the GPU side
// of src/optim/clip.ts, queued without reading anything back, so a training step never waits.
import code from "../../wgsl/clip.wgsl";
import { Tensor, empty } from "../tensor.js";
import { wgslFile, f32bits, type GpuEngine } from "./engine.js";

const K = wgslFile("clip.wgsl", code, ["norm_partials", "norm_total", "scale_by", "clamp_inplace", "l1_grad"] as const);
const CHUNK = 4096;
const el = (t: Tensor) => t.ptr >>> 2;
const groups = (n: number) => Math.ceil(n / 256);

/** Queues the clipping of `grads` (all on one GPU engine) to a joint norm of at most maxNorm;
 *  returns the norm before clipping as a 0-d tensor on the GPU (the caller owns it). kind: 0 for
 *  the 2-norm, 1 for the 1-norm, 2 for the max-norm. */
export function gpuClipGradNorm(gpu: GpuEngine, grads: Tensor[], maxNorm: number, kind: number): Tensor {
  const chunks = grads.map((g) => Math.ceil(g.size / CHUNK));
  const total = chunks.reduce((a, b) => a + b, 0);
  const out = empty([], gpu as any);
  // the chunks' partial norms, then the coefficient (freed once queued: the queue runs in order)
  const partials = empty([total + 1], gpu as any);
  try {
    let at = el(partials);
    grads.forEach((g, i) => {
      if (chunks[i]) gpu.dispatch(K.norm_partials, [el(g), g.size, kind, at], chunks[i]);
      at += chunks[i];
    });
    const coef = el(partials) + total;
    gpu.dispatch(K.norm_total, [el(partials), total, kind, f32bits(Math.fround(maxNorm)), el(out), coef], 1);
    for (const g of grads) gpu.dispatch(K.scale_by, [el(g), g.size, coef], groups(g.size));
  } finally {
    partials.dispose();
  }
  return out;
}

export function gpuClampInplace(gpu: GpuEngine, t: Tensor, lo: number, hi: number): void {
  gpu.dispatch(K.clamp_inplace, [el(t), t.size, f32bits(lo), f32bits(hi)], groups(t.size));
}

export function gpuL1Grad(gpu: GpuEngine, w: Tensor, g: Tensor, l1: number): void {
  gpu.dispatch(K.l1_grad, [el(w), el(g), w.size, f32bits(l1)], groups(w.size));
}
