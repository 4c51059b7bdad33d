// Loading the kernels: two builds from one source, the relaxed-SIMD one where the runtime
// validates it, the baseline SIMD one elsewhere.
import { isNode, type Features } from "./features.js";
import { CTRL } from "./pool.js";

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
    p = loadBytes(fileUrl(build, shared)).then((b) => {
      const end = staticDataEnd(new Uint8Array(b as ArrayBuffer));
      if (end > CTRL) throw new Error(`simdnet: the kernels' static data ends at ${end}, past the pool's control block at ${CTRL}`);
      return WebAssembly.compile(b as BufferSource);
    });
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

/** End address of the module's active data segments (0 if none). Each instance copies them
 *  into the shared memory when it starts, so they must not overlap anything written at run time. */
export function staticDataEnd(bytes: Uint8Array): number {
  let at = 8, end = 0;
  const leb = () => {
    let v = 0, shift = 0, b;
    do {
      b = bytes[at++];
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return v;
  };
  while (at < bytes.length) {
    const id = bytes[at++];
    const len = leb();
    const next = at + len;
    if (id === 11) {
      const count = leb();
      for (let i = 0; i < count; i++) {
        const flags = leb();
        if (flags === 1) { // passive: not copied on instantiation
          at += leb();
          continue;
        }
        if (flags === 2) leb(); // memory index
        if (bytes[at++] !== 0x41) throw new Error("simdnet: unexpected data segment offset in the kernels");
        const offset = leb(); // i32.const (small positive offsets: unsigned LEB reads the same)
        at++; // end
        const size = leb();
        end = Math.max(end, offset + size);
        at += size;
      }
    }
    at = next;
  }
  return end;
}
