// How many threads init() keeps when it is not told (an explicit init({ threads }) is always
// honoured, untimed). A browser's navigator.hardwareConcurrency need not be the core count:
// WebKit reports `numberOfProcessorCores() < 8 ? 4 : 8` (WebCore/page/NavigatorBase.cpp, a
// privacy rounding: 4 on a two-core machine), Firefox's resistFingerprinting reports a fixed
// count, Brave varies it, and a CPU quota (a container) is not in it. Four threads on two cores
// are slower than two (the caller spins while it waits for shares that an oversubscribed core
// has not run yet). The count is never raised above what is reported (WebKit's 4 on a six-core
// iPhone stays 4: nothing says how many more there are). So in a browser the pool starts with the reported
// count, and each halving is timed against it: the same GEMM split into `more` shares and into
// `fewer` (the pool's threads past the job's share count sleep through it, so a job of n shares
// runs on n threads), in alternating batches, best batch counts, as the build choice does
// (src/engine/buildchoice.ts, whose timing helpers and margin this reuses). The larger count is
// kept only if it is at least MARGIN (1.25x) faster in two windows in a row, and the ladder
// goes down by halves until a doubling pays for itself or one thread is left; then the extra
// workers are retired (Pool.shrink): the workers start once, never twice.
//
// Why a margin of 1.25x, twice: a doubling of real cores gave 1.7-2.0x on this GEMM (1 to 2
// threads on this project's two-core machine, when its other core was free), a doubling onto
// cores that are not there ~1.0x, and timings drift by up to ±30% on a loaded machine; a
// doubling that is not clearly faster is not worth a thread that competes with the page. Two
// windows, because a machine whose cores other processes keep busy can make more threads look
// faster for a moment (the OS shares a core per thread, so more threads get more of it: single
// windows of 1.3-2x for 2 to 4 threads on two cores were seen here at a load of 4 and more). Why not in Node: os.availableParallelism() is the count the OS
// gives this process (affinity and cgroup limits included), nothing is rounded, so the
// timing would only cost start-up time and could drop a real core on a noisy moment.
// Why only up to MAX_CHECKED: the GEMM splits into ~16 items (assembly/gemm.ts), so it cannot
// show the worth of more threads than that, and no known rounding reports more than 8.
//
// Results do not depend on the choice: every kernel gives the same bits on any thread count
// (docs/kernels.md), so the count changes only speed; the timing also checks that the two
// counts' GEMMs agree to the bit. info.threads and info.threadsReason say what was kept and why.
import { MARGIN, BATCH_MS, batchMs, timeWindow } from "./buildchoice.js";

/** The check runs where the reported count is from 3 (src/engine/engine.ts) to this. */
export const MAX_CHECKED = 16;

/** One timing window: at least MIN_MS and MIN_BATCHES batches of each count, at most MAX_MS. */
const WINDOW = { MIN_MS: 4, MAX_MS: 20, MIN_BATCHES: 3 };

/** The probe GEMM: M x K times K x N (M = N = K), ~0.3 ms on one core here (big enough that
 *  waking the workers is small beside it, small enough for many batches); and the
 *  micro-kernel geometry of assembly/gemm.ts (for the packed A and the per-thread scratch). */
const G = 192, MR = 6, NR = 8, KC_MAX = 256, NC_SLIVERS = 32;
const SCRATCH = (KC_MAX * NC_SLIVERS * NR + MR * NR) * 4;

/** One rung of the ladder: `more` threads against `fewer`, the best ms per GEMM of each, one
 *  pair per timing window (a second window only when the first says `more` is worth it). */
export interface Step {
  more: number;
  fewer: number;
  windows: { more: number; fewer: number }[];
}

export interface ThreadChoice {
  threads: number;
  /** e.g. "4 reported, 2 measured useful (2→4: 0.97x; 1→2: 1.84x, 1.79x; 31 ms of timing)" */
  reason: string;
  steps: Step[];
}

/** The counts tried, from the reported count down: halved (rounded down) to 1, e.g. 8 4 2 1,
 *  6 3 1. */
export function threadLadder(reported: number): number[] {
  const l = [reported];
  while (l[l.length - 1] > 1) l.push(Math.floor(l[l.length - 1] / 2));
  return l;
}

/** The decision, from timings alone (a pure function of what timePair returns; tests give it
 *  fake timings). timePair(more, fewer) times one window and gives the best ms per GEMM of
 *  each count. Going down the ladder from the reported count, `more` is kept when `fewer` is
 *  at least MARGIN times slower in two windows in a row; otherwise `fewer` becomes the
 *  candidate. A window with a zero time (a timer too coarse to tell) keeps the reported count:
 *  without a measurement the count is left as the browser gave it. */
