#!/usr/bin/env node
// Kernel benchmarks: simdnet against TensorFlow.js's wasm backend and ONNX Runtime Web, run side
// by side in one process, with a check that our outputs match theirs; and how our kernels scale
// from 1 to 2 threads. See bench/README.md.
//
//   node bench/kernels.mjs [--json] [--threads 1,2] [--suite peak,gemm,conv,pool,scaling]
//                          [--quick] [--filter TEXT]
//
// ONNX Runtime Web's thread pool is global and fixed when it starts, so each thread count runs
// in a child process of its own (this script with --child); inside it, ours and the references
// are timed interleaved (round-robin, so that load from elsewhere hits all of them alike), and
// medians are taken after warm-up. The scaling suite needs no reference: it runs in this
// process, with one engine per thread count (the bundle imported once per engine), the engines
// taking turns, so that the 1-thread and the 2-thread times are taken under the same load.
import { fileURLToPath } from "node:url";
import * as refs from "./refs.mjs";
import { convOut } from "./onnx.mjs";
import { randn, timeInterleaved, maxAbsDiff, maxAbs, median, runChild, main } from "./harness.mjs";

const SUITES = ["peak", "gemm", "conv", "pool", "scaling"];
/** The suites the per-thread-count children run (scaling runs in the parent). */
const CHILD_SUITES = ["peak", "gemm", "conv", "pool"];

function parseArgs(argv) {
  const o = { json: false, quick: false, child: false, threads: [1, 2], suites: SUITES, filter: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v;
    };
    if (a === "--json") o.json = true;
    else if (a === "--quick") o.quick = true;
    else if (a === "--child") o.child = true;
    else if (a.startsWith("--threads")) o.threads = val().split(",").map(Number);
    else if (a.startsWith("--suite")) o.suites = val().split(",");
    else if (a.startsWith("--filter")) o.filter = val();
    else if (a === "-h" || a === "--help") usage();
    else usage(`unknown argument ${a}`);
  }
  if (o.threads.some((t) => !Number.isInteger(t) || t < 1)) usage("--threads takes positive integers, e.g. 1,2");
  for (const s of o.suites) if (!SUITES.includes(s)) usage(`unknown suite ${s} (have ${SUITES.join(", ")})`);
  return o;
}

function usage(msg) {
  if (msg) console.error(`kernels.mjs: ${msg}`);
  console.error("usage: node bench/kernels.mjs [--json] [--threads 1,2] [--suite peak,gemm,conv,pool,scaling] [--quick] [--filter TEXT]");
  process.exit(msg ? 2 : 0);
}

// ================================================================ cases

const CONVS = [
  { id: "a", what: "LeNet conv1", N: 64, C: 1, H: 28, W: 28, O: 20, k: 5, stride: 1, pad: 0 },
  { id: "b", what: "VGG 3x3", N: 1, C: 64, H: 56, W: 56, O: 64, k: 3, stride: 1, pad: 1 },
  { id: "c", what: "ResNet 3x3", N: 8, C: 128, H: 28, W: 28, O: 128, k: 3, stride: 1, pad: 1 },
  { id: "d", what: "AlexNet conv1", N: 1, C: 3, H: 224, W: 224, O: 96, k: 11, stride: 4, pad: 0 },
];
/** Depthwise 3x3 layers as in MobileNet (forward only). */
const DEPTHWISE = [
  { id: "e", what: "depthwise 3x3", N: 1, C: 128, H: 56, W: 56, k: 3, stride: 1, pad: 1 },
  { id: "f", what: "depthwise 3x3", N: 1, C: 512, H: 14, W: 14, k: 3, stride: 1, pad: 1 },
];
const convName = (s) => `${s.id} ${s.N}x${s.C}x${s.H}x${s.W} ${s.O}@${s.k}x${s.k}${s.stride > 1 ? ` s${s.stride}` : ""}${s.pad ? ` p${s.pad}` : ""}`;

const POOLS = [
  { N: 8, C: 64, H: 56, W: 56, k: 3, stride: 2 },
  { N: 64, C: 20, H: 24, W: 24, k: 2, stride: 2 },
];

