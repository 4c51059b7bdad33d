// Feature detection: never assume, always ask the runtime (as TF.js does with validate()).

import { isNode, nodeOs, nodeV8 } from "../platform/index.js";

/** A module with one f32x4 instruction: validates only where SIMD is on. */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);
/** A module with f32x4.relaxed_madd (0xfd 0x85 0x02). */
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 19, 1, 17, 0, 65, 1, 253, 17, 65, 1, 253, 17, 65, 1,
  253, 17, 253, 133, 2, 11,
]);

let relaxedFlagTried = false;

/** In Node 20 relaxed SIMD is behind a V8 flag that can be turned on before compiling. */
async function enableRelaxedInNode(): Promise<void> {
  if (relaxedFlagTried || !isNode) return;
  relaxedFlagTried = true;
  try {
    const v8 = await nodeV8();
    v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
  } catch {
    /* not Node, or flags locked: the baseline SIMD build is used */
  }
}

export interface Features {
  simd: boolean;
  relaxedSimd: boolean;
  sharedMemory: boolean;
  /** whether the runtime has SharedArrayBuffer at all (WebKitGTK has none, even on an isolated page) */
  sharedArrayBuffer: boolean;
  crossOriginIsolated: boolean;
  canBlock: boolean; // may this thread block in Atomics.wait (false on a browser main thread)
  cores: number;
  env: "node" | "browser-main" | "browser-worker";
}

export async function detectFeatures(): Promise<Features> {
  await enableRelaxedInNode();
  const g = globalThis as any;
  const simd = WebAssembly.validate(SIMD_PROBE);
  const relaxedSimd = simd && WebAssembly.validate(RELAXED_PROBE);
  const sharedArrayBuffer = typeof SharedArrayBuffer !== "undefined";
  let sharedMemory = sharedArrayBuffer;
  if (sharedMemory) {
    try {
      new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true } as any);
    } catch {
      sharedMemory = false;
    }
  }
  const env = isNode ? "node" : typeof g.WorkerGlobalScope !== "undefined" && g instanceof g.WorkerGlobalScope ? "browser-worker" : "browser-main";
  let cores = 1;
  if (isNode) {
    const os = await nodeOs();
    cores = (os as any).availableParallelism ? (os as any).availableParallelism() : os.cpus().length;
  } else if (g.navigator?.hardwareConcurrency) cores = g.navigator.hardwareConcurrency;
  return {
    simd,
    relaxedSimd,
    sharedMemory: sharedMemory && (isNode || !!g.crossOriginIsolated),
    sharedArrayBuffer,
    crossOriginIsolated: isNode ? true : !!g.crossOriginIsolated,
    canBlock: env !== "browser-main",
    cores,
    env,
  };
}
