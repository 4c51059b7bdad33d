// fuseBatchNorm: batch norm folded into the convolution before it, for inference. The fused
// model must give the unfused model's outputs up to float32 rounding (the folded weights are
// rounded once), drop exactly the batch norms that follow a Conv2d, and refuse models that are
// in training mode.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { compare } from "./helpers.mjs";
const { nn } = sn;

/** Deterministic uniform values in [lo, hi) (mulberry32). */
function rand(n, seed, lo = -1, hi = 1) {
  const out = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

/** Batch norm that is far from the identity: running statistics, scale and shift all random. */
function randomizeNorms(model, seed = 100) {
  for (const m of model.modules()) {
    if (!(m instanceof nn.BatchNorm2d)) continue;
    const C = m.numFeatures;
    if (m.runningMean) m.runningMean.data.set(rand(C, seed++, -0.5, 0.5));
    if (m.runningVar) m.runningVar.data.set(rand(C, seed++, 0.3, 3));
    if (m.weight) m.weight.data.set(rand(C, seed++, 0.5, 1.5));
    if (m.bias) m.bias.data.set(rand(C, seed++, -0.5, 0.5));
  }
  return model;
}

const run = (model, x) => sn.noGrad(() => sn.tidy(() => model.forward(x).toArray()));
const maxAbs = (a) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const count = (model, type) => model.modules().filter((m) => m.type === type).length;

/** Fused and unfused outputs agree to float32 rounding: 1e-5 of the output scale per layer is
 *  far above it, while an unfolded shift or a wrong scale is of the order of the outputs. */
function agree(what, got, want, layers) {
  compare(what, got, want, 0, 1e-5 * Math.sqrt(layers) * maxAbs(want));
}

test.before(async () => {
  await sn.init({ threads: 2 });
});

test("fuseBatchNorm: conv (with and without bias) + batch norm in a Sequential: same outputs, batch norms become Identity, convs get a bias", () => {
  sn.manualSeed(1);
  const model = randomizeNorms(
    new nn.Sequential(
      new nn.Conv2d(3, 8, 3, { padding: 1, bias: false }),
      new nn.BatchNorm2d(8),
      new nn.ReLU(),
      new nn.Conv2d(8, 6, 3, { stride: 2, bias: true }),
      new nn.BatchNorm2d(6, { eps: 1e-3 }),
    ),
  ).eval();
  const x = sn.tensor(rand(2 * 3 * 9 * 9, 7), [2, 3, 9, 9]);
  const before = run(model, x);
  assert.ok(maxAbs(before) > 0.5, "outputs of a sensible size");
  const same = sn.fuseBatchNorm(model);
  assert.is(same, model, "fuses in place and returns the model");
  agree("fused vs unfused", run(model, x), before, 2);
  assert.equal([...model.stateDict().keys()], ["0.weight", "0.bias", "3.weight", "3.bias"]);
  assert.is(model.at(1).type, "Identity");
  assert.is(model.at(4).type, "Identity");
  assert.ok(model.at(0).bias && model.at(0).describe().indexOf("bias=False") < 0, "conv 0 has a bias now");
  assert.is(model.at(1).path(), "1", "the Identity sits where the batch norm was");
});

test("fuseBatchNorm: ResNet-18 (blocks, projection shortcuts): every batch norm folded, logits unchanged", () => {
  sn.manualSeed(2);
  const model = randomizeNorms(sn.models.resnet18({ classes: 10, inputSize: 32 })).eval();
  const x = sn.tensor(rand(3 * 32 * 32, 11), [1, 3, 32, 32]);
  const before = run(model, x);
  assert.is(count(model, "BatchNorm2d"), 20);
  sn.fuseBatchNorm(model);
  assert.is(count(model, "BatchNorm2d"), 0, "no batch norm left");
  assert.ok(!model.toString().includes("BatchNorm2d"));
  const keys = [...model.stateDict().keys()];
  assert.ok(!keys.some((k) => /bn|running|downsample\.1/.test(k)), `no batch norm entries: ${keys.filter((k) => /bn|running|downsample\.1/.test(k))}`);
  assert.ok(keys.includes("layer2.0.downsample.0.bias") && keys.includes("conv1.bias") && keys.includes("layer4.1.conv2.bias"));
  agree("resnet18 fused vs unfused logits", run(model, x), before, 20);
  // the fused model describes itself: the config rebuilds it, and its weights load into it
  const again = sn.modelFromConfig(sn.modelConfig(model));
  again.loadStateDict(model.stateDict());
  agree("rebuilt from the config", run(again.eval(), x), before, 20);
  again.dispose();
  model.dispose();
});

test("fuseBatchNorm: a model in training mode is refused with a message that says what to do", () => {
  const model = new nn.Sequential(new nn.Conv2d(1, 2, 3), new nn.BatchNorm2d(2));
  assert.throws(() => sn.fuseBatchNorm(model), /fuseBatchNorm: the model is in training mode; call model\.eval\(\) first/);
  // one layer left in training mode is enough to refuse, and it is named
  model.eval();
  model.at(1).train();
  assert.throws(() => sn.fuseBatchNorm(model), /fuseBatchNorm: '1' is in training mode; call model\.eval\(\) first.*running statistics/);
  assert.is(model.at(1).type, "BatchNorm2d", "nothing changed");
  assert.throws(() => sn.fuseBatchNorm({}), /fuseBatchNorm: the argument must be a Module/);
});

test("fuseBatchNorm: batch norms that cannot be folded are left alone (not after a conv, no running statistics)", () => {
  sn.manualSeed(3);
  const model = randomizeNorms(
    new nn.Sequential(
      new nn.Conv2d(2, 4, 3, { padding: 1 }),
      new nn.ReLU(),
      new nn.BatchNorm2d(4), // after a ReLU: not foldable
      new nn.Conv2d(4, 4, 1),
      new nn.BatchNorm2d(4, { trackRunningStats: false }), // eval mode uses the batch's statistics
      new nn.Conv2d(4, 3, 1, { bias: false }),
      new nn.BatchNorm2d(3), // foldable
    ),
  ).eval();
  const x = sn.tensor(rand(2 * 2 * 5 * 5, 3), [2, 2, 5, 5]);
  const before = run(model, x);
  sn.fuseBatchNorm(model);
  assert.equal(
    model.children().map((m) => m.type),
    ["Conv2d", "ReLU", "BatchNorm2d", "Conv2d", "BatchNorm2d", "Conv2d", "Identity"],
  );
  agree("partly fused", run(model, x), before, 4);
});

test("fuseBatchNorm: a frozen conv stays frozen; an unfrozen one gets a trainable bias", () => {
  const a = new nn.Sequential(new nn.Conv2d(1, 2, 3, { bias: false }), new nn.BatchNorm2d(2)).eval();
  a.requiresGrad_(false);
  sn.fuseBatchNorm(a);
  assert.is(a.at(0).bias.requiresGrad, false);
  const b = new nn.Sequential(new nn.Conv2d(1, 2, 3, { bias: false }), new nn.BatchNorm2d(2)).eval();
  sn.fuseBatchNorm(b);
  assert.is(b.at(0).bias.requiresGrad, true);
  assert.equal(b.parameters().length, 2);
});

test.run();