/**
 * Each case: what ours calls, the references, the work (flops; bytes for pooling), and K, the
 * length of the dot products behind each output (for the tolerance).
 * Returns a list of { suite, name, flops, bytes, K, exact, ours(lib) -> () => Tensor, refs: [() => Promise<runner>], fwdOf }.
 */
function cases(threads) {
  const out = [];
  for (const n of [256, 512, 1024]) {
    const a = randn(n * n, 1 + n);
    const b = randn(n * n, 2 + n);
    out.push({
      suite: "gemm",
      name: `sgemm ${n}^3`,
      flops: 2 * n ** 3,
      K: n,
      op: "matmul",
      ours: (lib) => {
        const A = lib.tensor(a, [n, n]);
        const B = lib.tensor(b, [n, n]);
        return { call: () => lib.matmul(A, B), inputs: [A, B] };
      },
      refs: [() => refs.tfjsMatmul(n, n, n, a, b), () => refs.ortMatmul(threads, n, n, n, a, b)],
    });
  }
  for (const s of CONVS) {
    const { N, C, H, W, O, k, stride, pad } = s;
    const Ho = convOut(H, k, stride, pad);
    const Wo = convOut(W, k, stride, pad);
    const seed = s.id.charCodeAt(0) * 10;
    const x = randn(N * C * H * W, seed);
    const w = randn(O * C * k * k, seed + 1).map((v) => v / Math.sqrt(C * k * k));
    const gy = randn(N * O * Ho * Wo, seed + 2);
    const flops = 2 * N * O * Ho * Wo * C * k * k;
    const opts = { stride, padding: pad };
    const fwdName = `${convName(s)} fwd`;
    out.push({
      suite: "conv",
      name: fwdName,
      flops,
      K: C * k * k,
      op: "conv2d",
      ours: (lib) => {
        const X = lib.tensor(x, [N, C, H, W]);
        const Wt = lib.tensor(w, [O, C, k, k]);
        return { call: () => lib.conv2d(X, Wt, null, opts), inputs: [X, Wt] };
      },
      refs: [() => refs.tfjsConv(s, x, w), () => refs.ortConv(threads, s, x, w)],
    });
    out.push({
      suite: "conv",
      name: `${convName(s)} dx`,
      flops,
      K: O * k * k,
      op: "conv2d_input",
      fwdOf: fwdName,
      ours: (lib) => {
        const Wt = lib.tensor(w, [O, C, k, k]);
        const G = lib.tensor(gy, [N, O, Ho, Wo]);
        return { call: () => lib.conv2d_input([N, C, H, W], Wt, G, opts), inputs: [Wt, G] };
      },
      refs: [() => refs.tfjsConvInput(s, w, gy), () => refs.ortConvInput(threads, s, w, gy)],
    });
    out.push({
      suite: "conv",
      name: `${convName(s)} dw`,
      flops,
      K: N * Ho * Wo,
      op: "conv2d_weight",
      fwdOf: fwdName,
      ours: (lib) => {
        const X = lib.tensor(x, [N, C, H, W]);
        const G = lib.tensor(gy, [N, O, Ho, Wo]);
        return { call: () => lib.conv2d_weight(X, [O, C, k, k], G, opts), inputs: [X, G] };
      },
      refs: [() => refs.tfjsConvWeight(s, x, gy), () => refs.tfjsConvWeightAsConv(s, x, gy)],
    });
  }
  for (const s of DEPTHWISE) {
    const { N, C, H, W, k, stride, pad } = s;
    const Ho = convOut(H, k, stride, pad), Wo = convOut(W, k, stride, pad);
    const seed = s.id.charCodeAt(0) * 10;
    const x = randn(N * C * H * W, seed);
    const w = randn(C * k * k, seed + 1).map((v) => v / Math.sqrt(k * k));
    out.push({
      suite: "conv",
      name: `${s.id} dw ${N}x${C}x${H}x${W} ${k}x${k} groups=${C}${pad ? ` p${pad}` : ""} fwd`,
      flops: 2 * N * C * Ho * Wo * k * k,
      K: k * k,
      op: "conv2d",
      ours: (lib) => {
        const X = lib.tensor(x, [N, C, H, W]);
        const Wt = lib.tensor(w, [C, 1, k, k]);
        return { call: () => lib.conv2d(X, Wt, null, { stride, padding: pad, groups: C }), inputs: [X, Wt] };
      },
      refs: [() => refs.tfjsDepthwiseConv(s, x, w), () => refs.ortDepthwiseConv(threads, s, x, w)],
    });
  }
  for (const p of POOLS) {
    const { N, C, H, W, k, stride } = p;
    const x = randn(N * C * H * W, N * 1000 + C);
    const Ho = convOut(H, k, stride, 0);
    const Wo = convOut(W, k, stride, 0);
    out.push({
      suite: "pool",
      name: `max ${N}x${C}x${H}x${W} ${k}x${k} s${stride}`,
      bytes: 4 * (N * C * H * W + N * C * Ho * Wo),
      exact: true,
      op: "max_pool2d",
      ours: (lib) => {
        const X = lib.tensor(x, [N, C, H, W]);
        return { call: () => lib.max_pool2d(X, { kernel_size: k, stride }), inputs: [X] };
      },
      refs: [() => refs.tfjsMaxPool(p, x), () => refs.ortMaxPool(threads, p, x)],
    });
  }
  return out;
}

