#!/usr/bin/env node
// Whole networks with each 3x3 path (engine.conv3x3): inference time and the logits' error
// against the exact im2col path (max |logits - im2col's| / max |im2col's|), and a CIFAR
// ResNet-20 training step's images/s. The paths take turns (timeInterleaved), so load from
// elsewhere hits them alike. docs/performance.md keeps the results.
//
//   node bench/winograd_nets.mjs [--quick] [--threads 1,2] [--nets resnet18,vgg11,resnet20,train]
import * as sn from "../dist/index.js";
import { randn, timeInterleaved } from "./harness.mjs";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const opt = (k, d) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
const threadsList = opt("--threads", "1,2").split(",").map(Number);
const nets = opt("--nets", "resnet18,vgg11,resnet20,train").split(",");
const modes = ["im2col", "auto", "winograd4"];

const inference = {
  resnet18: () => [sn.models.resnet18(), [1, 3, 224, 224]],
  vgg11: () => [sn.models.vgg11(), [1, 3, 224, 224]],
  resnet20: () => [sn.models.resnet20(), [128, 3, 32, 32]],
};

const relErr = (a, b) => {
  let e = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    e = Math.max(e, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return e / m;
};

for (const threads of threadsList) {
  await sn.init({ threads });
  const eng = sn.engine();
  console.log(`\n${threads} thread(s), build ${eng.info.build}`);
  for (const name of nets.filter((n) => inference[n])) {
    sn.manualSeed(1);
    const [model, shape] = inference[name]();
    model.eval();
    const x = sn.tensor(randn(shape.reduce((a, b) => a * b, 1), 7), shape);
    const logits = {};
    for (const m of modes) {
      eng.conv3x3 = m;
      sn.tidy(() => sn.noGrad(() => (logits[m] = model.forward(x).toArray())));
    }
    // tidy: the intermediate tensors freed at once, not left to the garbage collector
    const runners = modes.map((m) => ({ run: () => sn.tidy(() => sn.noGrad(() => { eng.conv3x3 = m; model.forward(x); })) }));
    const times = await timeInterleaved(runners, { quick });
    for (const r of runners) if (r.failed) throw r.failed;
    // on one thread, the process's CPU time too (less moved by other load)
    const cpu = (i) => (threads === 1 ? ` (CPU ${runners[i].cpuMs.toFixed(1)})` : "");
    console.log(`${name} ${shape.join("x")} inference ms: ` + modes.map((m, i) => `${m} ${times[i].toFixed(1)}${cpu(i)}`).join(", ") +
      ` | logits error vs im2col: auto ${relErr(logits.auto, logits.im2col).toExponential(1)}, winograd4 ${relErr(logits.winograd4, logits.im2col).toExponential(1)}`);
  }
  if (nets.includes("train")) {
    // one SGD step of CIFAR ResNet-20 at batch 128 (forward, cross-entropy, backward, step)
    sn.manualSeed(1);
    const model = sn.models.resnet20();
    model.train();
    const opt = new sn.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
    const x = sn.tensor(randn(128 * 3 * 32 * 32, 3), [128, 3, 32, 32]);
    const labels = sn.tensor(Float32Array.from({ length: 128 }, (_, i) => i % 10), [128]);
    const step = (m) => ({
      run: () =>
        sn.tidy(() => {
          eng.conv3x3 = m;
          opt.zeroGrad();
          const loss = sn.cross_entropy(model.forward(x), labels);
          loss.backward();
          opt.step();
        }),
    });
    const runners = ["im2col", "auto"].map(step);
    const times = await timeInterleaved(runners, { quick }, { budgetMs: quick ? 4000 : 15000 });
    for (const r of runners) if (r.failed) throw r.failed;
    const cpu = (i) => (threads === 1 ? ` (by CPU time ${(128000 / runners[i].cpuMs).toFixed(0)})` : "");
    console.log(`resnet20 training, batch 128: images/s im2col ${(128000 / times[0]).toFixed(0)}${cpu(0)}, auto ${(128000 / times[1]).toFixed(0)}${cpu(1)}`);
  }
  eng.conv3x3 = "auto";
}
process.exit(0);
