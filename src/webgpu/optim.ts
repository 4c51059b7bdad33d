// The optimisers' updates on the GPU (wgsl/optim.wgsl): the same arguments as the wasm kernels
// of assembly/optim.ts, pointers as element offsets and floats as bit patterns. src/optim/*.ts
// calls these for parameters that live on webgpu.
import code from "../../wgsl/optim.wgsl";
import type { Tensor } from "../tensor.js";
import { wgslFile, f32bits, type GpuEngine } from "./engine.js";

const K = wgslFile("optim.wgsl", code, ["sgd", "rmsprop", "adam"] as const);
const e = (t: Tensor | undefined | null) => (t ? t.ptr >>> 2 : 0);
const f = f32bits;

/** The update of a parameter on the GPU; args as the wasm kernel f32_<kind>_step (p, g, buffers
 *  as tensors or null, then n and the numbers). */
export function gpuOptimStep(kind: "sgd" | "rmsprop" | "adam", p: Tensor, g: Tensor, bufs: (Tensor | null | undefined)[], nums: number[], ints: number[]): void {
  const eng = p.engine as any as GpuEngine;
  const args = [e(p), e(g), ...bufs.map(e), p.size, ...nums.map(f), ...ints];
  eng.dispatch(K[kind], args, Math.ceil(p.size / 256));
}
