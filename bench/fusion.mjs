#!/usr/bin/env node
// Fused inference (src/nn/fusion.ts) against the same model unfused, call by call in one
// process, so that load from elsewhere hits both alike: ResNet-18 and ResNet-50 at batch 1,
// 3x224x224, eval mode, noGrad. Prints the median and the fastest call of each, checks that the
// logits have the same bits, and with --profile the time of the ops fusion removes.
// --train: training steps instead (SGD with momentum; two copies of the model from one seed, one
// stepped fused and one unfused, step by step in turns): CIFAR ResNet-20 at batch 128 and LeNet
// at batch 64 by default (resnet18: batch 16 on 224x224), the median and fastest step, the
// memory a forward keeps for backward, and whether every step's loss has the same bits.
//
//   node bench/fusion.mjs [--threads 2] [--reps 15] [--only resnet18,resnet50] [--size 224] [--profile]
//   node bench/fusion.mjs --train [--threads 2] [--reps 10] [--only resnet20,lenet,resnet18]
import * as sn from "../dist/index.js";
import { randn, median } from "./harness.mjs";

const o = { threads: 2, reps: 15, only: null, size: 224, profile: false, train: false };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === "--profile") o.profile = true;
  else if (a === "--train") o.train = true;
  else if (a === "--threads") o.threads = Number(process.argv[++i]);
  else if (a === "--reps") o.reps = Number(process.argv[++i]);
  else if (a === "--size") o.size = Number(process.argv[++i]);
  else if (a === "--only") o.only = process.argv[++i].split(",");
  else {
    console.error("usage: node bench/fusion.mjs [--train] [--threads N] [--reps N] [--only resnet18,resnet50] [--size N] [--profile]");
    process.exit(a === "--help" || a === "-h" ? 0 : 2);
  }
}

await sn.init({ threads: o.threads });
const eng = sn.engine();
if (o.train) {
  await trainSteps();
  process.exit(0);
}
o.only ??= ["resnet18", "resnet50"];
console.log(`threads ${eng.info.threads}, build ${eng.info.build}, ${o.reps} calls each, alternating fused / unfused (ms)`);
console.log("| net      | mode    | median ms | fastest ms | logits    |\n|----------|---------|-----------|------------|-----------|");
for (const name of o.only) {
  sn.manualSeed(1);
  const model = sn.createModel(name).eval();
  const shape = [1, 3, o.size, o.size];
  const x = sn.tensor(randn(shape.reduce((a, b) => a * b, 1), 7), shape);
  const call = (fuse) => {
    eng.fuse = fuse;
    const t0 = performance.now();
    const y = sn.noGrad(() => sn.tidy(() => model.forward(x).toArray()));
    return { ms: performance.now() - t0, y };
  };
  for (let i = 0; i < 3; i++) call(true), call(false); // warm up (packs, tier-up)
  const t = { true: [], false: [] };
  let same = true;
  for (let i = 0; i < o.reps; i++)
    for (const fuse of i % 2 ? [false, true] : [true, false]) {
      const r = call(fuse);
      t[fuse].push(r.ms);
      if (fuse) {
        const ref = call(false).y; // not timed
        same &&= r.y.every((v, k) => Object.is(v, ref[k]));
      }
    }
  const f = (xs) => `${median(xs).toFixed(1).padStart(9)} | ${Math.min(...xs).toFixed(1).padStart(10)}`;
  console.log(`| ${name.padEnd(8)} | fused   | ${f(t.true)} | ${same ? "same bits" : "DIFFER   "} |`);
  console.log(`| ${name.padEnd(8)} | unfused | ${f(t.false)} |           |`);
  if (o.profile) {
    // op time per call, summed over 5 profiled calls of each, alternating
    const by = { true: {}, false: {} };
    for (let i = 0; i < 10; i++) {
      const fuse = i % 2 === 0;
      eng.fuse = fuse;
      const p = sn.profile(() => sn.noGrad(() => sn.tidy(() => void model.forward(x))), { peak: false });
      for (const r of p.ops) by[fuse][r.op] = (by[fuse][r.op] ?? 0) + r.ms / 5;
    }
    for (const fuse of [false, true]) {
      const rows = Object.entries(by[fuse]).sort((a, b) => b[1] - a[1]);
      const total = rows.reduce((a, [, v]) => a + v, 0);
      console.log(`  ${fuse ? "fused  " : "unfused"} ops ${total.toFixed(2)} ms per call: ` + rows.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", "));
    }
  }
  model.dispose?.();
}
eng.fuse = true;

/** --train: the same training steps fused and unfused (see the top of the file). */
async function trainSteps() {
  const inputs = { resnet20: [128, 3, 32, 32], lenet: [64, 1, 28, 28], resnet18: [16, 3, 224, 224] };
  const reps = o.reps === 15 ? 10 : o.reps;
  console.log(`threads ${eng.info.threads}, build ${eng.info.build}, ${reps} steps each after 2, fused and unfused in turns (ms)`);
  console.log("| net      | mode    | median ms | fastest ms | kept MiB | losses    |\n|----------|---------|-----------|------------|----------|-----------|");
  for (const name of o.only ?? ["resnet20", "lenet"]) {
    const shape = inputs[name];
    if (!shape) throw new Error(`--train: no workload for ${name} (${Object.keys(inputs).join(", ")})`);
    const x = sn.tensor(randn(shape.reduce((a, b) => a * b, 1), 7), shape);
    const y = sn.tensor(Array.from({ length: shape[0] }, (_, i) => i % 10), [shape[0]]);
    const copy = () => {
      sn.manualSeed(1);
      const model = sn.createModel(name).train();
      return { model, opt: sn.createOptimizer("sgd", model.parameters(), { lr: 0.01, momentum: 0.9 }) };
    };
    const runs = { true: copy(), false: copy() };
    const t = { true: [], false: [] }, kept = { true: 0, false: 0 };
    let same = true;
    for (let i = 0; i < reps + 2; i++) {
      const loss = {};
      for (const fuse of i % 2 ? [false, true] : [true, false]) {
        const { model, opt } = runs[fuse];
        eng.fuse = fuse;
        const t0 = performance.now();
        loss[fuse] = sn.tidy(() => {
          opt.zeroGrad(true);
          const before = eng.memoryStats().live;
          const l = sn.cross_entropy(model.forward(x), y);
          kept[fuse] = eng.memoryStats().live - before;
          l.backward();
          opt.step();
          return l.item();
        });
        if (i >= 2) t[fuse].push(performance.now() - t0);
      }
      same &&= Object.is(loss.true, loss.false);
    }
    const f = (fuse) => `${median(t[fuse]).toFixed(1).padStart(9)} | ${Math.min(...t[fuse]).toFixed(1).padStart(10)} | ${(kept[fuse] / 2 ** 20).toFixed(1).padStart(8)}`;
    console.log(`| ${name.padEnd(8)} | fused   | ${f(true)} | ${same ? "same bits" : "DIFFER   "} |`);
    console.log(`| ${name.padEnd(8)} | unfused | ${f(false)} |           |`);
  }
  eng.fuse = true;
}
