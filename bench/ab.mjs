#!/usr/bin/env node
// Two builds of the library in one process, taking turns: whole-net steps and single layers,
// the median of the per-pair time ratios, and whether the two give the same bits. This is how
// a kernel change is judged on a machine whose speed drifts by a third within minutes
// (docs/performance.md): runs in separate processes minutes apart mislead; pairs taken one
// after the other do not, and the ratio of each pair cancels most of the drift.
//
//   node bench/ab.mjs --base PATH [--threads 2] [--only NAME,...] [--seconds 20] [--nap MS]
//   --base PATH: the other build's dist/index.js (e.g. a `git worktree` of an older commit,
//                built with `node tools/build.mjs`); this checkout's dist/index.js is "this"
//   --only: a comma list of workload names (substrings; default: all)
// (bench/profile_step.mjs --compare does the same kernel by kernel for LeNet's step; this is for
// whole nets and single layers, ratio by ratio.)
//   --nap MS: sleep (Atomics.wait, not a busy wait) before each timed call, so that both
//             builds start with their workers asleep, as after user code (default 3)
// Both engines get the relaxed build (where the runtime has it), so the comparison is the code's.
// Prints, per workload: each build's median ms and the median of (base ms / this ms): > 1 means
// this checkout is faster.
import v8 from "node:v8";
import { randn, median } from "./harness.mjs";
v8.setFlagsFromString("--experimental-wasm-relaxed-simd");

const argv = process.argv.slice(2);
const opt = (name, def) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : def);
const known = new Set(["--base", "--threads", "--only", "--seconds", "--nap"]);
for (let i = 0; i < argv.length; i += 2)
  if (!known.has(argv[i])) {
    console.error(`ab.mjs: unknown argument ${argv[i]}\nusage: node bench/ab.mjs --base PATH/dist/index.js [--threads 2] [--only NAME,...] [--seconds 20] [--nap MS]`);
    process.exit(2);
  }
const base = opt("base", null);
if (!base) {
  console.error("ab.mjs: --base PATH (the other build's dist/index.js) is required");
  process.exit(2);
}
const threads = Number(opt("threads", 2)), seconds = Number(opt("seconds", 20)), nap = Number(opt("nap", 3));
const only = opt("only", null)?.split(",");

const rnd = (n, seed = 1) => randn(n, seed);
const size = (shape) => shape.reduce((a, b) => a * b, 1);

/** A training step (zeroGrad, forward, cross-entropy, backward, SGD) of a zoo model; returns the loss. */
const trainStep = (zoo, shape, classes) => (sn) => {
  sn.manualSeed(0);
  const model = sn.createModel(zoo, {});
  model.train();
  const X = sn.tensor(rnd(size(shape)), shape), Y = sn.tensor(Array.from({ length: shape[0] }, (_, i) => (i * 7) % classes), [shape[0]]);
  const opt = sn.createOptimizer("sgd", model.parameters(), { lr: 0.01, momentum: 0.9 });
  return () => sn.tidy(() => {
    opt.zeroGrad(true);
    const loss = sn.cross_entropy(model.call(X), Y);
    loss.backward();
    opt.step();
    return [loss.item()];
  });
};
/** Inference of a zoo model in eval mode; returns the logits. */
const infer = (zoo, shape) => (sn) => {
  sn.manualSeed(0);
  const model = sn.createModel(zoo, {});
  model.eval();
  const X = sn.tensor(rnd(size(shape)), shape);
  return () => sn.noGrad(() => sn.tidy(() => model.call(X).toArray()));
};
/** One conv2d forward (output read back). */
const conv = (xs, ws, o) => (sn) => {
  const x = sn.tensor(rnd(size(xs)), xs), w = sn.tensor(rnd(size(ws), 2), ws);
  return () => sn.noGrad(() => sn.tidy(() => sn.conv2d(x, w, null, o).toArray()));
};
/** One conv2d input gradient (conv2d_input; output read back): the backward's other kernels. */
const convInput = (xs, ws, o) => (sn) => {
  const w = sn.tensor(rnd(size(ws), 2), ws), dy = sn.tensor(rnd(xs[0] * ws[0] * xs[2] * xs[3], 3), [xs[0], ws[0], xs[2], xs[3]]);
  return () => sn.tidy(() => sn.conv2d_input(xs, w, dy, o).toArray());
};
/** One conv2d weight gradient (conv2d_weight; output read back). */
const convWeight = (xs, ws, o) => (sn) => {
  const x = sn.tensor(rnd(size(xs)), xs), dy = sn.tensor(rnd(xs[0] * ws[0] * xs[2] * xs[3], 3), [xs[0], ws[0], xs[2], xs[3]]);
  return () => sn.tidy(() => sn.conv2d_weight(x, ws, dy, o).toArray());
};
/** One square SGEMM (output read back). */
const sgemm = (n) => (sn) => {
  const a = sn.tensor(rnd(n * n), [n, n]);
  return () => sn.tidy(() => sn.matmul(a, a).toArray());
};

