// Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_) and the L1 penalty's
// gradient. Norms are summed per fixed chunk and the chunks folded in order (same result on any
// thread count).
import { Tensor, empty, full } from "../tensor.js";
import { OptimError, show } from "./optimizer.js";
import { gpuClipGradNorm, gpuClampInplace, gpuL1Grad } from "../webgpu/clip.js";
import type { GpuEngine } from "../webgpu/engine.js";

function gradsOf(what: string, params: Tensor | Iterable<Tensor>): Tensor[] {
  const list = params instanceof Tensor ? [params] : [...params];
  list.forEach((p, i) => {
    if (!(p instanceof Tensor)) throw new OptimError(`${what}: parameter ${i} is not a Tensor (${typeof p})`);
  });
  return list.filter((p) => p.grad).map((p) => {
    p.grad!.assertUsable(what);
    return p.grad!;
  });
}

const KIND = new Map([[2, 0], [1, 1], [Infinity, 2]]);

/** The GPU engine the gradients live on, or null when they are on the CPU; mixed is an error. */
function gpuOf(what: string, tensors: Tensor[]): GpuEngine | null {
  const onGpu = tensors.filter((t) => t.device === "webgpu");
  if (!onGpu.length) return null;
  if (onGpu.length < tensors.length) throw new OptimError(`${what}: some gradients are on webgpu and some on the cpu; move the model to one device`);
  return onGpu[0].engine as any as GpuEngine;
}

function checkNorm(what: string, maxNorm: number, normType: number): number {
  if (typeof maxNorm !== "number" || !(maxNorm >= 0) || maxNorm === Infinity) throw new OptimError(`${what}: maxNorm must be a finite number >= 0, got ${show(maxNorm)}`);
  const kind = KIND.get(normType);
  if (kind === undefined) throw new OptimError(`${what}: normType must be 2, 1 or Infinity, got ${show(normType)}`);
  return kind;
}

/** Σx² (kind 0), Σ|x| (1) or max|x| (2) of one tensor, in f64. */
function reduce(t: Tensor, kind: number): number {
  const chunks = Math.ceil(t.size / 4096);
  if (chunks === 0) return 0;
  const eng = t.engine;
  const out = empty([2 * chunks], eng);
  try {
    eng.run("f32_norm_partials", [t.ptr, t.size, kind, out.ptr], t.size);
    const parts = new Float64Array(eng.memory.buffer, out.ptr, chunks);
    let r = 0;
    for (let i = 0; i < chunks; i++) r = kind === 2 ? (Number.isNaN(parts[i]) || parts[i] > r ? parts[i] : r) : r + parts[i];
    return r;
  } finally {
    out.dispose();
  }
}

/** Scales the gradients so that their joint norm is at most maxNorm, as
 *  torch.nn.utils.clip_grad_norm_ (coefficient maxNorm / (norm + 1e-6), capped at 1, in f32).
 *  normType: 2, 1 or Infinity. Returns the norm before clipping. */
export function clipGradNorm(params: Tensor | Iterable<Tensor>, maxNorm: number, normType = 2, errorIfNonfinite = false): number {
  const what = "clipGradNorm";
  const kind = checkNorm(what, maxNorm, normType);
  const grads = gradsOf(what, params);
  if (gpuOf(what, grads))
    throw new OptimError(`${what}: the gradients are on webgpu, where returning the norm as a number would make every step wait for the GPU; clipGradNormTensor(params, maxNorm, normType) clips the same way and returns the norm as a tensor on webgpu (await norm.read())`);
  return cpuClip(what, grads, maxNorm, kind, normType, errorIfNonfinite);
}

function cpuClip(what: string, grads: Tensor[], maxNorm: number, kind: number, normType: number, errorIfNonfinite: boolean): number {
  if (!grads.length) return 0;
  let total = 0;
  for (const g of grads) {
    const r = reduce(g, kind);
    total = kind === 2 ? (Number.isNaN(r) || r > total ? r : total) : total + r;
  }
  if (kind === 0) total = Math.sqrt(total);
  const total32 = Math.fround(total);
  if (errorIfNonfinite && !Number.isFinite(total32))
    throw new OptimError(`${what}: the total norm of order ${normType} of the gradients is ${total32}; pass errorIfNonfinite = false to clip anyway`);
  const coef = Math.fround(Math.fround(maxNorm) / Math.fround(total32 + Math.fround(1e-6)));
  // torch multiplies even when the coefficient is clamped to 1 (a no-op) or NaN (which spreads)
  if (!(coef >= 1))
    for (const g of grads) {
      g.markWritten();
      g.engine.run("f32_scale_inplace", [g.ptr, g.size, coef], g.size);
    }
  return total32;
}

/** clipGradNorm for gradients on any device, returning the norm before clipping as a 0-d tensor
 *  on the gradients' device, as torch does: on webgpu the clipping is queued on the GPU and
 *  nothing is read back (await norm.read() for the value). Without gradients: a 0-d zero on the
 *  cpu. The caller owns the tensor (dispose it, or let tidy()). */
export function clipGradNormTensor(params: Tensor | Iterable<Tensor>, maxNorm: number, normType = 2): Tensor {
  const what = "clipGradNormTensor";
  const kind = checkNorm(what, maxNorm, normType);
  const grads = gradsOf(what, params);
  const gpu = gpuOf(what, grads);
  if (gpu) {
    for (const g of grads) g.markWritten();
    return gpuClipGradNorm(gpu, grads, maxNorm, kind);
  }
  return full([], cpuClip(what, grads, maxNorm, kind, normType, false), grads[0]?.engine);
}

/** Clamps every gradient element to [-clipValue, clipValue] (torch.nn.utils.clip_grad_value_). */
export function clipGradValue(params: Tensor | Iterable<Tensor>, clipValue: number): void {
  const what = "clipGradValue";
  if (typeof clipValue !== "number" || !(clipValue >= 0)) throw new OptimError(`${what}: clipValue must be a number >= 0, got ${show(clipValue)}`);
  const grads = gradsOf(what, params);
  const gpu = gpuOf(what, grads);
  for (const g of grads) {
    g.markWritten();
    if (gpu) gpuClampInplace(gpu, g, -clipValue, clipValue);
    else g.engine.run("f32_clamp_inplace", [g.ptr, g.size, -clipValue, clipValue], g.size);
  }
}

/** L1 regularisation: adds l1·sign(w) to each parameter's gradient (the gradient of l1·Σ|w|, with
 *  sign(0) = 0 as autograd gives it). Call after backward(), before step(). */
export function addL1Grad(params: Tensor | Iterable<Tensor>, l1: number): void {
  const what = "addL1Grad";
  if (typeof l1 !== "number" || !Number.isFinite(l1) || l1 < 0) throw new OptimError(`${what}: l1 must be a finite number >= 0, got ${show(l1)}`);
  const list = params instanceof Tensor ? [params] : [...params];
  const gpu = gpuOf(what, gradsOf(what, list));
  for (const p of list) {
    if (!p.grad) continue;
    if (p.grad.size !== p.size) throw new OptimError(`${what}: gradient of ${p.grad.size} values for a parameter of ${p.size}`);
    if (p.device !== p.grad.device) throw new OptimError(`${what}: a parameter on ${p.device} has its gradient on ${p.grad.device}`);
    p.grad.markWritten();
    if (gpu) gpuL1Grad(gpu, p, p.grad, l1);
    else p.engine.run("f32_l1_grad", [p.ptr, p.grad.ptr, p.size, l1], p.size);
  }
}
