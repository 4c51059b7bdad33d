// The WebGPU engine from the public API: init's report, moving tensors and models, reading back,
// clear errors for what cannot work on the GPU, the optimisers' updates against the CPU's, the
// memory and submit behaviour a training loop relies on, and recovery from a lost device.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { compare, sameBits, uniformValues } from "./helpers.mjs";
import { initGpu, runAndExit } from "./gpu_helpers.mjs";

test.before(async () => {
  await initGpu(sn);
});

test("init({ webgpu: true }) reports the adapter, whether it is a fallback, and its limits", async () => {
  const info = await initGpu(sn);
  assert.ok(info.webgpu.available);
  assert.type(info.webgpu.adapter, "string");
  assert.type(info.webgpu.isFallback, "boolean");
  assert.ok(info.webgpu.limits.maxStorageBufferBindingSize >= 128 * 2 ** 20);
  assert.ok(info.threads >= 1, "the CPU engine starts as well");
});

test("init() without webgpu: no GPU engine, and .to('webgpu') says what to call", async () => {
  const info = await sn.init({ threads: 1 });
  assert.is(info.webgpu, undefined);
  assert.throws(() => sn.tensor([1, 2]).to("webgpu"), /init\(\{ webgpu: true \}\)/);
  assert.throws(() => sn.gpuEngine(), /init\(\{ webgpu: true \}\)/);
  await initGpu(sn);
});

test("t.to('webgpu') copies; await t.read() and await t.cpu() bring values back; device is reported", async () => {
  const v = uniformValues(1000, 1);
  const x = sn.tensor(v, [10, 100]);
  const g = x.to("webgpu");
  assert.is(x.device, "cpu");
  assert.is(g.device, "webgpu");
  assert.equal([...g.shape], [10, 100]);
  sameBits("read", await g.read(), v);
  const back = await g.cpu();
  assert.is(back.device, "cpu");
  sameBits("cpu()", back.toArray(), v);
  assert.is(g.to("webgpu"), g, "to() the same device returns the tensor itself");
  sameBits("read of a CPU tensor", await x.read(), v);
});

test("a GPU tensor's synchronous reads throw, naming what to call instead", () => {
  const g = sn.tensor([1, 2, 3]).to("webgpu");
  for (const [what, f] of [["toArray", () => g.toArray()], ["data", () => g.data], ["item", () => sn.tensor([1]).to("webgpu").item()]])
    assert.throws(f, (e) => e.message.startsWith(`${what}:`) && /await t\.read\(\)/.test(e.message), what);
  assert.throws(() => g.to("cpu"), /await t\.cpu\(\)/);
  assert.throws(() => g.to("tpu"), /unknown device "tpu"/);
});

