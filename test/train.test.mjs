// Training: the explicit loop, fit() with metrics, validation, callbacks and early stopping,
// NaN detection naming the layer, flat memory, checkpoints that resume bit for bit,
// model save/load.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as sn from "../dist/index.js";
import { toyData, tinyModel, bnDropModel } from "./helpers.mjs";
const { nn } = sn;

test.before(async () => {
  await sn.init({ threads: 2 });
});

/** Plain SGD with momentum on the JS side: an optimiser of the test's own, so these tests
 *  check the training machinery whatever the library's optimisers do. */
class TestSGD {
  constructor(params, lr = 0.05, momentum = 0.9) {
    this.params = params;
    this.lr = lr;
    this.momentum = momentum;
    this.buf = params.map((p) => new Float32Array(p.size));
  }
  zeroGrad() {
    for (const p of this.params) if (p.grad) p.grad.data.fill(0);
  }
  step() {
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      const g = p.grad.data, w = p.data, b = this.buf[i];
      for (let j = 0; j < w.length; j++) {
        b[j] = this.momentum * b[j] + g[j];
        w[j] -= this.lr * b[j];
      }
    });
  }
  stateDict() {
    return { lr: this.lr, momentum: this.momentum, buffers: this.buf };
  }
  loadStateDict(s) {
    this.lr = s.lr;
    this.momentum = s.momentum;
    s.buffers.forEach((b, i) => this.buf[i].set(b));
  }
}

test("the explicit loop: zeroGrad, forward, cross_entropy, backward, step inside tidy() lowers the loss", () => {
  const model = tinyModel();
  const opt = new TestSGD(model.parameters(), 0.1, 0);
  const ds = toyData(32);
  const x = sn.tensor(ds.x, ds.shape), y = sn.tensor(Float32Array.from(ds.y));
  const losses = [];
  for (let s = 0; s < 15; s++)
    losses.push(
      sn.tidy(() => {
        opt.zeroGrad();
        const loss = sn.cross_entropy(model.forward(x), y);
        loss.backward();
        opt.step();
        return loss.item();
      }),
    );
  assert.ok(losses[14] < 0.5 * losses[0], `loss ${losses[0]} -> ${losses[14]}`);
  assert.ok(losses.every(Number.isFinite));
});

test("fit: per-epoch history with loss, top-1, top-5 and validation; callbacks run; accuracy rises", async () => {
  const model = tinyModel();
  const batches = [], epochs = [];
  const progress = [];
  const res = await sn.fit(model, toyData(64), {
    epochs: 3,
    batchSize: 16,
    optimizer: (ps) => new TestSGD(ps, 0.05),
    validation: toyData(32, 9),
    callbacks: { onBatchEnd: (b) => batches.push(b), onEpochEnd: (r) => void epochs.push(r.epoch) },
    onProgress: (p) => progress.push(p),
  });
  assert.is(res.history.length, 3);
  assert.equal(epochs, [1, 2, 3]);
  assert.is(batches.length, 12);
  assert.equal(batches.map((b) => b.step), Array.from({ length: 12 }, (_, i) => i + 1));
  assert.is(progress.length, 12);
  assert.ok(progress[11].eta === 0 && progress[0].eta > 0 && progress[0].imagesPerSec > 0);
  const [first, , last] = res.history;
  for (const k of ["loss", "top1", "top5", "val_loss", "val_top1", "val_top5", "seconds", "imagesPerSec"]) assert.type(last[k], "number", k);
  assert.ok(last.loss < first.loss, `train loss ${first.loss} -> ${last.loss}`);
  assert.ok(last.val_top1 >= 0.9, `validation accuracy ${last.val_top1}`);
  assert.is(last.top5, 1); // two classes: the target is always in the top 5
  const ev = sn.evaluate(model, toyData(32, 9));
  assert.is(ev.n, 32);
  assert.ok(Math.abs(ev.top1 - last.val_top1) < 1e-12 && Math.abs(ev.loss - last.val_loss) < 1e-6);
  assert.ok(model.modules().every((m) => m.training), "evaluate() puts the modes back");
});

