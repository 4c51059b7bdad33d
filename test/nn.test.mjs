// Seeded RNG, initialisers, modules: parameter names and counts, state dicts, freezing,
// configs, errors naming the layer.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
const { nn } = sn;

test.before(async () => {
  await sn.init({ threads: 2 });
});

function stats(a) {
  let s = 0, s2 = 0, max = 0;
  for (const v of a) {
    s += v;
    s2 += v * v;
    max = Math.max(max, Math.abs(v));
  }
  const mean = s / a.length;
  return { mean, std: Math.sqrt(s2 / a.length - mean * mean), max };
}

test("xoshiro128** from state {1,2,3,4} gives the reference sequence 11520, 0, 5927040, 70819200", () => {
  const g = new sn.Generator().setState({ s: [1, 2, 3, 4] });
  assert.equal([g.nextUint32(), g.nextUint32(), g.nextUint32(), g.nextUint32()], [11520, 0, 5927040, 70819200]);
});

test("a generator is reproducible from its seed and resumes from a saved state", () => {
  const a = new sn.Generator(42), b = new sn.Generator(42), c = new sn.Generator(43);
  const xs = Array.from({ length: 10 }, () => a.nextUint32());
  assert.equal(Array.from({ length: 10 }, () => b.nextUint32()), xs);
  assert.not.equal(Array.from({ length: 10 }, () => c.nextUint32()), xs);
  const st = a.getState();
  const next = [a.random(), a.normal(), a.int(7)];
  const d = new sn.Generator(1).setState(JSON.parse(JSON.stringify(st)));
  assert.equal([d.random(), d.normal(), d.int(7)], next);
  assert.throws(() => d.setState({ s: [1, 2, 3] }), /expected \{s: \[four uint32\]\}/);
});

test("fillUniform / fillNormal: the same values and the same state afterwards as uniform() / normal() once per element", () => {
  const bits = (a) => Array.from(new Uint32Array(a.buffer));
  for (const [lo, hi, mean, std] of [[0, 1, 0, 1], [-0.3, 1.7, 0.5, 0.02], [-1e-3, 1e-3, -2, 3]]) {
    const a = new sn.Generator(99), b = new sn.Generator(99);
    for (const n of [0, 1, 5, 1000]) {
      const u = a.fillUniform(new Float32Array(n), lo, hi);
      assert.equal(bits(u), bits(Float32Array.from({ length: n }, () => b.uniform(lo, hi))));
      const z = a.fillNormal(new Float32Array(n), mean, std);
      assert.equal(bits(z), bits(Float32Array.from({ length: n }, () => b.normal(mean, std))));
      assert.equal(a.getState(), b.getState());
    }
  }
  // every word of the state above 2^31 (the fill loops keep it in int32 locals)
  const a = new sn.Generator().setState({ s: [0xffffffff, 0x80000000, 0xdeadbeef, 0x90000001] });
  const b = new sn.Generator().setState(a.getState());
  assert.equal(bits(a.fillNormal(new Float32Array(64))), bits(Float32Array.from({ length: 64 }, () => b.normal())));
  assert.equal(a.getState(), b.getState());
});

