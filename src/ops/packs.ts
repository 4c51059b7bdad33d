// Packed copies of weights kept across calls (the conv forward's packed W, the input gradient's
// flipped W, Winograd's transformed filters): with the weight's memory (Storage.packs), by
// layout, at the version of the values they were made from. An unchanged weight is packed once;
// any write through the API bumps the version (Tensor.markWritten), so the next call repacks;
// the pack is freed when it is replaced, or with the weight's memory.
import type { Tensor } from "../tensor.js";
import type { Engine } from "../engine/engine.js";

/** Runs `use` on the pack of `w` in `layout` (a string naming the layout and every shape it
 *  depends on), made by `build` (which returns a new buffer) unless a current one is kept.
 *  Without a tensor (a raw pointer's caller), builds one for this call only. */
export function withPack<T>(eng: Engine, w: Tensor | null, layout: string, build: () => number, use: (ptr: number) => T): T {
  if (!w) {
    const ptr = build();
    eng.weightPacks++;
    try {
      return use(ptr);
    } finally {
      eng.release(ptr);
    }
  }
  const st = w.storage, key = `${w.offset} ${layout}`;
  const kept = st.packs.get(key);
  if (kept && kept.version === st.version) return use(kept.ptr);
  if (kept) {
    st.packs.delete(key);
    eng.release(kept.ptr);
  }
  const ptr = build();
  eng.weightPacks++;
  st.packs.set(key, { version: st.version, ptr });
  return use(ptr);
}
