// Gradient clipping and the L1 penalty on webgpu (wgsl/clip.wgsl) against the CPU kernels:
// clamping and L1 give the CPU's bits; the norm is summed in f32 on the GPU (per 4096-element
// chunk: 16 values per thread with Kahan's compensation, a fixed 8-level tree, then the chunks in
// order with compensation) where the CPU sums chunks in f64, so norms and clipped gradients agree
// within 2e-6 relative (the tree's 8 roundings), and a rerun gives the same bits. fit() on
// webgpu applies l1, clipGradValue and clipGradNorm as on the CPU, without reading anything back.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { initGpu, runAndExit } from "./gpu_helpers.mjs";
import { fuzzRng } from "./helpers.mjs";

test.before(async () => {
  await initGpu(sn);
});

/** Parameters with gradients on the CPU and their copies on webgpu. Sizes cross the 4096 chunk
 *  and the 256 workgroup, and are not multiples of either. */
function paramsWithGrads(seed, sizes = [5, 300, 4096, 4097, 9001], scale = 1, poison = null) {
  const rnd = fuzzRng(seed);
  const cpu = sizes.map((n) => {
    const p = sn.tensor(Array.from({ length: n }, () => rnd() * 2 - 1), [n]);
    const g = Array.from({ length: n }, () => (rnd() * 2 - 1) * scale);
    if (poison !== null && n > 300) g[n >> 1] = poison;
    p.grad = sn.tensor(g, [n]);
    return p;
  });
  const gpu = cpu.map((p) => {
    const q = p.to("webgpu");
    q.grad = p.grad.to("webgpu");
    return q;
  });
  return { cpu, gpu };
}

const relClose = (a, b, rel) => Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b)) || (Number.isNaN(a) && Number.isNaN(b)) || a === b;

for (const normType of [2, 1, Infinity])
  for (const [maxNorm, what] of [[0.5, "clips"], [1e9, "leaves alone"]])
    test(`clipGradNormTensor on webgpu, ${normType}-norm, ${what}: the CPU's norm and gradients within 2e-6; a rerun gives the same bits`, async () => {
      const { cpu, gpu } = paramsWithGrads(normType === Infinity ? 9 : normType * 7 + (maxNorm > 1 ? 1 : 0));
      const twin = paramsWithGrads(normType === Infinity ? 9 : normType * 7 + (maxNorm > 1 ? 1 : 0)).gpu;
      const want = sn.clipGradNorm(cpu, maxNorm, normType);
      const norm = sn.clipGradNormTensor(gpu, maxNorm, normType);
      assert.is(norm.device, "webgpu");
      assert.equal(norm.shape, []);
      const got = (await norm.read())[0];
      assert.ok(relClose(want, got, 2e-6), `norm ${got} on webgpu, ${want} on the CPU`);
      const rerun = sn.clipGradNormTensor(twin, maxNorm, normType);
      assert.is((await rerun.read())[0], got, "the same norm on a rerun");
      for (let i = 0; i < cpu.length; i++) {
        const a = cpu[i].grad.toArray(), b = await gpu[i].grad.read(), c = await twin[i].grad.read();
        assert.equal(Array.from(c), Array.from(b), `parameter ${i}: the same bits on a rerun`);
        if (maxNorm > 1) assert.equal(Array.from(b), Array.from(a), `parameter ${i}: untouched`);
        else for (let j = 0; j < a.length; j++) if (!relClose(a[j], b[j], 2e-6)) assert.unreachable(`parameter ${i}[${j}]: ${b[j]} on webgpu, ${a[j]} on the CPU`);
      }
    });

test("clipGradNormTensor on webgpu: a NaN gradient gives a NaN norm that spreads to every gradient (torch); an infinite one gives coefficient 0", async () => {
  for (const [poison, check] of [[NaN, (v) => Number.isNaN(v)], [Infinity, (v) => v === 0 || Number.isNaN(v)]]) {
    const { cpu, gpu } = paramsWithGrads(3, [5, 4097], 1, poison);
    const want = sn.clipGradNorm(cpu, 1);
    const got = (await sn.clipGradNormTensor(gpu, 1).read())[0];
    assert.ok(Object.is(want, got) || (Number.isNaN(want) && Number.isNaN(got)), `${poison}: norm ${got} on webgpu, ${want} on the CPU`);
    for (let i = 0; i < 2; i++) {
      const a = cpu[i].grad.toArray(), b = await gpu[i].grad.read();
      for (let j = 0; j < a.length; j++) assert.ok(Object.is(a[j], b[j]) || (check(a[j]) && check(b[j])), `${poison}: parameter ${i}[${j}]: ${b[j]} vs ${a[j]}`);
    }
  }
});