test("fit: early stopping ends the run when the monitored value stops improving; onEpochEnd can stop it", async () => {
  const model = tinyModel();
  // lr 0: nothing changes, so the training loss never improves after epoch 1
  const res = await sn.fit(model, toyData(32), { epochs: 10, batchSize: 8, optimizer: (ps) => new TestSGD(ps, 0, 0), shuffle: false, earlyStopping: { monitor: "loss", patience: 2 } });
  assert.is(res.history.length, 3);
  assert.match(res.stopped, /early stopping: loss has not improved for 2 epochs/);
  assert.is(res.bestEpoch, 1);
  const r2 = await sn.fit(tinyModel(), toyData(32), { epochs: 5, optimizer: (ps) => new TestSGD(ps), callbacks: { onEpochEnd: (r) => r.epoch < 2 } });
  assert.is(r2.history.length, 2);
  try {
    await sn.fit(tinyModel(), toyData(8), { optimizer: (ps) => new TestSGD(ps), earlyStopping: { monitor: "val_loss" } });
    assert.unreachable();
  } catch (e) {
    assert.match(e.message, /monitors 'val_loss' but the history has no such value/);
  }
});

test("a non-finite loss stops training with an error naming the step and the first layer that went non-finite", async () => {
  const model = tinyModel();
  model.at(4).weight.data[5] = Infinity; // the Linear: its output becomes inf/NaN
  try {
    await sn.fit(model, toyData(16), { epochs: 1, batchSize: 8, optimizer: (ps) => new TestSGD(ps) });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, sn.NonFiniteError);
    assert.match(e.message, /loss is NaN at step 1 \(epoch 1, batch 1\)/);
    assert.match(e.message, /first non-finite output: layer '4' Linear\(in_features=64, out_features=2\)/);
    assert.match(e.message, /non-finite parameters: 4\.weight/);
    assert.is(e.layer, "4");
  }
  // a NaN pixel in the data: the first layer is named, and the input is blamed
  const bad = toyData(16);
  bad.x[5 * 64 + 10] = NaN;
  try {
    await sn.fit(tinyModel(), bad, { epochs: 1, batchSize: 4, optimizer: (ps) => new TestSGD(ps) });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, sn.NonFiniteError);
    assert.match(e.message, /loss is NaN at step \d+ \(epoch 1, batch \d+\); the input batch has non-finite values; first non-finite output: layer '0' Conv2d\(1, 4, kernel_size=3, padding=1\)/);
  }
});

test("memory stays flat: engine().memoryStats().reserved does not grow after the first steps", async () => {
  const reserved = [];
  await sn.fit(tinyModel(), toyData(96), {
    epochs: 2,
    batchSize: 16,
    optimizer: (ps) => new TestSGD(ps),
    validation: toyData(32, 4),
    callbacks: { onBatchEnd: () => reserved.push(sn.engine().memoryStats().reserved) },
  });
  assert.is(reserved.length, 12);
  // flat through the second epoch; the first epoch's validation pass (after step 6) may raise it
  // once by the weight packs it keeps (src/ops/packs.ts: kept in inference, used by step 7's
  // forward, freed by its optimiser step): a few hundred bytes for this model
  assert.is(reserved[11], reserved[6], `reserved bytes per step: ${reserved.join(", ")}`);
  assert.ok(reserved[6] - reserved[2] <= 1024, `reserved bytes per step: ${reserved.join(", ")}`);
  // and the live bytes after a run are what the model holds, not what the run made
  const live0 = sn.engine().memoryStats().live;
  await sn.fit(tinyModel(), toyData(32), { epochs: 1, batchSize: 16, optimizer: (ps) => new TestSGD(ps) });
  const live1 = sn.engine().memoryStats().live;
  assert.ok(live1 - live0 < 64 * 1024, `live grew by ${live1 - live0} bytes`);
});

