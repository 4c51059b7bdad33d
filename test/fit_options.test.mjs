// fit()'s options for what an explicit loop does between backward() and step() (L1, gradient
// clipping), per-batch schedules, metrics left out of the history, resume errors, and checkpoint
// restores that are all or nothing; checkpoints from an explicit loop.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as sn from "../dist/index.js";
import { toyData, tinyModel, bnDropModel } from "./helpers.mjs";
const { nn } = sn;

test.before(async () => {
  await sn.init({ threads: 2 });
});

/** Every tensor of the state dict, copied. */
const stateOf = (model) => Object.fromEntries([...model.stateDict()].map(([n, t]) => [n, Array.from(t.data)]));

/** What fit() does, written out: one loader over the epochs, gradients dropped, forward,
 *  cross-entropy, backward, `between(params)`, step, `after()`. */
function explicitLoop(model, data, { epochs, batchSize = 8, seed = 0, opt, between = () => {}, after = () => {} }) {
  const params = model.parameters().filter((p) => p.requiresGrad);
  const loader = new sn.DataLoader(data, { batchSize, shuffle: true, seed });
  model.train();
  try {
    for (let e = 0; e < epochs; e++)
      for (const { x, y } of loader)
        sn.tidy(() => {
          opt.zeroGrad(true);
          sn.cross_entropy(model.forward(x), y).backward();
          between(params);
          opt.step();
          after();
        });
  } finally {
    loader.dispose();
  }
}

/** An optimiser's state dict as text, buffers included. */
const optimState = (opt) => JSON.stringify(opt.stateDict(), (k, v) => (v instanceof Float32Array ? Array.from(v) : v));

const FIT = { epochs: 2, batchSize: 8, seed: 4 };

/** fit() with the library's SGD (momentum) and `extra` options; the model's state after. */
async function fitState(extra) {
  const model = tinyModel();
  await sn.fit(model, toyData(32), { ...FIT, optimizer: "sgd", lr: 0.2, momentum: 0.9, ...extra });
  return stateOf(model);
}

/** The explicit loop with the same optimiser and `between`; the model's state after. */
function loopState(between) {
  const model = tinyModel();
  const opt = new sn.SGD(model.parameters(), { lr: 0.2, momentum: 0.9 });
  explicitLoop(model, toyData(32), { ...FIT, opt, between });
  return stateOf(model);
}

test("fit's clipGradNorm, clipGradValue and l1 give the bits of backward, the same call, step in an explicit loop", async () => {
  const plain = await fitState({});
  assert.equal(loopState(() => {}), plain, "the explicit loop is what fit() does");
  let clipped = 0;
  const cases = [
    ["clipGradNorm", 0.05, (ps) => void (sn.clipGradNorm(ps, 0.05) > 0.05 && clipped++)],
    ["clipGradValue", 0.005, (ps) => sn.clipGradValue(ps, 0.005)],
    ["l1", 0.05, (ps) => sn.addL1Grad(ps, 0.05)],
  ];
  for (const [key, value, between] of cases) {
    const got = await fitState({ [key]: value });
    assert.equal(got, loopState(between), key);
    assert.not.equal(got, plain, `${key} changes the training`);
  }
  assert.ok(clipped > 0, "the norm was above the limit at some step");
  // all three: L1's gradient first, then the value clamp, then the norm
  assert.equal(
    await fitState({ l1: 0.05, clipGradValue: 0.005, clipGradNorm: 0.05 }),
    loopState((ps) => {
      sn.addL1Grad(ps, 0.05);
      sn.clipGradValue(ps, 0.005);
      sn.clipGradNorm(ps, 0.05);
    }),
  );
});

