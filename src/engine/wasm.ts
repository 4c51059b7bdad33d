// Loading the kernels: two builds from one source, the relaxed-SIMD one where the runtime
// validates it, the baseline SIMD one elsewhere.
import { isNode, type Features } from "./features.js";

export type Build = "relaxed" | "simd";

const cache = new Map<string, Promise<WebAssembly.Module>>();

/** Where the .wasm files live. Set by the bundle (next to it) or pointed elsewhere by the user. */
let wasmBase: string | URL | null = null;
export function setWasmPath(base: string | URL): void {
  wasmBase = base;
  cache.clear();
}

declare const __SIMDNET_WASM_DIR__: string | undefined;

function fileUrl(build: Build, shared: boolean): URL {
  // The .single builds import a plain (unshared) memory: pages without cross-origin isolation.
  const name = `simdnet.${build}${shared ? "" : ".single"}.wasm`;
  if (wasmBase) return new URL(name, wasmBase);
  // The bundle defines __SIMDNET_WASM_DIR__ as "./" (the .wasm sit next to it); from the
  // sources they are in build/.
  const dir = typeof __SIMDNET_WASM_DIR__ !== "undefined" ? __SIMDNET_WASM_DIR__ : "../../build/";
  return new URL(dir + name, import.meta.url);
}

async function loadBytes(url: URL): Promise<ArrayBuffer | Uint8Array> {
  if (isNode && url.protocol === "file:") {
    const fs = await import("node:fs/promises");
    return fs.readFile(url);
  }
  const r = await fetch(url);
  if (!r.ok) throw new Error(`simdnet: could not load ${url}: HTTP ${r.status}`);
  return r.arrayBuffer();
}

export function pickBuild(f: Features): Build {
  if (!f.simd) throw new Error("simdnet: this runtime has no WebAssembly SIMD (Node >= 20 or a current browser is needed)");
  return f.relaxedSimd ? "relaxed" : "simd";
}

export function compileBuild(build: Build, shared: boolean): Promise<WebAssembly.Module> {
  const key = build + shared;
  let p = cache.get(key);
  if (!p) {
    p = loadBytes(fileUrl(build, shared)).then((b) => WebAssembly.compile(b as BufferSource));
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}