export function settleThreads(reported: number, timePair: (more: number, fewer: number) => { more: number; fewer: number }, margin = MARGIN): ThreadChoice {
  const ladder = threadLadder(reported);
  const steps: Step[] = [];
  const x = (w: { more: number; fewer: number }) => `${(w.fewer / w.more).toFixed(2)}x`;
  const describe = () => steps.map((s) => `${s.fewer}→${s.more}: ${s.windows.map(x).join(", ")}`).join("; ");
  let threads = ladder[ladder.length - 1];
  for (let i = 0; i + 1 < ladder.length; i++) {
    const step: Step = { more: ladder[i], fewer: ladder[i + 1], windows: [] };
    steps.push(step);
    let pays = true;
    // the second window only when the first says the larger count is worth it
    for (let k = 0; k < 2 && pays; k++) {
      const w = timePair(step.more, step.fewer);
      step.windows.push(w);
      if (!(w.more > 0 && w.fewer > 0))
        return { threads: reported, steps, reason: `${reported} reported, kept: the timer is too coarse to compare thread counts (${describe()})` };
      pays = w.fewer >= w.more * margin;
    }
    if (pays) {
      threads = step.more;
      break;
    }
  }
  const reason =
    threads === reported
      ? `${reported} reported, all measured useful (${describe()})`
      : `${reported} reported, ${threads} measured useful (${describe()}; each doubling must be ${margin}x faster twice)`;
  return { threads, steps, reason };
}

/** What the timing needs from the engine (src/engine/engine.ts): a kernel run as `nth` shares
 *  on that many of the pool's threads, and memory for the operands. */
export interface ShareRunner {
  runShares(name: string, args: number[], nth: number): void;
  alloc(bytes: number, what?: string): number;
  release(ptr: number): void;
  readonly heapF32: Float32Array;
}

/** Times the thread counts on the engine's own pool (started with `reported` threads) and
 *  returns the choice, with the ms the timing took in the reason. */
export function measureThreads(eng: ShareRunner, reported: number): ThreadChoice {
  const t0 = performance.now();
  const n = G * G;
  const a = eng.alloc(n * 4, "thread timing: A"), b = eng.alloc(n * 4, "thread timing: B");
  const cs = [eng.alloc(n * 4, "thread timing: C"), eng.alloc(n * 4, "thread timing: C")];
  const pa = eng.alloc(Math.ceil(G / MR) * MR * G * 4, "thread timing: packed A");
  const scr = eng.alloc(reported * SCRATCH, "thread timing: scratch");
  try {
    const f = eng.heapF32;
    for (let i = 0; i < n; i++) {
      f[a / 4 + i] = ((i * 7) % 5) - 2;
      f[b / 4 + i] = ((i * 3) % 7) - 3;
    }
    eng.runShares("f32_gemm_pack_a", [a, G, 0, G, G, 1, 0, pa], reported);
    // C = A B, on `nth` threads; the two counts of a pair write separate Cs, compared below
    const gemm = (nth: number, c: number) => () => eng.runShares("f32_gemm", [pa, b, G, 0, c, G, G, G, G, 1, 0, 0, 0, scr, SCRATCH], nth);
    // calls per batch, by pair (set at the pair's first window)
    const callsFor = new Map<number, number>();
    const choice = settleThreads(reported, (more, fewer) => {
      const runs = { more: gemm(more, cs[0]), fewer: gemm(fewer, cs[1]) };
      let calls = callsFor.get(more);
      if (calls === undefined) {
        // the same bits from both counts (docs/kernels.md)
        runs.more();
        runs.fewer();
        const h = eng.heapF32;
        for (let i = 0; i < n; i++)
          if (!Object.is(h[cs[0] / 4 + i], h[cs[1] / 4 + i]))
            throw new Error(`simdnet: the start-up GEMM gave ${h[cs[0] / 4 + i]} on ${more} threads and ${h[cs[1] / 4 + i]} on ${fewer} at element ${i}: results must not depend on the thread count`);
        // calls per batch: doubled until a batch of each lasts BATCH_MS / 2 on average (threads
        // need a cross-origin isolated page, whose timers are fine: 5-20 µs); this also takes
        // the workers' code past the engine's unoptimised tier
        calls = 1;
        while (calls < 64 && batchMs(runs.more, calls) + batchMs(runs.fewer, calls) < BATCH_MS) calls *= 2;
        callsFor.set(more, calls);
      }
      // a shorter window than the build choice's: this timing runs once or twice more than that one
      return timeWindow(runs, calls, WINDOW);
    });
    choice.reason = choice.reason.replace(/\)$/, `; ${Math.round(performance.now() - t0)} ms of timing)`);
    return choice;
  } finally {
    for (const p of [a, b, ...cs, pa, scr]) eng.release(p);
  }
}