const WORKLOADS = [
  ["resnet20-b128 train", trainStep("resnet20", [128, 3, 32, 32], 10)],
  ["resnet18-b16 train", trainStep("resnet18", [16, 3, 224, 224], 1000)],
  ["resnet50-b8 train", trainStep("resnet50", [8, 3, 224, 224], 1000)],
  ["resnet18-b1 infer", infer("resnet18", [1, 3, 224, 224])],
  ["resnet50-b1 infer", infer("resnet50", [1, 3, 224, 224])],
  ["lenet-b64 train", trainStep("lenet", [64, 1, 28, 28], 10)],
  ["alexnet-b1 infer", infer("alexnet", [1, 3, 227, 227])],
  ["vgg16-b1 infer", infer("vgg16", [1, 3, 224, 224])],
  ["conv 64@56² 3x3 b1", conv([1, 64, 56, 56], [64, 64, 3, 3], { padding: 1 })],
  ["conv 16@32² 3x3 b32", conv([32, 16, 32, 32], [16, 16, 3, 3], { padding: 1 })],
  ["conv dx 16@32² 3x3 b128", convInput([128, 16, 32, 32], [16, 16, 3, 3], { padding: 1 })],
  ["conv dW 16@32² 3x3 b128", convWeight([128, 16, 32, 32], [16, 16, 3, 3], { padding: 1 })],
  ["conv dx 32@16² 3x3 b128", convInput([128, 32, 16, 16], [32, 32, 3, 3], { padding: 1 })],
  ["conv 256@14² 1x1 -> 1024 b1", conv([1, 256, 14, 14], [1024, 256, 1, 1], {})],
  ["conv stem 7x7 s2 b1", conv([1, 3, 224, 224], [64, 3, 7, 7], { stride: 2, padding: 3 })],
  ["sgemm 512", sgemm(512)],
];

const thisBuild = new URL("../dist/index.js", import.meta.url).href;
const baseBuild = new URL(base, `file://${process.cwd()}/`).href;
const libs = [await import(`${baseBuild}?base`), await import(`${thisBuild}?this`)];
for (const sn of libs) await sn.init({ threads, build: "relaxed" });
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sameBits = (a, b) => a.length === b.length && Array.prototype.every.call(a, (v, i) => Object.is(v, b[i]));

console.log(`bench/ab.mjs: base ${base} vs this checkout, ${threads} thread(s), ${seconds} s per workload, pairs taken in turns (the order alternating)`);
console.log("| workload | base ms | this ms | base / this (median of pairs) | pairs | same bits |");
console.log("|---|---|---|---|---|---|");
for (const [name, make] of WORKLOADS) {
  if (only && !only.some((o) => name.includes(o))) continue;
  const runs = libs.map((sn) => make(sn));
  const first = runs.map((r) => r());
  for (let i = 0; i < 2; i++) runs.forEach((r) => r());
  const ms = [[], []], ratios = [];
  const t0 = performance.now();
  for (let pair = 0; performance.now() - t0 < seconds * 1000; pair++) {
    const d = [0, 0];
    // alternate which build goes first, so neither always runs right after the other
    for (const k of pair % 2 ? [1, 0] : [0, 1]) {
      if (nap > 0) Atomics.wait(sleeper, 0, 0, nap);
      const t = performance.now();
      runs[k]();
      d[k] = performance.now() - t;
      ms[k].push(d[k]);
    }
    ratios.push(d[0] / d[1]);
  }
  console.log(`| ${name} | ${median(ms[0]).toFixed(2)} | ${median(ms[1]).toFixed(2)} | ${median(ratios).toFixed(3)}x | ${ratios.length} | ${sameBits(first[0], first[1]) ? "yes" : "NO"} |`);
}
for (const sn of libs) sn.dispose();
