#!/usr/bin/env node
// Training speed of the lecture's LeNet (conv 20@5x5 pad 2, ReLU, max-pool 2, conv 50@5x5 pad 2,
// ReLU, max-pool 2, Linear 2450->500, ReLU, Linear 500->10), batch 64, on the MNIST digits:
// images per second of whole steps (forward, cross-entropy, backward, plain SGD lr 0.01),
// median over timed steps after warm-up, for 1 and 2 threads; then TF.js's wasm backend on the
// same network and step (bench/train_tfjs_lenet.mjs) and the ratio.
//
//   node bench/train_lenet.mjs [--threads 1,2] [--steps 30] [--warmup 5] [--no-tfjs] [--json]
import * as sn from "../dist/index.js";

const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const threadsList = String(opt("threads", "1,2")).split(",").map(Number);
const timed = Number(opt("steps", 30)), warmup = Number(opt("warmup", 5)), batch = 64;
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const { train } = await sn.loadMnistDigits();
const rows = [];
for (const threads of threadsList) {
  const info = await sn.init({ threads });
  sn.manualSeed(0);
  const model = sn.models.lenet();
  const sgd = sn.createOptimizer("sgd", model.parameters(), { lr: 0.01 });
  const loader = new sn.DataLoader(train, { batchSize: batch, seed: 0, normalize: { mean: 0.13, std: 0.31 }, dropLast: true });
  const times = [];
  let step = 0, first = NaN, last = NaN;
  outer: for (;;)
    for (const b of loader) {
      const t0 = performance.now();
      last = sn.tidy(() => {
        sgd.zeroGrad(true); // as fit() does: backward writes the gradients
        const l = sn.cross_entropy(model.forward(b.x), b.y);
        l.backward();
        sgd.step();
        return l.item();
      });
      if (step === 0) first = last;
      if (step++ >= warmup) times.push(performance.now() - t0);
      if (times.length === timed) break outer;
    }
  const ms = median(times);
  rows.push({ runtime: "simdnet", threads: info.threads, build: info.build, ms, imagesPerSec: (batch * 1000) / ms, firstLoss: first, lastLoss: last });
  loader.dispose();
  sn.dispose();
}

let tfjs = null;
if (!argv.includes("--no-tfjs")) {
  try {
    const { tfjsLenetBench } = await import("./train_tfjs_lenet.mjs");
    const r = await tfjsLenetBench({ batch, warmup, batches: timed });
    tfjs = { runtime: "tfjs-wasm", threads: r.threads, build: "xnnpack", ms: r.msPerBatch, imagesPerSec: r.imagesPerSec, firstLoss: r.firstLoss, lastLoss: r.lastLoss };
    rows.push(tfjs);
  } catch (e) {
    console.error(`(TF.js side skipped: ${e.message})`);
  }
}

if (argv.includes("--json")) console.log(JSON.stringify({ bench: "train_lenet", batch, steps: timed, warmup, rows }));
else {
  console.log(`LeNet training, batch ${batch}, plain SGD: median of ${timed} steps after ${warmup} warm-up steps`);
  console.log("runtime     threads  build      ms/step  images/s  vs TF.js   loss first -> last");
  for (const r of rows)
    console.log(
      `${r.runtime.padEnd(10)}  ${String(r.threads).padStart(7)}  ${r.build.padEnd(9)}  ${r.ms.toFixed(1).padStart(7)}  ${r.imagesPerSec.toFixed(0).padStart(8)}  ${tfjs ? (r.imagesPerSec / tfjs.imagesPerSec).toFixed(2).padStart(6) + "x" : "      -"}   ${r.firstLoss.toFixed(3)} -> ${r.lastLoss.toFixed(3)}`,
    );
  const ours = rows.filter((r) => r.runtime === "simdnet");
  if (ours.length > 1) console.log(`simdnet ${ours[ours.length - 1].threads} threads vs ${ours[0].threads}: ${(ours[ours.length - 1].imagesPerSec / ours[0].imagesPerSec).toFixed(2)}x`);
}
