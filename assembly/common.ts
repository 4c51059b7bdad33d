// Shared helpers for every kernel. Kernels take pointers and ints, allocate nothing and keep no
// mutable globals: several instances (one per worker) run on one shared memory.
//
// Naming: f32_<op>[_fwd|_bwd_<wrt>] (see docs/kernels.md). Every kernel ends with (ith, nth):
// it handles its share of a list of work items whose boundaries do not depend on nth, so each
// output element is computed by the same code in the same order whatever the thread count.
// The share is either a fixed range (rangeStart/rangeEnd) or, for the hot kernels, whatever
// items it takes from a shared counter (take): same items, same per-item code, so the same
// bits, and the threads that run at once share the load evenly.

/** a*b + c. Relaxed build: one fused (or not, per CPU) madd; baseline build: mul then add. */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return f32x4.relaxed_madd(a, b, c);
  } else {
    return f32x4.add(f32x4.mul(a, b), c);
  }
}

/** Scalar a*b + c rounded like one lane of madd() on the baseline build. */
// @ts-ignore: decorator
@inline export function smadd(a: f32, b: f32, c: f32): f32 {
  return a * b + c;
}

/** First work item of thread ith when `count` items are split into nth contiguous ranges. */
// @ts-ignore: decorator
@inline export function rangeStart(count: i32, ith: i32, nth: i32): i32 {
  const per = (count + nth - 1) / nth;
  const s = per * ith;
  return s < count ? s : count;
}

// @ts-ignore: decorator
@inline export function rangeEnd(count: i32, ith: i32, nth: i32): i32 {
  const per = (count + nth - 1) / nth;
  const e = per * (ith + 1);
  return e < count ? e : count;
}

/** Elementwise kernels split their range in chunks of CHUNK floats, so where the SIMD body
 *  ends and the scalar tail begins never depends on the thread count. */
export const CHUNK: i32 = 4096;

// @ts-ignore: decorator
@inline export function chunkStart(count: i32, ith: i32, nth: i32): i32 {
  const chunks = (count + CHUNK - 1) / CHUNK;
  const s = rangeStart(chunks, ith, nth) * CHUNK;
  return s < count ? s : count;
}

// @ts-ignore: decorator
@inline export function chunkEnd(count: i32, ith: i32, nth: i32): i32 {
  const chunks = (count + CHUNK - 1) / CHUNK;
  const e = rangeEnd(chunks, ith, nth) * CHUNK;
  return e < count ? e : count;
}

/** The item counter of take(): a word of the worker pool's control block (src/engine/pool.ts,
 *  WORK_COUNTER), set to 0 before every job. */
// @ts-ignore: decorator
@inline const WORK_COUNTER: usize = 57344 + 32;

/** The next item for this share, after `prev` (start with -1): on several threads, the next
 *  unclaimed item of the job from the shared counter; alone, simply prev + 1. Items are taken
 *  until the result reaches the item count; one such loop per kernel (docs/kernels.md). */
// @ts-ignore: decorator
@inline export function take(prev: i32, nth: i32): i32 {
  if (ASC_FEATURE_THREADS) {
    if (nth > 1) return atomic.add<i32>(WORK_COUNTER, 1);
  }
  return prev + 1;
}