// ================================================================ checking

/** Tolerance for a sum of K products in f32, relative to the output magnitude: rounding error
 *  grows about like sqrt(K) * eps; 1e-5 * sqrt(K) leaves a wide margin above that, while a wrong
 *  index or a missed term gives errors of the order of the outputs themselves. Max pooling
 *  computes nothing and must match exactly. */
const tolerance = (c, ref) => (c.exact ? 0 : 1e-5 * Math.sqrt(c.K) * maxAbs(ref));

/** Whether two f32 outputs have the same bits, element for element. */
function sameBits(a, b) {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

// ================================================================ scaling: 1 thread vs more, one process

/** The cases the scaling suite times: "suite case" names from cases(), and the target speedup
 *  of 2 threads over 1 where the project has one. */
const SCALING = [
  { full: "gemm sgemm 1024^3", target2: 1.85 },
  { full: `conv ${convName(CONVS[2])} fwd`, target2: null },
];

/**
 * One engine per thread count in this process: the bundle is imported once per engine (a query
 * string makes each import a module instance of its own, with its own engine), so the engines
 * can take turns call by call. The first case is the SIMD peak kernel with the same total work
 * on every engine (iterations split over the threads): what the machine lets 2 threads gain at
 * that moment, whatever the kernels. Emits one row per case and thread count above 1.
 */
async function scaling(o, emit) {
  const counts = [1, ...new Set(o.threads.filter((t) => t > 1))];
  if (counts.length < 2) {
    console.error("scaling: --threads has no count above 1 to compare with 1 thread");
    return 0;
  }
  const engines = [];
  try {
    for (const t of counts) {
      const lib = await import(new URL(`../dist/index.js?scaling-engine=${t}`, import.meta.url).href);
      const info = await lib.init({ threads: t });
      engines.push({ t, lib, info });
    }
  } catch (e) {
    console.error(`scaling: could not start our engines (${e.message}); run \`node tools/build.mjs\``);
    for (const E of engines) E.lib.dispose();
    return 1;
  }
  const byName = new Map(cases(1).map((c) => [`${c.suite} ${c.name}`, c]));
  const list = [{ full: "simd peak (same work)", peak: true, target2: null }, ...SCALING];
  const peakSpeedup = new Map(); // thread count -> the peak kernel's speedup
  let failed = 0;
  for (const sc of list) {
    const name = sc.peak ? sc.full : sc.full.slice(sc.full.indexOf(" ") + 1);
    // the peak runs whatever the filter: the other rows are read against it
    const shown = !o.filter || `scaling ${name}`.includes(o.filter);
    if (!shown && !sc.peak) continue;
    const runners = [];
    const made = [];
    for (const E of engines) {
      if (sc.peak) {
        const e = E.lib.engine();
        const ptr = e.alloc(16 * e.threads, "peak bench");
        const iters = Math.ceil(16_000_000 / e.threads); // 1.5 GFLOP in all: calls about as long as SGEMM 1024's
        made.push({ dispose: () => e.release(ptr) });
        runners.push({ name: `${E.t} thr`, run: () => e.run("bench_simd_peak", [ptr, iters]), result: () => null });
      } else {
        const { call, inputs } = byName.get(sc.full).ours(E.lib);
        made.push(...inputs);
        runners.push({
          name: `${E.t} thr`,
          run: () => call().dispose(),
          result() {
            const y = call();
            const a = y.toArray();
            y.dispose();
            return a;
          },
        });
      }
    }
    const times = await timeInterleaved(runners, o, { maxReps: o.quick ? 5 : 21, warmMs: o.quick ? 300 : 1000, budgetMs: o.quick ? 3000 : 20000 });
    let outs = [];
    try {
      outs = runners.map((r) => r.result());
    } catch (e) {
      console.error(`scaling ${name}: ${e.message}`);
    }
    const base = runners[0];
    for (let i = 1; i < engines.length; i++) {
      const r = runners[i], t = engines[i].t;
      const ms1 = times[0], msT = times[i];
      // the ratio round by round (the two samples of a round are taken one after the other),
      // then its median: less moved by load that changes between rounds than the ratio of medians
      const pairs = ms1 != null && msT != null ? base.sampleList.slice(0, r.sampleList.length).map((v, k) => v / r.sampleList[k]) : [];
      const same = sc.peak || !outs[0] || !outs[i] ? null : sameBits(outs[0], outs[i]);
      const target = t === 2 ? sc.target2 : null;
      const speedup = ms1 != null && msT != null ? ms1 / msT : null;
      const row = {
        suite: "scaling",
        case: name,
        threads: t,
        ms_1: ms1,
        [`ms_${t}`]: msT,
        speedup,
        speedup_paired: pairs.length ? median(pairs) : null,
        target,
        meets_target: target == null || speedup == null ? null : speedup >= target,
        same_bits: same,
        [`min_ms_1`]: ms1 != null ? base.minMs : null,
        [`min_ms_${t}`]: msT != null ? r.minMs : null,
        samples: [ms1 != null ? base.samples : 0, msT != null ? r.samples : 0],
        ours_threads: [engines[0].info.threads, engines[i].info.threads],
        peak_speedup: sc.peak ? null : peakSpeedup.get(t) ?? null,
      };
      const err = base.failed ?? r.failed;
      if (err) row.error = err.message;
      if (err || same === false) failed++;
      if (sc.peak && speedup != null) peakSpeedup.set(t, speedup);
      if (shown) emit(row);
    }
    for (const m of made) m.dispose();
  }
  for (const E of engines) E.lib.dispose();
  return failed;
}

function scalingLine(r) {
  const t = r.threads;
  const head = `scaling ${r.case}  ${t} vs 1 thread: `;
  if (r.error) return `${head}error: ${r.error}`;
  const parts = [`1 thr ${fmtMs(r.ms_1)} ms, ${t} thr ${fmtMs(r[`ms_${t}`])} ms, ${r.speedup == null ? "?" : r.speedup.toFixed(2)}x`];
  if (r.speedup_paired != null) parts.push(`round by round ${r.speedup_paired.toFixed(2)}x`);
  if (r.target != null) parts.push(`target >= ${r.target}x ${r.meets_target ? "✓" : "✗"}`);
  if (r.target != null && !r.meets_target && r.peak_speedup != null && r.peak_speedup < r.target)
    parts.push(`the peak kernel got only ${r.peak_speedup.toFixed(2)}x meanwhile: the machine did not give ${t} threads ${t} cores`);
  if (r.same_bits != null) parts.push(`same bits ${r.same_bits ? "✓" : "✗"}`);
  if (r.ours_threads[1] !== t) parts.push(`ours ran ${r.ours_threads[1]} thr`);
  return head + parts.join("; ");
}

// ================================================================ child: one thread count

async function child(o) {
  const threads = o.threads[0];
  const emit = (row) => process.stdout.write(JSON.stringify(row) + "\n");
  let lib = null;
  let info = null;
  let libError = null;
  try {
    lib = await import("../dist/index.js");
    info = await lib.init({ threads });
  } catch (e) {
    libError = `ours: could not start (${e.message}); run \`node tools/build.mjs\``;
    console.error(libError);
    lib = null;
  }
  const oursThreads = info?.threads ?? null;

  // The WebAssembly SIMD peak of the build in use: 12 independent f32x4 multiply-add chains per
  // thread, 2 flops per lane (see assembly/debug.ts). It is timed once on its own (the peak row)
  // and again interleaved with every case, so that a case's % of peak is against the peak under
  // the same load from elsewhere (other processes on the machine move both alike).
  let peakRunner = null;
  if (lib) {
    try {
      const e = lib.engine();
      const outPtr = e.alloc(16 * e.threads, "peak bench");
      const iters = 500_000;
      const flops = 12 * 4 * 2 * iters * e.threads;
      peakRunner = { name: "peak", flops, run: () => e.run("bench_simd_peak", [outPtr, iters]) };
      const [ms] = await timeInterleaved([peakRunner], o, { maxReps: 15, warmMs: 1000 });
      if (ms == null) throw peakRunner.failed ?? new Error("peak run failed");
      peakRunner.alone = flops / ms / 1e6;
      if (o.suites.includes("peak"))
        emit({
          suite: "peak",
          case: `simd peak (${info.build} build)`,
          threads,
          ours_ms: ms,
          ours_gflops: flops / ms / 1e6,
          ref: null,
          ref_ms: null,
          speedup: null,
          max_abs_err: null,
          pct_peak: 100,
          build: info.build,
          ours_threads: oursThreads,
        });
    } catch (e) {
      peakRunner = null;
      console.error(`peak: ${e.message}`);
    }
  }

  const fwdMs = new Map();
  for (const c of cases(threads)) {
    if (!o.suites.includes(c.suite)) continue;
    const full = `${c.suite} ${c.name}`;
    if (o.filter && !full.includes(o.filter)) continue;

    // ours
    let ours = null;
    let oursStatus = "ok";
    let oursInputs = [];
    if (!lib) oursStatus = "not started";
    else if (typeof lib[c.op] !== "function") oursStatus = "not implemented";
    else {
      try {
        const { call, inputs } = c.ours(lib);
        oursInputs = inputs;
        ours = {
          name: "ours",
          run() {
            call().dispose();
          },
          result() {
            const y = call();
            const a = y.toArray();
            y.dispose();
            return a;
          },
        };
      } catch (e) {
        oursStatus = `error: ${e.message}`;
      }
    }

    // references
    const refRunners = [];
    const refStatus = [];
    for (const make of c.refs) {
      try {
        refRunners.push(await make());
        refStatus.push("ok");
      } catch (e) {
        refRunners.push(null);
        refStatus.push(e instanceof refs.NotAvailable ? e.message : `error: ${e.message}`);
      }
    }

    const runners = [ours, ...refRunners, ours && peakRunner].filter(Boolean);
    const times = await timeInterleaved(runners, o);
    const timeOf = (r) => (r ? times[runners.indexOf(r)] : null);
    const peakMs = ours ? timeOf(peakRunner) : null;
    // the larger of this interleaved peak and the one timed alone at the start: the peak kernel
    // is two long shares on 2 threads, so one late wake-up halves a sample; a % of peak is
    // never overstated this way
    const peak = peakMs ? Math.max(peakRunner.flops / peakMs / 1e6, peakRunner.alone ?? 0) : null;
    let oursMs = timeOf(ours);
    if (ours && ours.failed) {
      oursStatus = /not implemented/i.test(ours.failed.message) ? "not implemented" : `error: ${ours.failed.message}`;
      oursMs = null;
    }
    if (oursMs != null && !c.fwdOf) fwdMs.set(c.name, oursMs);

    // outputs, after timing
    let oursOut = null;
    if (oursMs != null) {
      try {
        oursOut = ours.result();
      } catch (e) {
        oursStatus = `error: ${e.message}`;
      }
    }
    const refOuts = [];
    for (let i = 0; i < refRunners.length; i++) {
      const r = refRunners[i];
      refOuts.push(null);
      if (!r) continue;
      if (r.failed) {
        refStatus[i] = `error: ${r.failed.message}`;
        continue;
      }
      try {
        refOuts[i] = await r.result();
      } catch (e) {
        refStatus[i] = `error: ${e.message}`;
      }
    }
    const firstRef = refOuts.find(Boolean);

    const gflops = c.flops && oursMs != null ? c.flops / oursMs / 1e6 : null;
    for (let i = 0; i < c.refs.length; i++) {
      const r = refRunners[i];
      const refMs = refOuts[i] ? timeOf(r) : null;
      const refOut = refOuts[i];
      const err = oursOut && refOut ? maxAbsDiff(oursOut, refOut) : null;
      const tol = refOut ? tolerance(c, refOut) : null;
      const row = {
        suite: c.suite,
        case: c.name,
        threads,
        ours_ms: oursMs,
        ours_gflops: gflops,
        ref: r?.name ?? refName(c, i, threads),
        ref_ms: refMs,
        speedup: refMs != null && oursMs != null ? refMs / oursMs : null,
        max_abs_err: err,
        pct_peak: gflops != null && peak ? (100 * gflops) / peak : null,
        tol,
        match: err == null ? null : err <= tol,
        ours_status: oursStatus,
        ref_status: refStatus[i],
        ours_threads: oursThreads,
        peak_gflops: peak,
        ours_min_ms: oursMs != null ? ours.minMs : null,
        ref_min_ms: refMs != null ? r.minMs : null,
        samples: [oursMs != null ? ours.samples : 0, refMs != null ? r.samples : 0],
      };
      if (c.bytes && oursMs != null) row.ours_gbps = c.bytes / oursMs / 1e6;
      if (c.fwdOf && oursMs != null && fwdMs.has(c.fwdOf)) row.vs_fwd = oursMs / fwdMs.get(c.fwdOf);
      // While ours is missing, show at least that the references agree with each other.
      if (!oursOut && refOut && firstRef && refOut !== firstRef) row.ref_vs_ref_err = maxAbsDiff(refOut, firstRef);
      emit(row);
    }

    for (const t of oursInputs) t.dispose();
    for (const r of refRunners) r?.dispose();
  }
  lib?.dispose();
}

/** A row's reference name when the reference could not even be set up. */
function refName(c, i, threads) {
  const names = {
    gemm: ["tfjs-wasm MatMul (1 thr)", `ort-wasm MatMul (${threads} thr)`],
    conv2d: ["tfjs-wasm Conv2D (1 thr)", `ort-wasm Conv (${threads} thr)`],
    conv2d_input: ["tfjs-wasm Conv2DBackpropInput (1 thr)", `ort-wasm ConvTranspose (${threads} thr)`],
    conv2d_weight: ["tfjs-wasm Conv2DBackpropFilter (1 thr)", "tfjs-wasm dW as Conv2D (1 thr)"],
    max_pool2d: ["tfjs-wasm MaxPool (1 thr)", `ort-wasm MaxPool (${threads} thr)`],
  };
  return (names[c.op] ?? names[c.suite])?.[i] ?? `ref ${i}`;
}

// ================================================================ parent: the table

const COLS = [
  ["suite", 5],
  ["case", 30],
  ["thr", 3],
  ["ours ms", 9],
  ["GFLOP/s", 8],
  ["reference", 38],
  ["ref ms", 9],
  ["speedup", 7],
  ["% peak", 6],
  ["max abs err", 11],
  ["match", 5],
  ["note", 0],
];

const fmtMs = (v) => (v == null ? "" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3));
const fmtNum = (v, d = 1) => (v == null ? "" : v.toFixed(d));
const fmtErr = (v) => (v == null ? "" : v === 0 ? "0" : v === Infinity ? "inf" : v.toExponential(1));

