// The arena hands out 64-byte aligned buffers in the shared wasm memory. Freed buffers go to a
// free list per size class and are reused, so a training step that runs twice with the same
// shapes allocates nothing new the second time. The memory grows in pages when needed. When it
// can grow no further (the wasm32 limit, the engine's maxMemory, or a runtime that refuses), the
// free buffers of every size are merged with their free neighbours and split to fit the request,
// so memory freed in one size serves any other. Asking for more than can be had is a clear error
// (naming what is really available) and leaves the arena usable.

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

/** The largest size class <= bytes (0 when bytes < 64). */
function classBelow(bytes: number): number {
  if (bytes < ALIGN) return 0;
  if (bytes <= 4096) return Math.floor(bytes / ALIGN) * ALIGN;
  const p = 2 ** Math.floor(Math.log2(bytes));
  const q = p / 4;
  return Math.floor(bytes / q) * q;
}

export class Arena {
  private top = ARENA_BASE;
  /** free buffers by size class (each spans at least its class and the guard) */
  private free = new Map<number, number[]>();
  private sizes = new Map<number, number>(); // live ptr -> class size
  /** bytes each buffer spans in memory, live or free (its class, the guard, any rounding) */
  private span = new Map<number, number>();
  /** free pieces too small for any buffer (left over from splitting), merged back later */
  private scraps: number[] = [];
  /** the most bytes the memory may grow to: maxBytes, lowered below the size the runtime refused
   *  to grow to when it did (what the engine can really grow to, as far as is known) */
  private ceiling: number;
  /** the total size a grow was refused at (0: none was) */
  private refusedAt = 0;
  /** bytes handed out and not freed */
  liveBytes = 0;
  peakTop = ARENA_BASE;

  /** maxBytes: the most the wasm memory may grow to (default the wasm32 limit, 4 GiB). */
  constructor(private memory: WebAssembly.Memory, public sentinels = false, readonly maxBytes = MAX_PAGES * PAGE) {
    this.ceiling = maxBytes;
  }

  get bytesReserved(): number {
    return this.top;
  }

  /** The most bytes the memory can grow to, as far as is known (lower than maxBytes once the
   *  runtime has refused a grow). */
  get limit(): number {
    return this.ceiling;
  }