test("clipGradValue and addL1Grad on webgpu give the CPU's bits (NaN kept, sign(0) = 0)", async () => {
  const { cpu, gpu } = paramsWithGrads(11, [300, 4097], 3, NaN);
  // zero weights: sign(0) adds nothing
  const w = sn.tensor([0, 1, -1, 0, 2], [5]);
  w.grad = sn.tensor([0.5, -2, 0.1, NaN, -0.3], [5]);
  const wg = w.to("webgpu");
  wg.grad = w.grad.to("webgpu");
  cpu.push(w);
  gpu.push(wg);
  sn.clipGradValue(cpu, 0.7);
  sn.clipGradValue(gpu, 0.7);
  sn.addL1Grad(cpu, 0.01);
  sn.addL1Grad(gpu, 0.01);
  for (let i = 0; i < cpu.length; i++) {
    const a = cpu[i].grad.toArray(), b = await gpu[i].grad.read();
    assert.equal(Array.from(b).map(String), Array.from(a).map(String), `parameter ${i}`);
  }
  assert.equal(Array.from(w.grad.toArray()).map((v) => +v.toFixed(6)), [0.5, -0.69, 0.09, NaN, -0.29].map((v) => +v.toFixed(6)));
});

test("clipGradNorm (a number) on webgpu gradients says to use clipGradNormTensor; mixed devices are an error", () => {
  const { cpu, gpu } = paramsWithGrads(5, [5, 6]);
  assert.throws(() => sn.clipGradNorm(gpu, 1), /clipGradNorm: the gradients are on webgpu, where returning the norm as a number would make every step wait for the GPU; clipGradNormTensor/);
  assert.throws(() => sn.clipGradNormTensor([cpu[0], gpu[1]], 1), /clipGradNormTensor: some gradients are on webgpu and some on the cpu/);
  assert.throws(() => sn.clipGradValue([cpu[0], gpu[1]], 1), /clipGradValue: some gradients are on webgpu and some on the cpu/);
  assert.throws(() => sn.clipGradNormTensor(gpu, -1), /clipGradNormTensor: maxNorm must be a finite number >= 0, got -1/);
  // on the CPU it returns a 0-d CPU tensor with clipGradNorm's value
  const twin = paramsWithGrads(5, [5, 6]).cpu;
  const t = sn.clipGradNormTensor(cpu, 0.1);
  assert.is(t.device, "cpu");
  assert.is(t.item(), sn.clipGradNorm(twin, 0.1));
});

test("fit on webgpu with l1, clipGradValue and clipGradNorm follows the CPU run, and a step reads nothing back", async () => {
  const digits = await sn.loadMnistDigits();
  const train = digits.train.slice(0, 64);
  const opts = { epochs: 1, batchSize: 32, lr: 0.05, momentum: 0.9, seed: 4, logEvery: 2, l1: 1e-4, clipGradValue: 0.05, clipGradNorm: 0.5 };
  const model = () => {
    sn.manualSeed(2);
    return sn.models.lenet({ classes: 10 });
  };
  const mc = model(), mg = model();
  const c = await sn.fit(mc, train, { ...opts, device: "cpu" });
  const stats = sn.gpuEngine().stats;
  const readsBefore = [];
  const g = await sn.fit(mg, train, { ...opts, device: "webgpu", callbacks: { onBatchEnd: () => readsBefore.push(stats.bytesRead) } });
  const rc = c.history[0], rg = g.history[0];
  assert.ok(Math.abs(rc.loss - rg.loss) <= 1e-4 * Math.max(1, rc.loss), `loss ${rg.loss} on webgpu, ${rc.loss} on the CPU`);
  // the metrics are read every logEvery = 2 steps, not after the first
  assert.ok(readsBefore.length === 2);
  const wc = mc.stateDict(), wg = mg.stateDict();
  for (const [k, t] of wc) {
    const a = t.toArray(), b = await wg.get(k).read();
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    assert.ok(worst < 1e-4, `${k}: differs by ${worst}`);
  }
});

runAndExit(sn);