test("uniform, int and normal have the right moments", () => {
  const g = new sn.Generator(7);
  const n = 200000;
  const u = Float64Array.from({ length: n }, () => g.random());
  const su = stats(u);
  assert.ok(Math.abs(su.mean - 0.5) < 0.005 && Math.abs(su.std - Math.sqrt(1 / 12)) < 0.003, JSON.stringify(su));
  assert.ok(u.every((v) => v >= 0 && v < 1));
  const z = Float64Array.from({ length: n }, () => g.normal(2, 3));
  const sz = stats(z);
  assert.ok(Math.abs(sz.mean - 2) < 0.03 && Math.abs(sz.std - 3) < 0.03, JSON.stringify(sz));
  const counts = new Array(6).fill(0);
  for (let i = 0; i < 60000; i++) counts[g.int(6)]++;
  assert.ok(counts.every((c) => Math.abs(c - 10000) < 400), String(counts));
  const p = g.permutation(100);
  assert.equal([...p].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
});

test("kaiming/xavier/gaussian: bounds and standard deviations follow PyTorch's fan rules", () => {
  const { init } = nn;
  const w = sn.empty([128, 64, 3, 3]); // fan_in 576, fan_out 1152
  const rng = new sn.Generator(1);
  let s = stats(init.kaimingUniform(w, { nonlinearity: "relu", rng }).data);
  assert.ok(Math.abs(s.std - Math.sqrt(2 / 576)) < 0.01 * Math.sqrt(2 / 576), `kaiming uniform std ${s.std}`);
  assert.ok(s.max <= Math.sqrt(6 / 576) && s.max > 0.99 * Math.sqrt(6 / 576), `kaiming uniform bound ${s.max}`);
  s = stats(init.kaimingNormal(w, { mode: "fan_out", nonlinearity: "relu", rng }).data);
  assert.ok(Math.abs(s.std - Math.sqrt(2 / 1152)) < 0.01 * Math.sqrt(2 / 1152), `kaiming normal fan_out std ${s.std}`);
  s = stats(init.xavierUniform(w, { rng }).data);
  assert.ok(Math.abs(s.std - Math.sqrt(2 / (576 + 1152))) < 0.01 * Math.sqrt(2 / 1728), `xavier uniform std ${s.std}`);
  assert.ok(s.max <= Math.sqrt(6 / 1728));
  s = stats(init.xavierNormal(w, { gain: init.calculateGain("tanh"), rng }).data);
  assert.ok(Math.abs(s.std - (5 / 3) * Math.sqrt(2 / 1728)) < 0.01 * (5 / 3) * Math.sqrt(2 / 1728), `xavier normal std ${s.std}`);
  s = stats(init.gaussian(w, 0.01, { rng }).data);
  assert.ok(Math.abs(s.std - 0.01) < 1e-4 && Math.abs(s.mean) < 1e-4, `gaussian ${JSON.stringify(s)}`);
  assert.equal(init.fans([20, 1, 5, 5]), { fanIn: 25, fanOut: 500 });
  assert.ok(Math.abs(init.calculateGain("leaky_relu", Math.sqrt(5)) - Math.sqrt(1 / 3)) < 1e-12);
  w.dispose();
});

test("default Conv2d/Linear init is U(±1/sqrt(fan_in)) for weight and bias, as PyTorch; ConvTranspose2d uses dim 1 as fan in", () => {
  sn.manualSeed(0);
  const lin = new nn.Linear(400, 300);
  const b = 1 / Math.sqrt(400);
  let s = stats(lin.weight.data);
  assert.ok(s.max <= b && s.max > 0.99 * b && Math.abs(s.std - b / Math.sqrt(3)) < 0.01 * b, JSON.stringify(s));
  s = stats(lin.bias.data);
  assert.ok(s.max <= b && s.max > 0.9 * b, `bias ${s.max}`);
  const conv = new nn.Conv2d(16, 32, 3);
  assert.ok(stats(conv.weight.data).max <= 1 / 12);
  const tconv = new nn.ConvTranspose2d(64, 8, 4); // weight [64, 8, 4, 4]: PyTorch's fan_in = 8*16
  s = stats(tconv.weight.data);
  assert.ok(s.max <= 1 / Math.sqrt(128) && s.max > 0.99 / Math.sqrt(128), `conv transpose bound ${s.max}`);
  // same seed, same weights
  sn.manualSeed(0);
  assert.equal(Array.from(new nn.Linear(400, 300).weight.data.slice(0, 20)), Array.from(lin.weight.data.slice(0, 20)));
});

test("LeNet: state-dict names, shapes and 1,256,080 parameters", () => {
  const m = sn.models.lenet();
  assert.equal(m.namedParameters().map(([n, p]) => [n, [...p.shape]]), [
    ["features.0.weight", [20, 1, 5, 5]],
    ["features.0.bias", [20]],
    ["features.3.weight", [50, 20, 5, 5]],
    ["features.3.bias", [50]],
    ["classifier.0.weight", [500, 2450]],
    ["classifier.0.bias", [500]],
    ["classifier.2.weight", [10, 500]],
    ["classifier.2.bias", [10]],
  ]);
  assert.is(m.numParameters(), 1256080);
  assert.ok(m.parameters().every((p) => p.requiresGrad));
  const c = sn.models.lenet({ classes: 26, inChannels: 3, inputSize: 32 });
  assert.equal([...c.stateDict().get("classifier.0.weight").shape], [500, 50 * 8 * 8]);
  assert.equal([...c.stateDict().get("classifier.2.bias").shape], [26]);
});

test("batch norm buffers: running_mean, running_var, num_batches_tracked in the state dict, not parameters", () => {
  const m = sn.models.lenet({ batchNorm: true });
  const keys = [...m.stateDict().keys()];
  assert.equal(keys.slice(0, 7), ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias", "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked"]);
  assert.ok(keys.includes("classifier.1.running_var"));
  assert.ok(!m.namedParameters().some(([n]) => n.includes("running")));
  assert.equal(m.namedBuffers().map(([n]) => n), ["features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked", "features.5.running_mean", "features.5.running_var", "features.5.num_batches_tracked", "classifier.1.running_mean", "classifier.1.running_var", "classifier.1.num_batches_tracked"]);
  const bn = m.stateDict();
  assert.equal(Array.from(bn.get("features.1.running_var").data), new Array(20).fill(1));
  assert.equal([...bn.get("features.1.num_batches_tracked").shape], []);
});

test("LeNet-5's C3 has the connection table's 1,516 parameters", () => {
  const m = sn.models.lenet5();
  const c3 = m.namedParameters().filter(([n]) => n.startsWith("c3."));
  assert.equal(c3.map(([n, p]) => [n, [...p.shape]]), [
    ["c3.0.weight", [6, 3, 5, 5]],
    ["c3.0.bias", [6]],
    ["c3.1.weight", [9, 4, 5, 5]],
    ["c3.1.bias", [9]],
    ["c3.2.weight", [1, 6, 5, 5]],
    ["c3.2.bias", [1]],
  ]);
  assert.is(c3.reduce((a, [, p]) => a + p.size, 0), 1516);
  assert.is(m.numParameters(), 60850);
  // the table: every map sees the rows LeCun's table I lists
  const t = sn.models.LENET5_C3_TABLE;
  assert.equal(t[0], [0, 1, 2]);
  assert.equal(t[6], [0, 1, 2, 3]);
  assert.equal(t[12], [0, 1, 3, 4]);
  assert.equal(t[14], [2, 3, 5, 0]);
  assert.equal(t[15], [0, 1, 2, 3, 4, 5]);
  assert.is(t.reduce((a, r) => a + r.length, 0), 60);
  // S2 map 0 feeds C3 maps 0, 4, 5, 6, 9, 10, 11, 12, 14, 15 (first row of table I)
  assert.equal(t.flatMap((r, j) => (r.includes(0) ? [j] : [])), [0, 4, 5, 6, 9, 10, 11, 12, 14, 15]);
});

test("loadStateDict copies values; missing, unexpected and mis-shaped tensors are errors naming them", () => {
  const a = sn.models.lenet(), b = sn.models.lenet();
  b.loadStateDict(a.stateDict());
  for (const [n, t] of a.stateDict()) assert.equal(Array.from(b.stateDict().get(n).data.slice(0, 50)), Array.from(t.data.slice(0, 50)), n);
  const sd = new Map(a.stateDict());
  sd.delete("features.3.bias");
  assert.throws(() => b.loadStateDict(sd), /missing 'features\.3\.bias'/);
  const extra = new Map(a.stateDict());
  extra.set("features.9.weight", sn.zeros([3]));
  assert.throws(() => b.loadStateDict(extra), /unexpected 'features\.9\.weight'/);
  const wrong = new Map(a.stateDict());
  const before = b.stateDict().get("features.0.weight").toArray();
  wrong.set("features.0.weight", sn.zeros([20, 1, 5, 5]));
  wrong.set("classifier.2.weight", { shape: [10, 499], data: new Float32Array(4990) });
  assert.throws(() => b.loadStateDict(wrong), /'classifier\.2\.weight' has shape \[10,499\] in the state dict but \[10,500\] in the model/);
  // nothing was copied: the check runs before any copy
  assert.equal(Array.from(b.stateDict().get("features.0.weight").data), Array.from(before));
  const r = b.loadStateDict(sd, { strict: false });
  assert.equal(r.missing, ["features.3.bias"]);
});

// Tensor.backward(grad, { inputs }): PyTorch's backward(inputs=...). Only those tensors' .grad
// change, with the bits a full backward gives them; no op computes a gradient that leads only to
// other tensors (checked by the kernels that run: no weight gradient for an input-only pass).
test("backward with inputs: only those .grad change, with a full backward's bits, and no weight gradient is computed; bad options are clear errors", () => {
  sn.manualSeed(7);
  const conv = new sn.nn.Conv2d(3, 8, 3, { padding: 1 }), fc = new sn.nn.Linear(8 * 6 * 6, 5);
  const xs = Float32Array.from({ length: 2 * 3 * 6 * 6 }, (_, i) => Math.cos(i * 0.3));
  const run = (opts) => {
    const x = sn.tensor(xs, [2, 3, 6, 6]).requireGrad();
    const kernels = [], eng = sn.engine(), orig = eng.run.bind(eng);
    eng.run = (k, a, w) => (kernels.push(k), orig(k, a, w));
    try {
      sn.tidy(() => {
        const y = fc.forward(sn.flatten(sn.relu(conv.forward(x))));
        y.backward(sn.tensor(Float32Array.from({ length: 10 }, (_, i) => i - 4.5), [2, 5]), opts === undefined ? undefined : opts(x));
      });
    } finally {
      delete eng.run;
    }
    const grads = [x, conv.weight, conv.bias, fc.weight, fc.bias].map((t) => (t.grad ? t.grad.toArray() : null));
    for (const t of [conv.weight, conv.bias, fc.weight, fc.bias]) t.grad = null;
    return { grads, kernels };
  };
  const full = run(), onlyX = run((x) => ({ inputs: [x] })), onlyW = run(() => ({ inputs: [conv.weight] }));
  const same = (a, b) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
  assert.ok(same(onlyX.grads[0], full.grads[0]), "x.grad: a full backward's bits");
  assert.equal(onlyX.grads.slice(1), [null, null, null, null], "no parameter gradient");
  assert.not.ok(onlyX.kernels.includes("f32_conv2d_bwd_weight") || onlyX.kernels.some((k) => /winograd_dw|gemm_sum_rows|bwd_bias/.test(k)), `no weight or bias gradient ran: ${onlyX.kernels}`);
  assert.is(onlyW.grads[0], null, "x.grad untouched");
  assert.ok(same(onlyW.grads[1], full.grads[1]), "conv.weight.grad: a full backward's bits");
  assert.equal(onlyW.grads.slice(2), [null, null, null]);
  assert.not.ok(onlyW.kernels.some((k) => k.includes("bwd_input")), `no input gradient of the first layer ran: ${onlyW.kernels}`);
  assert.ok(full.kernels.some((k) => k.includes("bwd_input")) && full.kernels.includes("f32_conv2d_bwd_weight"), `the full backward ran both: ${full.kernels}`);
  // errors, before anything runs
  const x = sn.tensor(xs, [2, 3, 6, 6]).requireGrad(), free = sn.tensor([1, 2], [2]);
  const y = sn.sum(conv.forward(x));
  assert.throws(() => y.backward(undefined, { input: [x] }), /backward: unknown option 'input' \(did you mean 'inputs'\?\)/);
  assert.throws(() => y.backward(undefined, { inputs: x }), /backward: inputs must be a non-empty array of tensors that require grad, got a tensor \[2, 3, 6, 6\] on cpu/);
  assert.throws(() => y.backward(undefined, { inputs: [x, 3] }), /backward: inputs\[1\] must be a tensor, got 3/);
  assert.throws(() => y.backward(undefined, { inputs: [free] }), /backward: inputs\[0\] \[2\] does not require grad/);
  y.backward(undefined, { inputs: [free.requireGrad()] }); // not reached: its .grad stays null, as in PyTorch
  assert.is(free.grad, null);
  assert.throws(() => y.backward(5), /backward: the output's gradient must be a tensor \[\], got 5/);
  assert.is(x.grad, null);
  assert.is(conv.weight.grad, null);
});

test("requiresGrad_(false) freezes a part of the model; train()/eval() reach every layer", () => {
  const m = sn.models.lenet();
  m.at("features").requiresGrad_(false);
  assert.is(m.numParameters(true), 1225500 + 5010);
  assert.is(m.numParameters(), 1256080);
  m.eval();
  assert.ok(m.modules().every((x) => !x.training));
  m.train();
  assert.ok(m.modules().every((x) => x.training));
});

test("frozen layers stay put in the explicit loop, with momentum, weight decay and Adam, after training steps", () => {
  for (const make of [(ps) => new sn.SGD(ps, { lr: 0.05, momentum: 0.9, weight_decay: 1e-2 }), (ps) => new sn.Adam(ps, { lr: 0.01, weight_decay: 1e-2 })]) {
    sn.manualSeed(4);
    const m = nn.sequential(new nn.Conv2d(1, 3, 3), new nn.ReLU(), new nn.Flatten(), new nn.Linear(3 * 4 * 4, 2));
    const opt = make(m.parameters());
    const x = sn.tensor(Float32Array.from({ length: 4 * 36 }, (_, i) => Math.sin(i)), [4, 1, 6, 6]), y = sn.tensor([0, 1, 1, 0], [4]);
    const stepOnce = () => sn.tidy(() => {
      opt.zeroGrad();
      sn.cross_entropy(m.forward(x), y).backward();
      opt.step();
    });
    stepOnce(); // momentum / Adam state and gradients exist now
    m.at("0").requiresGrad_(false);
    const conv = m.at("0").weight.toArray(), lin = m.at("3").weight.toArray();
    stepOnce();
    stepOnce();
    assert.equal(m.at("0").weight.toArray(), conv, `${opt.name}: the frozen conv moved`);
    assert.is(m.at("0").weight.grad, null, "a frozen parameter's gradient is dropped by zeroGrad");
    assert.not.equal(m.at("3").weight.toArray(), lin, `${opt.name}: the trainable layer did not move`);
    m.dispose();
  }
});

test("saveModel refuses, before writing anything, a module of one's own that loadModel could not rebuild; registered, it round-trips; a damaged JSON names the file", async () => {
  const { mkdtempSync, readdirSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  class TwoHeads extends sn.Module {
    constructor() {
      super();
      this.body = this.registerModule("body", new nn.Linear(4, 3));
    }
    get type() {
      return "TwoHeads";
    }
    forward(x) {
      return sn.relu(this.body.call(x));
    }
  }
  const dir = mkdtempSync(join(tmpdir(), "simdnet-save-"));
  const m = nn.sequential(new TwoHeads(), new nn.Linear(3, 2));
  await sn.saveModel(m, dir).then(() => assert.unreachable(), (e) => assert.match(e.message, /saveModel: 0 \(TwoHeads\) is a class of your own, which loadModel could not rebuild from model\.json: register it with nn\.registerModuleType/));
  assert.equal(readdirSync(dir), [], "nothing written");
  nn.registerModuleType("TwoHeads", () => new TwoHeads());
  await sn.saveModel(m, dir);
  const { model: back } = await sn.loadModel(dir);
  const x = sn.tensor([1, -2, 3, 0.5], [1, 4]);
  assert.equal(back.forward(x).toArray(), m.forward(x).toArray());
  writeFileSync(join(dir, "model.json"), '{"format": "simdnet-model", "model": {');
  await sn.loadModel(dir).then(() => assert.unreachable(), (e) => assert.match(e.message, /model\.json: not JSON/));
});

test("config JSON round trip rebuilds the same architecture", () => {
  for (const m of [sn.models.lenet({ batchNorm: true }), sn.models.lenet5(), nn.sequential(new nn.Residual(new nn.Conv2d(2, 2, 3, { padding: 1 }), new nn.Identity()), new nn.Concat([new nn.AvgPool2d(3, { stride: 1, padding: 1, countIncludePad: false }), new nn.LeakyReLU(0.2)]), new nn.Dropout(0.3), new nn.Upsample({ scaleFactor: 2 }), new nn.LocalResponseNorm(5, { k: 2 }), new nn.ConvTranspose2d(4, 3, 2, { stride: 2 }))]) {
    const json = JSON.parse(JSON.stringify(m.config()));
    const r = nn.moduleFromConfig(json);
    assert.equal(r.namedParameters().map(([n, p]) => [n, [...p.shape]]), m.namedParameters().map(([n, p]) => [n, [...p.shape]]));
    assert.is(r.toString(), m.toString());
    assert.equal(r.config(), json);
  }
  assert.throws(() => nn.moduleFromConfig({ type: "Sequential", children: [["0", { type: "Conv3d", args: [] }]] }), /config\.0: unknown module type 'Conv3d'/);
});

test("a forward with a wrong input names the layer, its path and the shapes before any kernel runs", () => {
  const m = sn.models.lenet();
  assert.throws(() => m.forward(sn.zeros([2, 3, 28, 28])), /Conv2d\(1, 20, kernel_size=5, padding=2\) at 'features\.0', input \[2,3,28,28\]: expected 1 input channels, got 3/);
  assert.throws(() => m.forward(sn.zeros([2, 28, 28])), /at 'features\.0', input \[2,28,28\]: input must be rank 4/);
  assert.throws(() => new nn.Linear(4, 2).call(sn.zeros([3, 5])), /Linear\(in_features=4, out_features=2\), input \[3,5\]: expected 4 input features, got 5/);
  assert.throws(() => new nn.Conv2d(3, 4, 3, { groups: 2 }), /in_channels 3 and out_channels 4 must both be divisible by groups 2/);
  assert.throws(() => new nn.MaxPool2d(2, { padding: 2 }), /padding 2 must be at most half the kernel size 2/);
});

test("BatchNorm2d: batch statistics and running averages while training, running statistics in eval", () => {
  const bn = new nn.BatchNorm2d(2, { momentum: 0.5 });
  // channel 0 holds 1..8, channel 1 holds 10 * (1..8), over N=2, 2x2
  const v = [];
  for (let n = 0; n < 2; n++) for (let c = 0; c < 2; c++) for (let i = 0; i < 4; i++) v.push((c ? 10 : 1) * (n * 4 + i + 1));
  const x = sn.tensor(v, [2, 2, 2, 2]);
  const y = bn.forward(x).toArray();
  const ch0 = [0, 1, 2, 3, 8, 9, 10, 11].map((i) => y[i]);
  const m = ch0.reduce((a, b) => a + b) / 8;
  const var0 = ch0.reduce((a, b) => a + (b - m) ** 2, 0) / 8;
  assert.ok(Math.abs(m) < 1e-6 && Math.abs(var0 - 1) < 1e-3, `normalised channel 0: mean ${m}, var ${var0}`);
  // running mean = 0.5 * 0 + 0.5 * 4.5; running var = 0.5 * 1 + 0.5 * unbiased var (6)
  const sd = bn.stateDict();
  assert.ok(Math.abs(sd.get("running_mean").data[0] - 2.25) < 1e-5 && Math.abs(sd.get("running_mean").data[1] - 22.5) < 1e-4);
  assert.ok(Math.abs(sd.get("running_var").data[0] - 0.5 * (1 + 6)) < 1e-4);
  assert.is(sd.get("num_batches_tracked").data[0], 1);
  bn.eval();
  const z = bn.forward(x).toArray();
  assert.ok(Math.abs(z[0] - (1 - 2.25) / Math.sqrt(3.5 + 1e-5)) < 1e-5, `eval uses the running statistics: ${z[0]}`);
  assert.is(sd.get("num_batches_tracked").data[0], 1, "eval does not count batches");
  const plain = new nn.BatchNorm2d(2, { trackRunningStats: false, affine: false });
  assert.equal(plain.namedParameters(), []);
  assert.equal([...plain.stateDict().keys()], []);
  plain.eval();
  const w = plain.forward(x).toArray();
  assert.ok(Math.abs(w[0] - y[0]) < 1e-5, "no running statistics: batch statistics in eval too");
});

test("BatchNorm1d on [N, C] and [N, C, L]; LocalResponseNorm keeps the shape", () => {
  const bn = new nn.BatchNorm1d(3);
  const a = bn.forward(sn.tensor(Float32Array.from({ length: 12 }, (_, i) => i * i), [4, 3]));
  assert.equal([...a.shape], [4, 3]);
  const b = bn.forward(sn.tensor(Float32Array.from({ length: 24 }, (_, i) => Math.sin(i)), [2, 3, 4]));
  assert.equal([...b.shape], [2, 3, 4]);
  assert.is(bn.stateDict().get("num_batches_tracked").data[0], 2);
  assert.throws(() => bn.call(sn.zeros([4, 5])), /BatchNorm1d\(3.*input \[4,5\]: expected 3 channels, got 5/);
  const lrn = new nn.LocalResponseNorm(5, { alpha: 1e-4, beta: 0.75, k: 2 });
  assert.equal([...lrn.forward(sn.ones([1, 7, 3, 3])).shape], [1, 7, 3, 3]);
});

test("Dropout: identity in eval; in training a fresh seeded mask per call, reproducible from the seed", () => {
  const x = sn.ones([1000]);
  sn.manualSeed(4);
  const d = new nn.Dropout(0.25);
  d.eval();
  assert.ok(d.forward(x) === x);
  d.train();
  const st = d.rng.getState();
  const a = d.forward(x).toArray(), b = d.forward(x).toArray();
  const kept = a.filter((v) => v !== 0);
  assert.ok(kept.every((v) => Math.abs(v - 1 / 0.75) < 1e-6), "kept values are scaled by 1/(1-p)");
  assert.ok(Math.abs(kept.length / 1000 - 0.75) < 0.05, `kept ${kept.length} of 1000`);
  assert.not.equal(Array.from(a), Array.from(b));
  d.rng.setState(st);
  assert.equal(Array.from(d.forward(x).toArray()), Array.from(a));
  sn.manualSeed(4);
  const e = new nn.Dropout(0.25);
  assert.equal(Array.from(e.forward(x).toArray()), Array.from(a), "same default seed, same layer generator");
  const m = nn.sequential(new nn.Linear(2, 2), new nn.Dropout(), new nn.Sequential({ inner: new nn.Dropout(0.1) }));
  assert.equal(Object.keys(m.rngStates()), ["1", "2.inner"]);
});

test.after(() => sn.dispose());
test.run();