test("fit: clipGradNorm, clipGradValue and l1 must be finite numbers > 0", async () => {
  for (const [key, bad] of [["clipGradNorm", 0], ["clipGradNorm", -1], ["clipGradNorm", Infinity], ["clipGradValue", NaN], ["clipGradValue", "1"], ["l1", -0.1], ["l1", null]]) {
    const model = tinyModel();
    const before = stateOf(model);
    await sn.fit(model, toyData(8), { optimizer: "sgd", [key]: bad }).then(
      () => assert.unreachable(`${key}: ${bad}`),
      (e) => assert.match(e.message, `fit: ${key} must be a finite number > 0, got ${JSON.stringify(bad)}`),
    );
    assert.equal(stateOf(model), before, "nothing trained");
  }
});

/** linearWarmup over 6 steps, then ExponentialLR: 4 batches an epoch, so the warm-up ends during epoch 2 */
const warmup = (opt) => sn.linearWarmup(opt, { steps: 6, then: new sn.ExponentialLR(opt, { gamma: 0.9 }) });

test("fit: schedulerStep 'batch' steps the scheduler after every optimiser step, as the explicit loop does", async () => {
  const model = tinyModel();
  const res = await sn.fit(model, toyData(32), { ...FIT, epochs: 3, optimizer: "sgd", lr: 0.3, momentum: 0.9, scheduler: warmup, schedulerStep: "batch" });
  const ref = tinyModel();
  const opt = new sn.SGD(ref.parameters(), { lr: 0.3, momentum: 0.9 });
  const sched = warmup(opt);
  const lrs = [];
  explicitLoop(ref, toyData(32), { ...FIT, epochs: 3, opt, between: () => lrs.push(opt.paramGroups[0].lr), after: () => sched.step() });
  assert.equal(stateOf(model), stateOf(ref));
  // the warm-up counts steps: a third of the lr at step 1, all of it at step 7, then x0.9 a step
  assert.ok(Math.abs(lrs[0] - 0.1) < 1e-12 && Math.abs(lrs[6] - 0.3) < 1e-12 && Math.abs(lrs[7] - 0.27) < 1e-12, lrs.join(", "));
  // the history's lr is the lr of each epoch's last batch
  assert.equal(res.history.map((h) => h.lr), [lrs[3], lrs[7], lrs[11]]);
  // stepped per epoch, the same schedule is still warming up after three epochs
  const perEpoch = await sn.fit(tinyModel(), toyData(32), { ...FIT, epochs: 3, optimizer: "sgd", lr: 0.3, scheduler: warmup });
  assert.ok(perEpoch.history[2].lr < 0.3 - 1e-6, `lr ${perEpoch.history[2].lr}`);
  const bad = [
    [{ scheduler: warmup, schedulerStep: "iteration" }, /fit: schedulerStep must be "epoch" or "batch", got "iteration"/],
    [{ schedulerStep: "batch" }, /fit: schedulerStep is given but there is no scheduler/],
  ];
  for (const [o, re] of bad)
    await sn.fit(tinyModel(), toyData(8), { optimizer: "sgd", ...o }).then(
      () => assert.unreachable(),
      (e) => assert.match(e.message, re),
    );
});

