// The arena hands out 64-byte aligned buffers in the shared wasm memory. Freed buffers go to a
// free list per size class and are reused, so a training step that runs twice with the same
// shapes allocates nothing new the second time. The memory grows in pages when needed; asking
// for more than wasm32 can address is a clear error and leaves the arena usable.

export const PAGE = 65536;
export const MAX_PAGES = 65536; // 4 GiB: the wasm32 limit
/** Low memory is reserved for the worker pool's control block (see pool.ts). */
export const ARENA_BASE = 65536;
const ALIGN = 64;
/** Guard bytes written after each buffer when sentinels are on, checked on free and on demand. */
const GUARD = 64;
const SENTINEL = 0xa5;

export class OutOfMemoryError extends Error {}

function sizeClass(bytes: number): number {
  // Round up to 64 bytes below 4 KiB, else to a quarter power of two: bounded waste, few classes.
  if (bytes <= 4096) return Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  const p = 2 ** Math.floor(Math.log2(bytes));
  const q = p / 4;
  return Math.ceil(bytes / q) * q;
}

export class Arena {
  private top = ARENA_BASE;
  private free = new Map<number, number[]>();
  private sizes = new Map<number, number>(); // live ptr -> class size
  /** bytes handed out and not freed */
  liveBytes = 0;
  peakTop = ARENA_BASE;

  constructor(private memory: WebAssembly.Memory, public sentinels = false) {}

  get bytesReserved(): number {
    return this.top;
  }

  alloc(bytes: number, what = "buffer"): number {
    if (!(bytes >= 0) || !Number.isFinite(bytes)) throw new RangeError(`simdnet: cannot allocate ${bytes} bytes for ${what}`);
    const cls = sizeClass(Math.max(bytes, 4));
    let ptr: number | undefined;
    const list = this.free.get(cls);
    if (list && list.length) ptr = list.pop()!;
    else {
      const need = this.top + cls + (this.sentinels ? GUARD : 0);
      if (need > MAX_PAGES * PAGE)
        throw new OutOfMemoryError(
          `simdnet: out of memory: ${what} needs ${fmt(bytes)} but the wasm32 limit is 4 GiB ` +
            `(${fmt(this.liveBytes)} in use, ${fmt(this.top)} reserved)`,
        );
      this.ensure(need);
      ptr = this.top;
      this.top = need;
      this.peakTop = Math.max(this.peakTop, this.top);
    }
    this.sizes.set(ptr, cls);
    this.liveBytes += cls;
    if (this.sentinels) new Uint8Array(this.memory.buffer, ptr + cls, GUARD).fill(SENTINEL);
    return ptr;
  }

  release(ptr: number): void {
    const cls = this.sizes.get(ptr);
    if (cls === undefined) return; // already released (dispose twice is harmless)
    if (this.sentinels) this.checkOne(ptr, cls);
    this.sizes.delete(ptr);
    this.liveBytes -= cls;
    let list = this.free.get(cls);
    if (!list) this.free.set(cls, (list = []));
    list.push(ptr);
  }

  /** Throws if a kernel wrote past the end of any live buffer. */
  checkSentinels(): void {
    if (!this.sentinels) return;
    for (const [ptr, cls] of this.sizes) this.checkOne(ptr, cls);
  }

  private checkOne(ptr: number, cls: number) {
    const g = new Uint8Array(this.memory.buffer, ptr + cls, GUARD);
    for (let i = 0; i < GUARD; i++)
      if (g[i] !== SENTINEL) throw new Error(`simdnet: out-of-bounds write detected after buffer at ${ptr} (${cls} bytes)`);
  }

  private ensure(bytes: number) {
    const have = this.memory.buffer.byteLength;
    if (bytes <= have) return;
    // grow by at least 1/4 of the current size to keep the number of grows small
    const needPages = Math.ceil((bytes - have) / PAGE);
    const want = Math.min(MAX_PAGES - have / PAGE, Math.max(needPages, Math.ceil(have / PAGE / 4)));
    try {
      this.memory.grow(want);
    } catch {
      try {
        this.memory.grow(needPages);
      } catch (e) {
        throw new OutOfMemoryError(`simdnet: out of memory: could not grow wasm memory to ${fmt(bytes)} (${(e as Error).message})`);
      }
    }
  }
}

export function fmt(bytes: number): string {
  if (bytes >= 2 ** 30) return (bytes / 2 ** 30).toFixed(2) + " GiB";
  if (bytes >= 2 ** 20) return (bytes / 2 ** 20).toFixed(1) + " MiB";
  if (bytes >= 1024) return (bytes / 1024).toFixed(1) + " KiB";
  return bytes + " B";
}
