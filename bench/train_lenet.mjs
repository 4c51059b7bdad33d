// Training speed of the lecture's LeNet (conv 20@5x5, pool, conv 50@5x5, pool, 500, 10) at
// batch 64 on the MNIST digits: images per second of whole steps (forward, cross-entropy,
// backward, SGD with momentum), median over timed steps, for 1 and 2 threads (or the counts
// given: node bench/train_lenet.mjs 1 2 4).
import * as sn from "../dist/index.js";

const counts = process.argv.slice(2).map(Number).filter((n) => n > 0);
const threadsList = counts.length ? counts : [1, 2];
const batch = 64, warmup = 5, timed = 30;
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

const { train } = await sn.loadMnistDigits();
const rows = [];
for (const threads of threadsList) {
  const info = await sn.init({ threads });
  sn.manualSeed(0);
  const model = sn.models.lenet();
  const opt = sn.createOptimizer("sgd", model.parameters(), { lr: 0.01, momentum: 0.9 });
  const loader = new sn.DataLoader(train, { batchSize: batch, seed: 0, normalize: { mean: 0.13, std: 0.31 }, dropLast: true });
  const times = [];
  let step = 0, loss = 0;
  outer: for (;;)
    for (const b of loader) {
      const t0 = performance.now();
      loss = sn.tidy(() => {
        opt.zeroGrad();
        const l = sn.cross_entropy(model.forward(b.x), b.y);
        l.backward();
        opt.step();
        return l.item();
      });
      if (step++ >= warmup) times.push(performance.now() - t0);
      if (times.length === timed) break outer;
    }
  const ms = median(times);
  rows.push({ threads: info.threads, build: info.build, ms, ips: (batch * 1000) / ms, loss });
  loader.dispose();
  sn.dispose();
}
console.log(`LeNet training, batch ${batch}, median of ${timed} steps after ${warmup} warm-up steps`);
console.log("threads  build    ms/step  images/s");
for (const r of rows) console.log(`${String(r.threads).padStart(7)}  ${r.build.padEnd(7)}  ${r.ms.toFixed(1).padStart(7)}  ${r.ips.toFixed(0).padStart(8)}`);
if (rows.length > 1) console.log(`speed-up ${rows[rows.length - 1].threads} vs ${rows[0].threads} threads: ${(rows[rows.length - 1].ips / rows[0].ips).toFixed(2)}x`);
