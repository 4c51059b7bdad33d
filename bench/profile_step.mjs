#!/usr/bin/env node
// Where a LeNet training step spends its time: the lecture's LeNet (conv 20@5x5 pad 2, ReLU,
// max-pool 2, conv 50@5x5 pad 2, ReLU, max-pool 2, Linear 2450->500, ReLU, Linear 500->10),
// batch 64, softmax cross-entropy, SGD with momentum 0.9. Every engine.run is wrapped with a
// clock, so each kernel's time per step is known; what is left of the step ("js") is the
// autograd, the ops' argument checks and allocation.
//
// Each thread count has its own engine (one instance of the bundle per engine) and the engines
// take turns step by step, so load from other processes hits them alike. Medians over steps.
// "process CPU" is the CPU time of the whole process during the step (all threads, their
// spinning included): on a loaded machine it moves less than the wall time.
//
//   node bench/profile_step.mjs [--threads 1,2] [--steps 40] [--warmup 5] [--detail]
//                               [--dispatch] [--json]
//   --detail: one row per call site (e.g. the two conv2d_fwd calls apart)
//   --dispatch: also time an empty pool round trip (a kernel with no work on every thread)
//   --set-to-none: zeroGrad(true) (drop the gradients, as torch's set_to_none) instead of
//                  filling them with zeros; --both: one engine of each kind per thread count
//   --cpu: time each kernel by the process's CPU time instead of the clock (moves less on a
//          loaded machine; with threads it is the CPU of all of them, waiting included)
//   --compare PATH: also profile another build of the library (PATH to its dist/index.js, e.g.
//                  a checkout of an older commit), its engines taking turns with ours
const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const threadsList = String(opt("threads", "1,2")).split(",").map(Number);
const steps = Number(opt("steps", 40)), warmup = Number(opt("warmup", 5));
const detail = argv.includes("--detail"), json = argv.includes("--json");
const both = argv.includes("--both"), cpuClock = argv.includes("--cpu");
const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
const clock = cpuClock ? cpuMs : () => performance.now();
const noneModes = both ? [false, true] : [argv.includes("--set-to-none")];
const compare = opt("compare", null);
const bundles = [["this", new URL("../dist/index.js", import.meta.url).href]];
if (compare) bundles.push(["compared", new URL(compare, `file://${process.cwd()}/`).href]);
const batch = 64;
const median = (a) => {
  if (!a.length) return 0;
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Deterministic inputs: MNIST-like scale, uniform in [0, 1) normalised, labels 0..9. */
function batches(sn, count) {
  let s = 12345;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const out = [];
  for (let b = 0; b < count; b++) {
    const x = new Float32Array(batch * 28 * 28).map(() => (next() - 0.13) / 0.31);
    const y = new Float32Array(batch).map(() => Math.floor(next() * 10));
    out.push({ x: sn.tensor(x, [batch, 1, 28, 28]), y: sn.tensor(y, [batch]) });
  }
  return out;
}

/** One engine, its model and optimiser, and a clock around engine.run. */
async function setup(bundle, threads, setToNone) {
  const sn = await import(`${bundle[1]}?threads=${threads}&none=${setToNone}`);
  const info = await sn.init({ threads });
  const eng = sn.engine();
  sn.manualSeed(0);
  const model = sn.models.lenet();
  const opt = new sn.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const data = batches(sn, 4);
  // per step: kernel -> ms, and call site (kernel #k-th call of it in the step) -> ms
  let cur = null;
  const orig = eng.run.bind(eng);
  eng.run = (name, args, work) => {
    const t0 = clock();
    orig(name, args, work);
    const dt = clock() - t0;
    if (!cur) return;
    cur.kern[name] = (cur.kern[name] ?? 0) + dt;
    const n = (cur.count[name] = (cur.count[name] ?? 0) + 1);
    cur.site[`${name} #${n}`] = dt;
  };
  const rec = [];
  let i = 0;
  const step = (timed) => {
    const b = data[i++ % data.length];
    cur = { kern: {}, count: {}, site: {} };
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    sn.tidy(() => {
      opt.zeroGrad(setToNone);
      const l = sn.cross_entropy(model.forward(b.x), b.y);
      l.backward();
      opt.step();
      return l.item();
    });
    cur.total = performance.now() - t0;
    const c1 = process.cpuUsage(c0);
    cur.cpu = (c1.user + c1.system) / 1000; // the whole process: every thread, spinning included
    if (timed) rec.push(cur);
    cur = null;
  };
  return { sn, info, eng, orig, step, rec, setToNone, label: bundle[0] };
}

const runs = [];
for (const t of threadsList) for (const none of noneModes) for (const b of bundles) runs.push(await setup(b, t, none));
for (let s = 0; s < warmup + steps; s++) for (const r of runs) r.step(s >= warmup);

const report = runs.map((r) => {
  const total = median(r.rec.map((x) => x.total));
  const keys = (f) => [...new Set(r.rec.flatMap((x) => Object.keys(x[f])))];
  const rows = (f) =>
    keys(f)
      .map((k) => ({ k, ms: median(r.rec.map((x) => x[f][k] ?? 0)), calls: median(r.rec.map((x) => (f === "kern" ? x.count[k] : 1) ?? 0)) }))
      .sort((a, b) => b.ms - a.ms);
  const kern = rows("kern");
  const inKernels = median(r.rec.map((x) => Object.values(x.kern).reduce((a, b) => a + b, 0)));
  const cpu = median(r.rec.map((x) => x.cpu));
  return { build: r.label, threads: r.info.threads, wasm: r.info.build, setToNone: r.setToNone, msPerStep: total, imagesPerSec: (batch * 1000) / total, cpuMsPerStep: cpu, inKernels, kernels: kern, sites: detail ? rows("site") : undefined };
});

// An empty pool round trip: publish a job, every thread runs a kernel with no work, wait.
let dispatch = null;
if (argv.includes("--dispatch")) {
  dispatch = runs.map((r) => {
    const buf = r.eng.alloc(64);
    const time = (work) => {
      const xs = [];
      for (let k = 0; k < 2000; k++) {
        const t0 = performance.now();
        r.orig("f32_fill", [buf, 0, 0], work);
        xs.push(performance.now() - t0);
      }
      return median(xs) * 1000;
    };
    time(Infinity);
    const res = { threads: r.info.threads, callerAloneUs: time(0), poolUs: time(Infinity) };
    r.eng.release(buf);
    return res;
  });
}

if (json) console.log(JSON.stringify({ bench: "profile_step", batch, steps, warmup, report, dispatch }));
else {
  console.log(`LeNet step, batch ${batch}, SGD momentum 0.9: medians of ${steps} steps after ${warmup} warm-up, engines taking turns${cpuClock ? "; kernels timed by CPU time" : ""}`);
  for (const r of report) {
    console.log(`\n${compare ? `${r.build} build, ` : ""}${r.threads} thread(s), ${r.wasm}${r.setToNone ? ", zeroGrad(setToNone)" : ""}: ${r.msPerStep.toFixed(1)} ms/step, ${r.imagesPerSec.toFixed(0)} images/s (kernels ${r.inKernels.toFixed(1)} ms, js ${((cpuClock ? r.cpuMsPerStep : r.msPerStep) - r.inKernels).toFixed(1)} ms; process CPU ${r.cpuMsPerStep.toFixed(1)} ms)`);
    for (const k of r.kernels) console.log(`  ${k.k.padEnd(32)} ${k.ms.toFixed(2).padStart(7)} ms  ${String(k.calls).padStart(3)} calls`);
    if (r.sites) {
      console.log("  call sites:");
      for (const k of r.sites) console.log(`    ${k.k.padEnd(34)} ${k.ms.toFixed(2).padStart(7)} ms`);
    }
  }
  if (dispatch) {
    console.log("\nempty kernel round trip (median of 2000):");
    for (const d of dispatch) console.log(`  ${d.threads} thread(s): caller alone ${d.callerAloneUs.toFixed(1)} us, whole pool ${d.poolUs.toFixed(1)} us`);
  }
}
for (const r of runs) r.sn.dispose();