function tableRow(r) {
  const notes = [];
  let ours = fmtMs(r.ours_ms);
  if (r.ours_ms == null && r.suite !== "peak") ours = r.ours_status === "not implemented" ? "ours: not implemented" : "ours: error";
  if (r.ours_status && r.ours_status.startsWith("error")) notes.push(r.ours_status);
  if (r.ours_threads != null && r.ours_threads !== r.threads) notes.push(`ours ran ${r.ours_threads} thr`);
  let refMs = fmtMs(r.ref_ms);
  if (r.ref_ms == null && r.ref) refMs = r.ref_status?.startsWith("n/a") ? "n/a" : "error";
  if (r.ref_status && r.ref_status !== "ok") notes.push(r.ref_status);
  if (r.vs_fwd != null) notes.push(`${r.vs_fwd.toFixed(2)}x our fwd`);
  if (r.ours_gbps != null) notes.push(`${r.ours_gbps.toFixed(1)} GB/s`);
  if (r.ref_vs_ref_err != null) notes.push(`refs agree to ${fmtErr(r.ref_vs_ref_err)}`);
  if (r.match != null && r.tol != null && !r.match) notes.push(`tol ${fmtErr(r.tol)}`);
  const cells = [
    r.suite,
    r.case,
    String(r.threads),
    ours,
    fmtNum(r.ours_gflops),
    r.ref ?? "-",
    r.ref ? refMs : "",
    r.speedup == null ? "" : `${r.speedup.toFixed(2)}x`,
    r.pct_peak == null ? "" : fmtNum(r.pct_peak, 0),
    fmtErr(r.max_abs_err),
    r.match == null ? "" : r.match ? "✓" : "✗",
    notes.join("; "),
  ];
  return cells.map((c, i) => pad(c, COLS[i][1], i >= 3 && i <= 10 && i !== 5)).join(" ").trimEnd();
}