test("an op on tensors on different devices is an error naming both devices; nothing moves", () => {
  const a = sn.tensor([1, 2]), b = sn.tensor([3, 4]).to("webgpu");
  assert.throws(() => sn.add(a, b), /add: inputs are on different devices \(cpu, webgpu/);
  assert.is(a.device, "cpu");
  assert.is(b.device, "webgpu");
});

test("an op with no WebGPU kernel says so by name instead of copying to the CPU", () => {
  const op = sn.defineOp({ name: "test_cpu_only", inputs: ["x"], forward: (ctx, [x]) => sn.empty(x.shape, ctx.engine), noGrad: "test op" });
  assert.throws(() => op.apply([sn.tensor([1]).to("webgpu")]), /test_cpu_only: has no WebGPU kernel yet/);
});

test("autograd on the GPU: relu(x + x) backward gives the gradient on the GPU", async () => {
  const x = sn.tensor([-1, 2, -3, 4]).to("webgpu").requireGrad();
  const y = sn.relu(sn.add(x, x));
  y.backward(sn.tensor([1, 1, 1, 1]).to("webgpu"));
  assert.is(x.grad.device, "webgpu");
  assert.equal([...(await x.grad.read())], [0, 2, 0, 2]);
});

test("model.to('webgpu') moves parameters and buffers in place (the same tensors); await model.cpu() brings them back", async () => {
  const m = sn.nn.sequential(new sn.nn.Linear(4, 3), new sn.nn.BatchNorm1d(3));
  const before = m.parameters();
  const values = before.map((p) => p.toArray());
  const bn = m.buffers();
  assert.is(m.to("webgpu"), m);
  assert.is(m.device, "webgpu");
  m.parameters().forEach((p, i) => assert.is(p, before[i], "same tensor object"));
  for (const t of [...m.parameters(), ...m.buffers()]) assert.is(t.device, "webgpu");
  assert.ok(bn.every((b) => b.device === "webgpu"));
  assert.throws(() => m.to("cpu"), /await model\.cpu\(\)/);
  await m.cpu();
  m.parameters().forEach((p, i) => sameBits(`parameter ${i} round trip`, p.toArray(), values[i]));
});

// the optimisers on the GPU against their CPU twins over a few steps (same gradients)
const OPTIMS = [
  ["SGD momentum nesterov wd", (ps) => new sn.SGD(ps, { lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 0.01 })],
  ["SGD plain", (ps) => new sn.SGD(ps, { lr: 0.05 })],
  ["SGD dampening", (ps) => new sn.SGD(ps, { lr: 0.05, momentum: 0.5, dampening: 0.3 })],
  ["Adam amsgrad wd", (ps) => new sn.Adam(ps, { lr: 0.01, amsgrad: true, weight_decay: 0.1 })],
  ["AdamW", (ps) => new sn.AdamW(ps, { lr: 0.01 })],
  ["RMSprop centered momentum", (ps) => new sn.RMSprop(ps, { lr: 0.01, centered: true, momentum: 0.9, weight_decay: 0.01 })],
  ["RMSprop plain", (ps) => new sn.RMSprop(ps, { lr: 0.01 })],
];
for (const [name, make] of OPTIMS)
  test(`optimiser ${name}: 5 steps on webgpu match the CPU's, every parameter of two groups updated in one dispatch a step`, async () => {
    // sizes: a partial workgroup, exactly one, many (the table's rows are found by binary search)
    const sizes = [1031, 5, 256, 70001];
    const pc = sizes.map((n, i) => sn.tensor(uniformValues(n, 7 + i)).requireGrad());
    const pg = sizes.map((n, i) => sn.tensor(uniformValues(n, 7 + i)).to("webgpu").requireGrad());
    // two parameter groups, the second with its own learning rate
    const groups = (ps) => [{ params: ps.slice(0, 2) }, { params: ps.slice(2), lr: 0.003 }];
    const oc = make(groups(pc)), og = make(groups(pg));
    const stats = sn.gpuEngine().stats;
    for (let s = 0; s < 5; s++) {
      sizes.forEach((n, i) => {
        const gv = uniformValues(n, 100 + 10 * s + i);
        pc[i].grad = sn.tensor(gv);
        pg[i].grad = sn.tensor(gv).to("webgpu");
      });
      oc.step();
      const before = stats.dispatches;
      og.step();
      // the first step also makes (zero-fills) the state buffers; after it, one dispatch a step
      if (s > 0) assert.is(stats.dispatches - before, 1, `step ${s + 1}: dispatches`);
    }
    for (let i = 0; i < sizes.length; i++) compare(`${name} parameter ${i}`, await pg[i].read(), pc[i].toArray(), 1e-5, 1e-6);
    const sc = oc.stateDict(), sg = await og.stateDictAsync();
    for (let i = 0; i < sizes.length; i++)
      for (const k of Object.keys(sc.state[i])) if (k !== "step") compare(`${name} ${k} of parameter ${i}`, sg.state[i][k], sc.state[i][k], 1e-5, 1e-6);
    og.zeroGrad();
    assert.equal([...(await pg[0].grad.read())].filter((v) => v !== 0), [], "zeroGrad fills the GPU gradient with zeros");
  });

test("optimiser steps recorded between two submits each read their own argument table (learning rate changed every step)", async () => {
  const make = (dev) => {
    const p = sn.tensor(uniformValues(300, 5)), q = sn.tensor(uniformValues(40, 6));
    const c = sn.tensor(uniformValues(300, 9)), d = sn.tensor(uniformValues(40, 10));
    const on = (t) => (dev === "webgpu" ? t.to("webgpu") : t);
    return { ps: [on(p).requireGrad(), on(q).requireGrad()], cs: [on(c), on(d)] };
  };
  const run = async (dev) => {
    const { ps, cs } = make(dev);
    const opt = new sn.SGD(ps, { lr: 0.1, momentum: 0.5 });
    const g = sn.gpuEngine();
    let before = null;
    for (let s = 0; s < 6; s++) {
      // the first two steps make the two argument tables (an ordered write, which submits)
      if (s === 2) before = { ...g.stats };
      // the gradients come from the GPU itself (no upload, which would submit), and the lr
      // changes, so each step's table differs
      opt.paramGroups[0].lr = 0.1 / (s + 1);
      sn.tidy(() => {
        opt.zeroGrad(true);
        sn.add(sn.sum(sn.relu(sn.add(ps[0], cs[0]))), sn.sum(sn.mul(sn.relu(sn.add(ps[1], cs[1])), 3))).backward();
        opt.step();
      });
    }
    if (dev === "webgpu") {
      // then no step forces a submit: only the engine's one per 16 dispatches
      const submits = g.stats.submits - before.submits, dispatches = g.stats.dispatches - before.dispatches;
      assert.ok(submits <= Math.floor(dispatches / 16) + 1, `${submits} submits for ${dispatches} dispatches in 4 steps`);
    }
    return Promise.all(ps.map((p) => p.read()));
  };
  const want = await run("cpu"), got = await run("webgpu");
  want.forEach((w, i) => compare(`parameter ${i}`, got[i], w, 1e-5, 1e-6));
});

test("optimiser state moves with opt.to('webgpu') and back with await opt.cpu()", async () => {
  const p = sn.tensor([1, 2, 3]).requireGrad();
  const opt = new sn.SGD([p], { lr: 0.1, momentum: 0.9 });
  p.grad = sn.tensor([1, 1, 1]);
  opt.step();
  p._moveToGpuInPlace();
  opt.to("webgpu");
  opt.step();
  assert.throws(() => opt.to("cpu"), /await opt\.cpu\(\)/);
  await p._moveInPlace("cpu");
  await opt.cpu();
  compare("momentum buffer", opt.stateDict().state[0].momentum_buffer, [1.9, 1.9, 1.9], 1e-6, 1e-7);
  compare("parameter", p.toArray(), [0.71, 1.71, 2.71], 1e-6, 1e-6);
});

test("after the first steps a training loop creates no GPU buffer, and submits at most once per 16 dispatches", async () => {
  const g = sn.gpuEngine();
  const x = sn.tensor(uniformValues(4096, 3)).to("webgpu").requireGrad();
  const opt = new sn.SGD([x], { lr: 0.01, momentum: 0.9 });
  const step = () =>
    sn.tidy(() => {
      opt.zeroGrad(true);
      const y = sn.relu(sn.add(x, x));
      y.backward(sn.full([4096], 1, g));
      opt.step();
    });
  step();
  step();
  await x.read(); // the read's staging buffer is made once too
  const before = { ...g.stats };
  for (let i = 0; i < 20; i++) step();
  await x.read();
  assert.is(g.stats.buffersCreated, before.buffersCreated, "buffers created in 20 steps");
  const dispatches = g.stats.dispatches - before.dispatches, submits = g.stats.submits - before.submits;
  assert.ok(dispatches >= 100, `${dispatches} dispatches`);
  assert.ok(submits <= Math.ceil(dispatches / 16) + 1, `${submits} submits for ${dispatches} dispatches`);
});

test("disposing a tensor that a pending dispatch reads is safe (memory is reused in queue order)", async () => {
  const a = sn.tensor(uniformValues(5000, 11)).to("webgpu");
  const b = sn.relu(a);
  a.dispose();
  const c = sn.tensor(new Float32Array(5000).fill(-7)).to("webgpu"); // may reuse a's memory
  const want = uniformValues(5000, 11).map((v) => Math.max(v, 0));
  compare("relu of the disposed input", await b.read(), want, 0, 0);
  assert.ok((await c.read()).every((v) => v === -7));
});

test("the arena grows and keeps every tensor's values", async () => {
  const g = sn.gpuEngine();
  const small = sn.tensor(uniformValues(1000, 5)).to("webgpu");
  const big = sn.zeros([8 * 2 ** 20], g); // 32 MiB: past the first arena
  assert.ok(g.memoryStats().arena >= 32 * 2 ** 20);
  sameBits("small tensor after growth", await small.read(), uniformValues(1000, 5));
  assert.is((await big.read())[8 * 2 ** 20 - 1], 0);
  big.dispose();
});

test("a tensor past the adapter's limit is refused before allocating, naming it and the limit", () => {
  const g = sn.gpuEngine();
  const n = Math.ceil(g.maxBytes / 4) + 1;
  assert.throws(() => sn.empty([n], g), (e) => /out of GPU memory: tensor \[\d+\] needs/.test(e.message) && /maxStorageBufferBindingSize/.test(e.message));
  // the engine still works
  assert.ok(sn.tensor([1]).to("webgpu"));
});

test("a lost device makes GPU calls throw clearly; the CPU engine is unaffected; init() again starts fresh", async () => {
  const x = sn.tensor([1, -1]).to("webgpu");
  sn.gpuEngine().dispose();
  assert.throws(() => sn.relu(x), /disposed|lost/);
  assert.equal([...sn.relu(sn.tensor([1, -1])).toArray()], [1, 0]);
  await initGpu(sn);
  assert.equal([...(await sn.relu(sn.tensor([2, -2]).to("webgpu")).read())], [2, 0]);
});

runAndExit(sn);
