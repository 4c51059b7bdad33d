// Packed copies of weights kept across calls (the conv forward's packed W, the input gradient's
// flipped W, Winograd's transformed filters): with the weight's memory (Storage.packs), by
// layout, at the version of the values they were made from. An unchanged weight is packed once;
// any write through the API bumps the version (Tensor.markWritten), so the next call repacks;
// the pack is freed when it is replaced, or with the weight's memory.
import type { Tensor } from "../tensor.js";
import type { Engine } from "../engine/engine.js";
import { isTraining } from "../autograd.js";

/** Runs `use` on the pack of `w` in `layout` (a string naming the layout and every shape it
 *  depends on), made by `build` (which returns a new buffer) unless a current one is kept.
 *  A new pack is kept for the next calls unless the weight is being trained (it requires a
 *  gradient, and a forward is recorded or a backward runs): the step will change it, so keeping
 *  it would only hold memory across the step (and change a training loop's memory layout from
 *  step to step). Without a tensor (a raw pointer's caller), a pack for this call only. */
export function withPack<T>(eng: Engine, w: Tensor | null, layout: string, build: () => number, use: (ptr: number) => T): T {
  if (w) {
    const st = w.storage, key = `${w.offset} ${layout}`;
    const kept = st.packs.get(key);
    if (kept && kept.version === st.version) return use(kept.ptr);
    if (kept) {
      st.packs.delete(key);
      eng.release(kept.ptr);
    }
    if (!(w.requiresGrad && isTraining())) {
      const ptr = build();
      eng.weightPacks++;
      st.packs.set(key, { version: st.version, ptr });
      return use(ptr);
    }
  }
  const ptr = build();
  eng.weightPacks++;
  try {
    return use(ptr);
  } finally {
    eng.release(ptr);
  }
}