test("schedulerStep 'batch': 2 epochs + 2 resumed epochs give the same bits as 4 epochs in one run", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ckpt-"));
  try {
    const data = toyData(32), val = toyData(16, 7);
    const run = async (epochs, checkpoint, resume, schedulerStep = "batch") => {
      const model = bnDropModel(11);
      const r = await sn.fit(model, data, { epochs, batchSize: 8, seed: 5, optimizer: "sgd", lr: 0.1, momentum: 0.9, scheduler: warmup, schedulerStep, validation: val, checkpoint, resume, augment: [sn.data.shift(1)] });
      return { model, r };
    };
    const full = await run(4);
    const path = join(dir, "ckpt.safetensors");
    await run(2, path);
    // the schedule's state is saved after the epoch's last step: 8 steps
    assert.is(JSON.parse(sn.parseSafetensors(readFileSync(path)).metadata.scheduler).last_epoch, 8);
    // the same schedule stepped per epoch from that state would give other rates: refused
    await run(4, path, true, "epoch").then(() => assert.unreachable(), (e) => assert.match(e.message, /ckpt\.safetensors: the run was saved with schedulerStep "batch", this one has "epoch"; resume it with the same setting/));
    const resumed = await run(4, path, true);
    assert.equal(stateOf(resumed.model), stateOf(full.model));
    assert.equal(resumed.model.rngStates(), full.model.rngStates());
    assert.equal(resumed.r.history.map((h) => [h.loss, h.lr, h.val_loss]), full.r.history.map((h) => [h.loss, h.lr, h.val_loss]));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("fit: metrics leave out what is not computed; early stopping on a value not computed fails before training", async () => {
  const only = await sn.fit(tinyModel(), toyData(16), { epochs: 2, batchSize: 8, optimizer: "sgd", metrics: ["loss"], validation: toyData(8, 2) });
  for (const r of only.history) {
    assert.equal(Object.keys(r).filter((k) => /top/.test(k)), [], `epoch ${r.epoch}: ${Object.keys(r)}`);
    assert.type(r.loss, "number");
    assert.type(r.val_loss, "number");
  }
  const top1 = await sn.fit(tinyModel(), toyData(16), { batchSize: 8, optimizer: "sgd", metrics: ["loss", "top1"], validation: toyData(8, 2) });
  assert.type(top1.history[0].top1, "number");
  assert.type(top1.history[0].val_top1, "number");
  assert.not.ok("top5" in top1.history[0] || "val_top5" in top1.history[0]);
  const cases = [
    [{ metrics: ["loss"], earlyStopping: { monitor: "top1" } }, /fit: earlyStopping monitors 'top1' but the history has no such value: metrics does not include 'top1'/],
    [{ metrics: ["top1"], validation: toyData(8, 2), earlyStopping: { monitor: "val_top5" } }, /monitors 'val_top5' but the history has no such value: metrics does not include 'top5'/],
    [{ earlyStopping: { monitor: "val_top1" } }, /monitors 'val_top1' but the history has no such value: there is no validation data/],
    [{ earlyStopping: { monitor: "accuracy" } }, /monitors 'accuracy' but the history has no such value: it is not one of loss, top1/],
    [{ metrics: ["loss", "acc"] }, /fit: metrics must be a list of "loss", "top1", "top5", got \["loss","acc"\]/],
  ];
  for (const [o, re] of cases) {
    const model = tinyModel();
    const before = stateOf(model);
    let batches = 0;
    await sn.fit(model, toyData(16), { batchSize: 8, optimizer: "sgd", lr: 0.5, callbacks: { onBatchEnd: () => batches++ }, ...o }).then(
      () => assert.unreachable(JSON.stringify(o)),
      (e) => assert.match(e.message, re),
    );
    assert.is(batches, 0, "no batch was trained");
    assert.equal(stateOf(model), before);
  }
});

test("fit: resume: true without a checkpoint path is an error; a resume file that does not exist starts afresh", async () => {
  await sn.fit(tinyModel(), toyData(8), { optimizer: "sgd", resume: true }).then(
    () => assert.unreachable(),
    (e) => assert.match(e.message, /fit: resume: true continues from the `checkpoint` path, but no checkpoint path is given/),
  );
  await sn.fit(tinyModel(), toyData(8), { optimizer: "sgd", resume: 1 }).then(
    () => assert.unreachable(),
    (e) => assert.match(e.message, /fit: resume must be true, false or a checkpoint path, got 1/),
  );
  const dir = mkdtempSync(join(tmpdir(), "ckpt-"));
  try {
    const fresh = tinyModel();
    const a = await sn.fit(fresh, toyData(16), { epochs: 2, batchSize: 8, optimizer: "sgd", resume: join(dir, "none.safetensors") });
    const b = tinyModel();
    await sn.fit(b, toyData(16), { epochs: 2, batchSize: 8, optimizer: "sgd" });
    assert.is(a.history.length, 2);
    assert.equal(stateOf(fresh), stateOf(b));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("a checkpoint that does not fit restores nothing: the model, optimiser and schedule stay as they were", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ckpt-"));
  try {
    const path = join(dir, "sgd.safetensors");
    await sn.fit(tinyModel(), toyData(16), { batchSize: 8, optimizer: "sgd", lr: 0.1, momentum: 0.9, scheduler: (o) => new sn.StepLR(o, { step_size: 1 }), checkpoint: path });
    const bytes = readFileSync(path);
    const refused = (model, optimizer, scheduler, re) => {
      const before = stateOf(model), optBefore = optimState(optimizer), rng = sn.defaultGenerator.getState();
      assert.throws(() => sn.unpackCheckpoint(bytes, { model, optimizer, scheduler }, "sgd.safetensors"), re);
      assert.equal(stateOf(model), before, "the model is as it was");
      assert.is(optimState(optimizer), optBefore, "the optimiser is as it was");
      assert.equal(sn.defaultGenerator.getState(), rng);
    };
    // momentum buffers and SGD's options into Adam
    let m = tinyModel(8);
    const adam = new sn.Adam(m.parameters(), { lr: 0.01 });
    refused(m, adam, new sn.StepLR(adam, { step_size: 1 }), /sgd\.safetensors: the optimiser state in the checkpoint does not fit the optimiser given: Adam: unknown options 'momentum', 'dampening', 'nesterov' in loadStateDict: group 0; a parameter group takes lr, betas, eps, weight_decay, amsgrad, initial_lr/);
    // the optimiser fits, the schedule does not (SequentialLR over two): the optimiser is put back
    m = tinyModel(8);
    let opt = new sn.SGD(m.parameters(), { lr: 0.5, momentum: 0.9 });
    refused(m, opt, warmup(opt), /the scheduler state in the checkpoint does not fit the scheduler given: SequentialLR\.loadStateDict: expected the states of 2 schedulers/);
    assert.is(opt.paramGroups[0].lr, 0.5 / 3, "the warm-up's lr is left as it was");
    // the same tensors, but a dropout layer the saved model did not have
    sn.manualSeed(8);
    m = nn.sequential(new nn.Conv2d(1, 4, 3, { padding: 1 }), new nn.ReLU(), new nn.MaxPool2d(2), new nn.Flatten(), new nn.Linear(64, 2), new nn.Dropout(0.5));
    opt = new sn.SGD(m.parameters(), { lr: 0.1, momentum: 0.9 });
    refused(m, opt, new sn.StepLR(opt, { step_size: 1 }), /sgd\.safetensors: no generator state for layer '5' \(Dropout\)/);
    // another architecture; and a schedule in the file with none given
    m = bnDropModel(1);
    opt = new sn.SGD(m.parameters(), { lr: 0.1, momentum: 0.9 });
    refused(m, opt, undefined, /the model's tensors do not match the checkpoint's \(Sequential\): missing '1\.weight'/);
    m = tinyModel(8);
    opt = new sn.SGD(m.parameters(), { lr: 0.1, momentum: 0.9 });
    refused(m, opt, undefined, /the checkpoint has scheduler state but no scheduler with loadStateDict\(\) was given/);
    // fit's resume refuses it the same way, before training
    m = tinyModel(8);
    const before = stateOf(m);
    await sn.fit(m, toyData(16), { batchSize: 8, optimizer: "adam", scheduler: (o) => new sn.StepLR(o, { step_size: 1 }), checkpoint: path, resume: true }).then(
      () => assert.unreachable(),
      (e) => assert.match(e.message, /does not fit the optimiser given: Adam/),
    );
    assert.equal(stateOf(m), before);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("an explicit loop with Adam saved after an epoch and resumed gives the bits of the uninterrupted loop", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ckpt-"));
  try {
    const data = toyData(32);
    const loaderOpts = { batchSize: 8, shuffle: true, augment: [sn.data.shift(1)] };
    const epoch = (model, opt, loader) => {
      for (const { x, y } of loader)
        sn.tidy(() => {
          opt.zeroGrad(true);
          sn.cross_entropy(model.forward(x), y).backward();
          opt.step();
        });
    };
    const setup = (seed, loaderSeed) => {
      const model = bnDropModel(seed);
      model.train();
      return { model, opt: new sn.Adam(model.parameters(), { lr: 0.01 }), loader: new sn.DataLoader(data, { ...loaderOpts, seed: loaderSeed }) };
    };
    const full = setup(11, 5);
    for (let e = 0; e < 3; e++) epoch(full.model, full.opt, full.loader);

    const first = setup(11, 5);
    epoch(first.model, first.opt, first.loader);
    const path = join(dir, "loop.safetensors");
    await sn.saveCheckpoint(path, { model: first.model, optimizer: first.opt, loader: first.loader, epoch: 1, extra: { note: "after epoch 1" } });
    // everything different before the load: weights, Adam's state (none), the loader's and the default generators
    const again = setup(99, 0);
    sn.manualSeed(1234);
    const r = await sn.loadCheckpoint(path, { model: again.model, optimizer: again.opt, loader: again.loader });
    assert.equal([r.epoch, r.extra], [1, { note: "after epoch 1" }]);
    assert.equal(stateOf(again.model), stateOf(first.model));
    for (let e = 1; e < 3; e++) epoch(again.model, again.opt, again.loader);

    assert.equal(stateOf(again.model), stateOf(full.model));
    assert.equal(again.model.rngStates(), full.model.rngStates());
    assert.is(optimState(again.opt), optimState(full.opt));
    assert.is(again.opt.stateDict().state[0].step, 12);
    for (const s of [full, first, again]) s.loader.dispose();
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test.after(() => sn.dispose());
test.run();

test("checkpointInfo is stored in each checkpoint and read back by readCheckpointInfo without restoring anything; bad values are refused", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ckpt-info-"));
  try {
    const path = join(dir, "c.safetensors");
    await sn.fit(tinyModel(), toyData(16), { epochs: 2, batchSize: 8, optimizer: "sgd", checkpoint: path, checkpointInfo: { run: "a", lr: 0.5, list: [1, 2] } });
    const bytes = new Uint8Array(readFileSync(path));
    const r = sn.readCheckpointInfo(bytes, "c.safetensors");
    assert.is(r.epoch, 2);
    assert.is(r.history.length, 2);
    assert.equal(r.info, { run: "a", lr: 0.5, list: [1, 2] });
    // damage anywhere is refused here as in unpackCheckpoint
    const bad = bytes.slice();
    bad[bad.length - 3] ^= 1;
    assert.throws(() => sn.readCheckpointInfo(bad, "c.safetensors"), /c\.safetensors: .*checksum/);
    assert.throws(() => sn.readCheckpointInfo("c"), /checkpoint: expected the checkpoint's bytes \(a Uint8Array\), got string/);
    // without checkpointInfo: null
    await sn.fit(tinyModel(), toyData(16), { epochs: 1, batchSize: 8, optimizer: "sgd", checkpoint: path });
    assert.is(sn.readCheckpointInfo(new Uint8Array(readFileSync(path))).info, null);
    for (const [ci, re] of [
      [[1], /fit: checkpointInfo must be a plain object, got an array/],
      [5, /fit: checkpointInfo must be a plain object, got 5/],
      [{ n: 1n }, /fit: checkpointInfo must be JSON \(it is stored as text\)/],
    ])
      await sn.fit(tinyModel(), toyData(8), { optimizer: "sgd", checkpoint: path, checkpointInfo: ci }).then(() => assert.unreachable(), (e) => assert.match(e.message, re));
    await sn.fit(tinyModel(), toyData(8), { optimizer: "sgd", checkpointInfo: { a: 1 } }).then(
      () => assert.unreachable(),
      (e) => assert.match(e.message, /fit: checkpointInfo is stored in checkpoints, but no checkpoint path is given/),
    );
  } finally {
    rmSync(dir, { recursive: true });
  }
});
