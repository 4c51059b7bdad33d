// Small lookup tables for kernels (window bounds, interpolation indices and weights): written
// into an arena buffer for one kernel call and released right after.
import type { Engine } from "../engine/engine.js";

/** Runs fn with a pointer to a copy of `words` (32-bit ints or floats, in order) in wasm memory. */
export function withTable(eng: Engine, words: (Int32Array | Float32Array)[], fn: (ptr: number) => void): void {
  const count = words.reduce((n, w) => n + w.length, 0);
  const ptr = eng.alloc(count * 4, "kernel table");
  try {
    // the view is made after alloc: alloc may grow (and so detach) the memory's buffer
    const bytes = new Uint8Array(eng.memory.buffer, ptr, count * 4);
    let at = 0;
    for (const w of words) {
      bytes.set(new Uint8Array(w.buffer, w.byteOffset, w.byteLength), at);
      at += w.byteLength;
    }
    fn(ptr);
  } finally {
    eng.release(ptr);
  }
}