test("checkpoint and resume: 2 epochs + 2 resumed epochs give the same bits as 4 epochs in one run", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ckpt-"));
  try {
    const data = toyData(48), val = toyData(16, 7);
    const run = async (epochs, ckpt, resume) => {
      const model = bnDropModel(11);
      const opt = new TestSGD(model.parameters(), 0.05);
      const r = await sn.fit(model, data, { epochs, batchSize: 8, optimizer: opt, seed: 5, validation: val, checkpoint: ckpt, resume, augment: [sn.data.shift(1)] });
      return { model, r };
    };
    const full = await run(4);
    const path = join(dir, "ckpt.safetensors");
    await run(2, path);
    assert.ok(existsSync(path));
    assert.equal(readdirSync(dir), ["ckpt.safetensors"], "no temporary file is left behind");
    const resumed = await run(4, path, true);
    assert.is(resumed.r.history.length, 4);
    for (const [n, t] of full.model.stateDict()) assert.equal(Array.from(resumed.model.stateDict().get(n).data), Array.from(t.data), n);
    assert.is(full.model.stateDict().get("1.num_batches_tracked").data[0], 24);
    assert.equal(resumed.model.rngStates(), full.model.rngStates());
    assert.equal(resumed.r.history.map((h) => h.loss), full.r.history.map((h) => h.loss));
    assert.equal(resumed.r.history.map((h) => h.val_top1), full.r.history.map((h) => h.val_top1));
    // a checkpoint for another architecture is refused, naming the tensor
    const other = nn.sequential(new nn.Conv2d(1, 5, 3, { padding: 1 }), new nn.BatchNorm2d(5), new nn.ReLU(), new nn.MaxPool2d(2), new nn.Flatten(), new nn.Dropout(0.3), new nn.Linear(80, 2));
    assert.throws(() => sn.unpackCheckpoint(readFileSync(path), { model: other }), /'0\.weight' has shape \[4,1,3,3\] in the state dict but \[5,1,3,3\] in the model/);
    assert.throws(() => sn.unpackCheckpoint(readFileSync(path), { model: tinyModel() }), /missing|unexpected/);
    assert.throws(() => sn.unpackCheckpoint(readFileSync(path), { model: bnDropModel(1) }), /optimiser state but no optimiser/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("fit with the library's SGD (by name, momentum) and a StepLR schedule; resuming them is bit-identical", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ckpt-"));
  try {
    const run = async (epochs, ckpt) => {
      const model = bnDropModel(5);
      const r = await sn.fit(model, toyData(32), {
        epochs,
        batchSize: 8,
        optimizer: "sgd",
        lr: 0.1,
        momentum: 0.9,
        scheduler: (opt) => new sn.StepLR(opt, { step_size: 1, gamma: 0.5 }),
        checkpoint: ckpt,
        resume: !!ckpt,
      });
      return { model, r };
    };
    const full = await run(3);
    assert.equal(full.r.history.map((h) => h.lr), [0.1, 0.05, 0.025]);
    assert.instance(full.r.optimizer, sn.SGD);
    const path = join(dir, "c.safetensors");
    await run(1, path);
    const resumed = await run(3, path);
    assert.equal(resumed.r.history.map((h) => h.lr), [0.1, 0.05, 0.025]);
    for (const [n, t] of full.model.stateDict()) assert.equal(Array.from(resumed.model.stateDict().get(n).data), Array.from(t.data), n);
    // the momentum buffers travel in the checkpoint as tensors
    assert.ok([...sn.parseSafetensors(readFileSync(path)).tensors.keys()].some((k) => k.startsWith("optim.state.0.momentum_buffer")));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("weights as safetensors with state-dict names and the config as JSON round-trip; errors name the tensor", async () => {
  const dir = mkdtempSync(join(tmpdir(), "model-"));
  try {
    const model = sn.models.lenet5({ inputSize: 28 });
    const x = sn.tensor(Float32Array.from({ length: 2 * 784 }, (_, i) => Math.cos(i)), [2, 1, 28, 28]);
    const want = sn.noGrad(() => model.forward(x).toArray());
    const files = await sn.saveModel(model, dir, { meta: { zoo: "lenet5" } });
    const { model: back, meta } = await sn.loadModel(dir);
    assert.equal(meta, { zoo: "lenet5" });
    assert.equal(Array.from(sn.noGrad(() => back.forward(x).toArray())), Array.from(want));
    const file = sn.parseSafetensors(readFileSync(files.weights));
    assert.equal([...file.tensors.keys()].slice(0, 4), ["c1.weight", "c1.bias", "s2.weight", "s2.bias"]);
    assert.is(file.metadata.format, "pt");
    // missing tensor, wrong shape, bad header: each named
    const sd = new Map([...model.stateDict()].map(([n, t]) => [n, { shape: t.shape, data: t.toArray() }]));
    sd.delete("c3.1.weight");
    assert.throws(() => sn.loadWeights(back, sn.serializeSafetensors(sd), { what: "w.safetensors" }), /w\.safetensors: loadStateDict \(Sequential\): missing 'c3\.1\.weight'/);
    sd.set("c3.1.weight", { shape: [9, 4, 5, 4], data: new Float32Array(720) });
    assert.throws(() => sn.loadWeights(back, sn.serializeSafetensors(sd)), /'c3\.1\.weight' has shape \[9,4,5,4\] in the state dict but \[9,4,5,5\] in the model/);
    const bad = new Uint8Array(readFileSync(files.weights));
    bad[8] = 0x5b; // "[" where the JSON header opens with "{"
    assert.throws(() => sn.loadWeights(back, bad, { what: "bad.safetensors" }), /bad\.safetensors: bad header/);
    writeFileSync(files.config, JSON.stringify({ format: "other" }));
    await sn.loadModel(dir).then(() => assert.unreachable(), (e) => assert.match(e.message, /not a simdnet-model file/));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("LeNet-5's C3 computes what a full conv with the connection table as a mask computes", () => {
  sn.manualSeed(2);
  const c3 = new nn.PartialConv2d(6, sn.models.LENET5_C3_TABLE, 5);
  const x = sn.tensor(Float32Array.from({ length: 2 * 6 * 14 * 14 }, (_, i) => Math.sin(0.37 * i)), [2, 6, 14, 14]);
  const y = c3.forward(x);
  assert.equal([...y.shape], [2, 16, 10, 10]);
  // full weight [16, 6, 5, 5]: zero where the table has no connection
  const full = new Float32Array(16 * 6 * 25), bias = new Float32Array(16);
  const groups = [c3.children()[0], c3.children()[1], c3.children()[2]];
  let map = 0;
  for (const g of groups) {
    const [outs, k] = g.weight.shape;
    for (let m = 0; m < outs; m++, map++) {
      sn.models.LENET5_C3_TABLE[map].forEach((inp, t) => full.set(g.weight.data.subarray((m * k + t) * 25, (m * k + t + 1) * 25), (map * 6 + inp) * 25));
      bias[map] = g.bias.data[m];
    }
  }
  const ref = sn.conv2d(x, sn.tensor(full, [16, 6, 5, 5]), sn.tensor(bias)).toArray();
  const got = y.toArray();
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]) / (1 + Math.abs(ref[i])));
  assert.ok(worst < 1e-5, `max relative difference ${worst}`);
  // gradients reach every group's weights and the input
  x.requireGrad();
  sn.sum(c3.forward(x)).backward();
  assert.ok(groups.every((g) => g.weight.grad && g.weight.grad.data.some((v) => v !== 0)));
  assert.equal([...x.grad.shape], [2, 6, 14, 14]);
});

test("training gives the same bits on 1 and 2 threads (every kernel split across threads)", async () => {
  const weights = [];
  for (const threads of [1, 2]) {
    await sn.init({ threads, minParallelWork: 0 });
    const model = tinyModel(21);
    await sn.fit(model, toyData(32), { epochs: 2, batchSize: 8, optimizer: (ps) => new TestSGD(ps), seed: 3 });
    weights.push(model.parameters().map((p) => Array.from(p.data)));
  }
  assert.equal(weights[1], weights[0]);
  await sn.init({ threads: 2 });
});

test.after(() => sn.dispose());
test.run();
