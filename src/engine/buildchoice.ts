// Which kernel build init() runs when it is not told (init({ build }) forces one). Where the
// runtime validates relaxed SIMD both builds run, and the faster one is not the same everywhere:
// a probe found Firefox running the relaxed build's LeNet step ~1.8x slower than Chromium while
// its SIMD build was on par. So it is measured: both builds run the same known-answer GEMM (the
// kernel that carries the relaxed multiply-adds) on one thread, in alternating batches for a few
// ms, and the best batch of each counts. Relaxed stays unless SIMD is clearly faster (MARGIN):
// close timings keep the same build from run to run. The answer is checked too (small integers:
// exact with or without fused multiply-adds), so a build that computes wrong is never picked.
// Results are deterministic per build; info.build and info.buildReason say which and why.
import type { Features } from "./features.js";
import { compileBuild, type Build } from "./wasm.js";

/** SIMD must be this much faster (best batch) to be picked over relaxed. (The thread count
 *  timing, src/engine/threadchoice.ts, asks the same of each doubling of the threads.) */
export const MARGIN = 1.25;
/** Timed work: at least MIN_MS in all, at most MAX_MS, at least MIN_BATCHES batches per build. */
const MIN_MS = 5, MAX_MS = 40, MIN_BATCHES = 3;
/** A batch lasts at least this long (calls per batch are doubled until it does): well over a
 *  coarse timer's tick (browsers round performance.now() to 5 µs - 1 ms). */
export const BATCH_MS = 1;

// The GEMM's geometry (as in src/ops/linalg.ts: MR x NR micro-tiles, the B block of
// KC_MAX x NC_SLIVERS x NR floats per thread) and where its operands sit in the probe's memory.
const N = 64, MR = 6, NR = 8, KC_MAX = 256, NC_SLIVERS = 32;
const SCRATCH = (KC_MAX * NC_SLIVERS * NR + MR * NR) * 4;
const A = 65536, B = A + N * N * 4, C = B + N * N * 4, PA = C + N * N * 4, SCR = PA + Math.ceil(N / MR) * MR * N * 4;
// (the kernels' memory import asks for at least 16 pages: asconfig.json initialMemory)
const PAGES = Math.max(16, Math.ceil((SCR + SCRATCH) / 65536));

export interface BuildChoice {
  build: Build;
  reason: string;
}

const choices = new Map<boolean, Promise<BuildChoice>>();

/** The build to run (once per process and memory kind: later inits reuse the answer). */
export function chooseBuild(f: Features, shared: boolean): Promise<BuildChoice> {
  if (!f.simd) throw new Error("simdnet: this runtime has no WebAssembly SIMD (Node >= 20 or a current browser is needed)");
  if (!f.relaxedSimd) return Promise.resolve({ build: "simd", reason: "no relaxed SIMD in this runtime" });
  let p = choices.get(shared);
  if (!p) {
    p = measure(shared);
    choices.set(shared, p);
    p.catch(() => choices.delete(shared));
  }
  return p;
}

/** One build's GEMM on its own small memory: returns a function that runs it once. */
async function probe(build: Build, shared: boolean): Promise<() => void> {
  const module = await compileBuild(build, shared);
  const memory = new WebAssembly.Memory({ initial: PAGES, maximum: PAGES, shared } as any);
  const k = new WebAssembly.Instance(module, { env: { memory } }).exports as any;
  const f = new Float32Array(memory.buffer);
  for (let i = 0; i < N * N; i++) {
    f[A / 4 + i] = ((i * 7) % 5) - 2;
    f[B / 4 + i] = ((i * 3) % 7) - 3;
  }
  k.f32_gemm_pack_a(A, N, 0, N, N, 1, 0, PA, 0, 1);
  const run = () => k.f32_gemm(PA, B, N, 0, C, N, N, N, N, 1, 0, 0, 0, SCR, SCRATCH, 0, 1);
  run();
  // the known answer: integer sums, exact in f32 however they are rounded or fused
  for (let i = 0; i < N; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let p = 0; p < N; p++) s += f[A / 4 + i * N + p] * f[B / 4 + p * N + j];
      if (f[C / 4 + i * N + j] !== s) throw new Error(`simdnet: the ${build} build's GEMM gave ${f[C / 4 + i * N + j]} for ${s} at [${i},${j}] in its start-up check`);
    }
  return run;
}

/** Runs `run` `calls` times; returns the ms taken. */
export function batchMs(run: () => void, calls: number): number {
  const s = performance.now();
  for (let i = 0; i < calls; i++) run();
  return performance.now() - s;
}

/** One timing window: alternating batches of each contender (both builds; or two thread
 *  counts, src/engine/threadchoice.ts); the best ms per call of each. */
export function timeWindow<K extends string>(runs: Record<K, () => void>, calls: number, limits = { MIN_MS, MAX_MS, MIN_BATCHES }): Record<K, number> {
  const { MIN_MS, MAX_MS, MIN_BATCHES } = limits;
  const keys = Object.keys(runs) as K[];
  const best = {} as Record<K, number>;
  for (const k of keys) best[k] = Infinity;
  const order: K[][] = [keys, [...keys].reverse()];
  const t0 = performance.now();
  for (let batch = 0; ; batch++) {
    const spent = performance.now() - t0;
    if (spent > MAX_MS || (spent > MIN_MS && batch >= MIN_BATCHES)) return best;
    // alternate which goes first: a slow moment hits both
    for (const b of order[batch % 2]) best[b] = Math.min(best[b], batchMs(runs[b], calls) / calls);
  }
}

async function measure(shared: boolean): Promise<BuildChoice> {
  const [relaxed, simd] = await Promise.all([probe("relaxed", shared), probe("simd", shared)]);
  const runs = { relaxed, simd };
  const t0 = performance.now();
  // calls per batch, doubled until a batch lasts BATCH_MS (these first calls also take both
  // builds' code past the engine's first, unoptimised tier)
  let calls = 4;
  while (calls < 1024 && batchMs(relaxed, calls) + batchMs(simd, calls) < 2 * BATCH_MS) calls *= 2;
  const simdWins = (w: Record<Build, number>) => w.relaxed > w.simd * MARGIN;
  const windows = [timeWindow(runs, calls)];
  // SIMD must win twice: one window can be skewed by load, or by one build's optimised code
  // arriving later than the other's
  if (simdWins(windows[0])) windows.push(timeWindow(runs, calls));
  const us = (ms: number) => `${Math.round(ms * 1000)} µs`;
  const timing =
    `best ${N}x${N}x${N} GEMM at start, ${Math.round(performance.now() - t0)} ms of timing: ` +
    windows.map((w) => `relaxed ${us(w.relaxed)}, SIMD ${us(w.simd)}`).join("; then ");
  if (!windows.every((w) => w.relaxed > 0 && w.simd > 0)) return { build: "relaxed", reason: `relaxed SIMD (the timer is too coarse to compare the builds: ${timing})` };
  return windows.every(simdWins)
    ? { build: "simd", reason: `SIMD measured faster than relaxed SIMD here (${timing})` }
    : { build: "relaxed", reason: `relaxed SIMD, not measured ${MARGIN}x slower than SIMD here (${timing})` };
}