function pad(s, w, right) {
  s = String(s);
  if (s.length >= w) return s;
  return right ? s.padStart(w) : s.padEnd(w);
}

async function parent(o) {
  const self = fileURLToPath(import.meta.url);
  const childSuites = o.suites.filter((s) => CHILD_SUITES.includes(s));
  if (!o.json && childSuites.length) {
    console.log(`simdnet kernel benchmarks — median ms per call after warm-up, runtimes interleaved${o.quick ? " (quick: few repetitions)" : ""}`);
    console.log("speedup = ref ms / ours ms (> 1: we are faster); % peak = our GFLOP/s over the SIMD peak of the build (same threads, timed alongside)");
    console.log("TF.js's wasm backend runs 1 thread in Node whatever the row's thread count.\n");
    const header = COLS.map(([n, w], i) => pad(n, w, i >= 3 && i <= 10 && i !== 5)).join(" ");
    console.log(header);
    console.log("-".repeat(header.length + 10));
  }
  let failed = 0;
  for (const t of childSuites.length ? o.threads : []) {
    const args = ["--child", "--threads", String(t), "--suite", childSuites.join(",")];
    if (o.quick) args.push("--quick");
    if (o.filter) args.push("--filter", o.filter);
    const code = await runChild(self, args, (line, r) => console.log(o.json ? line : tableRow(r)));
    if (code) {
      failed++;
      console.error(`kernels.mjs: the ${t}-thread run exited with code ${code}`);
    }
  }
  if (!o.json && childSuites.length) {
    console.log(
      "\nmatch: max |ours - ref| <= 1e-5 * sqrt(K) * max|ref| (K = terms per output), exact for max pooling." +
        "\ndx/dw rows: 'Nx our fwd' is our backward time over our forward time for that shape (target <= 1.5x).",
    );
  }
  if (o.suites.includes("scaling")) {
    if (!o.json) {
      console.log(`${childSuites.length ? "\n" : ""}Thread scaling — our engines with 1 and ${o.threads.filter((t) => t > 1).join(", ") || "?"} threads in one process, taking turns; median ms per call${o.quick ? " (quick)" : ""}`);
      console.log("speedup = 1-thread ms / N-thread ms; round by round: the median of the ratio within each round; simd peak: the same multiply-adds split over the threads (what the machine gives a second thread now)");
    }
    failed += await scaling(o, (row) => console.log(o.json ? JSON.stringify(row) : scalingLine(row)));
  }
  process.exit(failed ? 1 : 0);
}

// ================================================================ main

await main(parseArgs(process.argv.slice(2)), child, parent);