  alloc(bytes: number, what = "buffer"): number {
    if (!(bytes >= 0) || !Number.isFinite(bytes)) throw new RangeError(`simdnet: cannot allocate ${bytes} bytes for ${what}`);
    const cls = sizeClass(Math.max(bytes, 4));
    const guard = this.sentinels ? GUARD : 0;
    let ptr: number | undefined;
    const list = this.free.get(cls);
    if (list && list.length) ptr = list.pop()!;
    else if (!this.bump(cls + guard)) ptr = this.reclaim(cls + guard, bytes, what);
    else {
      ptr = this.top;
      this.top += cls + guard;
      this.span.set(ptr, cls + guard);
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

  /** Makes room for `span` more bytes at the top; false if the memory cannot grow that far. */
  private bump(span: number): boolean {
    const need = this.top + span;
    if (need > this.ceiling) return false;
    const have = this.memory.buffer.byteLength;
    if (need <= have) return true;
    // grow by at least 1/4 of the current size to keep the number of grows small
    const needPages = Math.ceil((need - have) / PAGE);
    const want = Math.min(Math.floor(this.ceiling / PAGE) - have / PAGE, Math.max(needPages, Math.ceil(have / PAGE / 4)));
    if (want > needPages)
      try {
        this.memory.grow(want);
        return true;
      } catch {}
    try {
      this.memory.grow(needPages);
      return true;
    } catch {
      // the runtime would not give that much (a browser may stop well below 4 GiB): the ceiling
      // is below it from now on
      this.refusedAt = have + needPages * PAGE;
      this.ceiling = Math.min(this.ceiling, this.refusedAt - PAGE);
      return false;
    }
  }

  /** The slow path, taken when no free buffer of the class is left and the memory cannot grow:
   *  the smallest larger free buffer is split; failing that, every free buffer is merged with its
   *  free neighbours (those that end at the top give their room back to it) and the request is
   *  cut from the smallest merged block that holds it. */
  private reclaim(span: number, bytes: number, what: string): number {
    if (span <= this.ceiling - ARENA_BASE) {
      let bestList: number[] | null = null, bestAt = -1, bestSpan = Infinity;
      for (const list of this.free.values())
        for (let i = 0; i < list.length; i++) {
          const s = this.span.get(list[i])!;
          if (s >= span && s < bestSpan) (bestList = list), (bestAt = i), (bestSpan = s);
        }
      if (bestList) {
        const p = bestList[bestAt];
        bestList.splice(bestAt, 1);
        return this.carve(p, bestSpan, span);
      }
      const top = this.top;
      const merged = this.merge();
      if (this.top < top && this.bump(span)) {
        const ptr = this.top;
        this.top += span;
        this.span.set(ptr, span);
        this.peakTop = Math.max(this.peakTop, this.top);
        for (const [p, s] of merged) this.putFree(p, s);
        return ptr;
      }
      let i = -1;
      for (let k = 0; k < merged.length; k++) if (merged[k][1] >= span && (i < 0 || merged[k][1] < merged[i][1])) i = k;
      const chosen = i >= 0 ? merged.splice(i, 1)[0] : null;
      for (const [p, s] of merged) this.putFree(p, s);
      if (chosen) return this.carve(chosen[0], chosen[1], span);
    }
    // the largest buffer merging could give: free neighbours together, the run that ends at the
    // top together with the room above it
    const blocks: [number, number][] = [];
    for (const list of this.free.values()) for (const p of list) blocks.push([p, this.span.get(p)!]);
    for (const p of this.scraps) blocks.push([p, this.span.get(p)!]);
    blocks.sort((a, b) => a[0] - b[0]);
    const room = Math.max(0, this.ceiling - this.top);
    let largest = 0, run = 0, end = -1;
    for (const [p, s] of blocks) {
      run = p === end ? run + s : s;
      end = p + s;
      largest = Math.max(largest, end === this.top ? run + room : run);
    }
    largest = Math.max(largest, room);
    const guard = this.sentinels ? GUARD : 0;
    const can = Math.max(0, largest - guard);
    const why = this.refusedAt
      ? `the runtime refused to grow the wasm memory to ${fmt(this.refusedAt)}`
      : this.maxBytes < MAX_PAGES * PAGE
        ? `the engine's memory is limited to ${fmt(this.ceiling)} (init's maxMemory)`
        : "the wasm32 limit is 4 GiB";
    throw new OutOfMemoryError(
      `simdnet: out of memory: ${what} needs ${fmt(bytes)}${span - guard > bytes * 1.005 ? ` (a block of ${fmt(span - guard)})` : ""} but at most ${fmt(can, Math.floor)} can be allocated: ${why} ` +
        `(${fmt(this.liveBytes)} in use, ${fmt(this.freeBytes())} free, ${fmt(room)} not yet reserved)`,
    );
  }

  /** A buffer of `span` bytes from the start of the free block [p, p + s); the rest stays free. */
  private carve(p: number, s: number, span: number): number {
    this.span.set(p, span);
    if (s > span) this.putFree(p + span, s - span);
    return p;
  }

  /** Takes every free buffer off the lists and merges neighbours; a block that ends at the top
   *  lowers the top instead. Returns the merged blocks (not on any list). */
  private merge(): [number, number][] {
    const blocks: [number, number][] = [];
    for (const list of this.free.values()) for (const p of list) blocks.push([p, this.span.get(p)!]);
    for (const p of this.scraps) blocks.push([p, this.span.get(p)!]);
    this.free.clear();
    this.scraps = [];
    blocks.sort((a, b) => a[0] - b[0]);
    const merged: [number, number][] = [];
    for (const [p, s] of blocks) {
      this.span.delete(p);
      const last = merged[merged.length - 1];
      if (last && last[0] + last[1] === p) last[1] += s;
      else merged.push([p, s]);
    }
    const last = merged[merged.length - 1];
    if (last && last[0] + last[1] === this.top) {
      this.top = last[0];
      merged.pop();
    }
    return merged;
  }

  /** A merged free block back on the free lists, as one buffer of the largest class it holds. */
  private putFree(p: number, s: number) {
    this.span.set(p, s);
    const cls = classBelow(s - (this.sentinels ? GUARD : 0));
    if (!cls) {
      this.scraps.push(p);
      return;
    }
    let list = this.free.get(cls);
    if (!list) this.free.set(cls, (list = []));
    list.push(p);
  }

  private freeBytes(): number {
    let n = 0;
    for (const list of this.free.values()) for (const p of list) n += this.span.get(p)!;
    for (const p of this.scraps) n += this.span.get(p)!;
    return n;
  }
}

/** Bytes for messages ("3.35 GiB"); round: Math.floor for an amount not to overstate. */
export function fmt(bytes: number, round?: (x: number) => number): string {
  const r = (x: number, digits: number) => (round ? round(x * 10 ** digits) / 10 ** digits : x).toFixed(digits);
  if (bytes >= 2 ** 30) return r(bytes / 2 ** 30, 2) + " GiB";
  if (bytes >= 2 ** 20) return r(bytes / 2 ** 20, 1) + " MiB";
  if (bytes >= 1024) return r(bytes / 1024, 1) + " KiB";
  return bytes + " B";
}
