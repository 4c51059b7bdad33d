// Helpers shared by the benchmark scripts: seeded inputs, interleaved timing with medians,
// output comparison, and one child process per thread count. The defaults are kernels.mjs's
// (see bench/README.md, "How it measures").
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

/** Deterministic inputs: uniform in [-1, 1) from a seeded generator (mulberry32). */
export function randn(n, seed) {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * Times several runners interleaved. Warm-up: repeated calls for `warmMs` (at least
 * `minWarmCalls`): V8 first runs a wasm function as baseline code and swaps in optimised code
 * after some calls (one call in progress keeps the baseline code), and the references build
 * their plans on the first call. Then each sample is `inner` back-to-back calls (enough to last
 * `minSampleMs`), the runners taking turns in a rotating order; at least `minReps` samples each,
 * more up to `maxReps` while the time budget (`budgetMs`) lasts. Returns the median ms per call
 * for each runner (null for one that failed; its error is left in runner.failed), and sets
 * runner.minMs (the best sample), runner.samples (how many) and runner.cpuMs (the median of the
 * process's CPU time per call: for a single-threaded runtime, below the wall time by what other
 * processes took).
 */
export async function timeInterleaved(
  runners,
  { quick },
  { maxReps = quick ? 3 : 11, warmMs = quick ? 200 : 500, minWarmCalls = 2, minSampleMs = quick ? 5 : 20, minReps = 3, settleMs = 25, budgetMs = quick ? 1500 : 8000 } = {},
) {
  const live = [];
  for (const r of runners) {
    try {
      let dt = 0;
      const w0 = performance.now();
      for (let calls = 0; calls < minWarmCalls || (performance.now() - w0 < warmMs && calls < 200); calls++) {
        const t0 = performance.now();
        await r.run();
        dt = performance.now() - t0;
      }
      live.push({ r, inner: Math.max(1, Math.ceil(minSampleMs / Math.max(dt, 1e-3))), samples: [], cpu: [] });
    } catch (e) {
      r.failed = e;
    }
  }
  const start = performance.now();
  for (let rep = 0; rep < maxReps; rep++) {
    if (rep >= minReps && performance.now() - start > budgetMs) break;
    for (let j = 0; j < live.length; j++) {
      const L = live[(j + rep) % live.length];
      if (L.r.failed) continue;
      // let the previous runtime's threads go idle first: thread pools spin a while after a
      // job (ONNX Runtime's for milliseconds), and a spinning thread takes a core from the next
      await new Promise((res) => setTimeout(res, settleMs));
      try {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        for (let i = 0; i < L.inner; i++) await L.r.run();
        L.samples.push((performance.now() - t0) / L.inner);
        const c = process.cpuUsage(c0);
        L.cpu.push((c.user + c.system) / 1000 / L.inner);
      } catch (e) {
        L.r.failed = e;
      }
    }
  }
  return runners.map((r) => {
    const L = live.find((l) => l.r === r);
    if (!L || r.failed || !L.samples.length) return null;
    // the best sample too: less moved by load from elsewhere than the median (JSON only)
    r.minMs = Math.min(...L.samples);
    r.samples = L.samples.length;
    r.sampleList = L.samples; // in order of the rounds (the scaling suite pairs them)
    // the process's CPU time per call (all its threads, spinning included), median over samples
    r.cpuMs = median(L.cpu);
    return median(L.samples);
  });
}

/** max |a - b| (Infinity for different lengths or a NaN anywhere). */
export function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export function maxAbs(a) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Runs `script` with `args` in a child process (ONNX Runtime's thread pool is global and fixed
 *  at its first session, so each thread count gets its own process). Each line the child prints
 *  that is a JSON object goes to onRow(line, parsed); other lines go to stderr. Resolves to the
 *  child's exit code. */
export async function runChild(script, args, onRow) {
  const cp = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  for await (const line of createInterface({ input: cp.stdout })) {
    if (line.startsWith("{")) onRow(line, JSON.parse(line));
    else console.error(line);
  }
  return new Promise((res) => (cp.exitCode != null ? res(cp.exitCode) : cp.on("exit", res)));
}

/** A script's entry point: `child(opts)` in a child process (--child), else `parent(opts)`. */
export async function main(opts, child, parent) {
  if (!opts.child) return parent(opts);
  try {
    await child(opts);
  } catch (e) {
    console.error(e);
    process.exit(1);
  }
  // ONNX Runtime's worker threads would keep the process alive.
  process.exit(0);
}
