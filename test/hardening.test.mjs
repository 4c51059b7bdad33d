// Regressions for the defects a hostile tester found: model files that declare more than their
// weights hold (or nest without end, or are malformed), damaged checkpoint state, ops that built
// huge arrays from a size attribute before checking it, values that silently became NaN (or a
// dropped NaN that became 0), layer options checked only at forward time, duplicate child names,
// and an arena that could not reuse freed memory of another size once the memory had stopped
// growing. Each error names the file, op or layer and the shapes, and comes before allocating.
// The seeded fuzz tests of the model and checkpoint readers are in fuzz_model.test.mjs and
// fuzz_checkpoint.test.mjs.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as sn from "../dist/index.js";
const { nn } = sn;

test.before(async () => {
  await sn.init({ threads: 2 });
});

const MODEL = { format: "simdnet-model", version: 1 };
const file = (model, extra = {}) => JSON.stringify({ ...MODEL, model, ...extra });
const withDir = async (fn) => {
  const dir = mkdtempSync(join(tmpdir(), "harden-"));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
const throwsAsync = async (p, re) => {
  let err = null;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected an error matching ${re}`);
  assert.instance(err, Error);
  assert.match(err.message, re);
  return err;
};

// ---- 1. loadModel ----

test("loadModel: an 85-byte model.json declaring Linear(30000, 30000) is refused before it allocates, naming the file, the layer and the sizes", async () => {
  await withDir(async (dir) => {
    const json = JSON.stringify({ format: "simdnet-model", version: 1, model: { type: "Linear", args: [30000, 30000] } });
    assert.is(json.length, 85);
    writeFileSync(join(dir, "model.json"), json);
    writeFileSync(join(dir, "model.safetensors"), sn.weightsToSafetensors(new nn.Linear(2, 2)));
    const before = sn.engine().memoryStats();
    const t0 = performance.now();
    await throwsAsync(
      sn.loadModel(dir),
      /model\.json: layer '\(root\)' \(Linear \[30000, 30000\]\) would allocate tensor \[30000,30000\] \(3\.35 GiB\), more than .*model\.safetensors holds \(24 B in 2 tensors\)/,
    );
    assert.ok(performance.now() - t0 < 2000, "refused at once");
    const after = sn.engine().memoryStats();
    assert.is(after.wasmMemory, before.wasmMemory, "the memory did not grow");
    assert.ok(after.live <= before.live, "nothing is left allocated");
  });
});

test("loadModel: a layer whose shapes differ from the weight file's is refused as it is built, naming both shapes", async () => {
  const w = sn.weightsToSafetensors(new nn.Sequential(new nn.Linear(8, 5), new nn.ReLU(), new nn.Linear(5, 3)));
  const cfg = file({ type: "Sequential", children: [["0", { type: "Linear", args: [8, 4] }], ["1", { type: "ReLU" }], ["2", { type: "Linear", args: [4, 3] }]] });
  assert.throws(() => sn.modelFromBytes(cfg, w), /model\.json\.0: Linear declares '0\.weight' as \[4,8\] but model\.safetensors has it as \[5,8\]/);
  // names the config has and the file does not: the strict load names them
  const cfg2 = file({ type: "Sequential", children: [["a", { type: "Linear", args: [8, 5] }], ["1", { type: "ReLU" }], ["2", { type: "Linear", args: [5, 3] }]] });
  assert.throws(() => sn.modelFromBytes(cfg2, w), /model\.safetensors: loadStateDict \(Sequential\): missing 'a\.weight', 'a\.bias'; unexpected '0\.weight', '0\.bias'/);
});

test("loadModel: nesting is bounded (64 levels; a million does not overflow the stack)", async () => {
  const w = sn.weightsToSafetensors(new nn.Identity());
  const nest = (n) => {
    let s = '{"type":"Identity"}';
    for (let i = 0; i < n; i++) s = `{"type":"Sequential","children":[["a",${s}]]}`;
    return s;
  };
  const ok = sn.modelFromBytes(`{"format":"simdnet-model","version":1,"model":${nest(64)}}`, w);
  assert.is(ok.model.namedModules().length, 65);
  assert.throws(() => sn.modelFromBytes(`{"format":"simdnet-model","version":1,"model":${nest(65)}}`, w), /model\.json\.a\.a.*: the model nests more than 64 levels deep/);
  const deep = '{"format":"simdnet-model","version":1,"model":{"type":"Sequential","children":[["a",' + "[".repeat(1e6) + "]".repeat(1e6) + "]]}}";
  assert.throws(() => sn.modelFromBytes(deep, w), /model\.json\.a: expected a module \{type, args\?, children\?\}, got an array of 1/);
  const deepArgs = `{"format":"simdnet-model","version":1,"model":{"type":"Softmax","args":[${"[".repeat(1e5) + "]".repeat(1e5)}]}}`;
  assert.throws(() => sn.modelFromBytes(deepArgs, w), /model\.json: cannot build Softmax: Softmax: dim must be an integer, got an array of 1/);
});

test("loadModel: every field of model.json is checked, with errors naming the file and the place", () => {
  const w = sn.weightsToSafetensors(new nn.Sequential(new nn.ReLU()));
  const cases = [
    ["[1]", /model\.json: not a simdnet-model file \(it holds \[1\], not an object\)/],
    ["null", /model\.json: not a simdnet-model file \(it holds null, not an object\)/],
    [JSON.stringify({ format: "pt" }), /model\.json: not a simdnet-model file \(format is "pt"\)/],
    [JSON.stringify({ ...MODEL, version: 2, model: { type: "ReLU" } }), /model\.json: version 2 \(this simdnet reads version 1\)/],
    [JSON.stringify({ ...MODEL }), /model\.json: no model in the file/],
    [file({ type: "ReLU" }, { meta: [1] }), /model\.json: meta must be an object, got \[1\]/],
    [file({ type: 5 }), /model\.json: the module type must be a string, got 5/],
    [file({ type: "Conv3d" }), /model\.json: unknown module type 'Conv3d' \(known: .*Conv2d/],
    [file({ type: "Sequential", children: 5 }), /model\.json: the children of Sequential must be a list of \[name, module\], got 5/],
    [file({ type: "Sequential", children: [5] }), /model\.json: child 0 of Sequential must be a pair \[name, module\], got 5/],
    [file({ type: "Sequential", children: [["0"]] }), /model\.json: child 0 of Sequential must be a pair/],
    [file({ type: "Sequential", children: [[0, { type: "ReLU" }]] }), /model\.json: child 0 of Sequential has a bad name 0/],
    [file({ type: "Sequential", children: [["a.b", { type: "ReLU" }]] }), /has a bad name "a\.b"/],
    [file({ type: "Sequential", children: [["0", null]] }), /model\.json\.0: expected a module \{type, args\?, children\?\}, got null/],
    [file({ type: "Sequential", children: [["0", { type: "ReLU" }], ["0", { type: "Tanh" }]] }), /model\.json: Sequential has two children named '0'/],
    [file({ type: "Linear", args: "ab" }), /model\.json: the args of Linear must be a list, got "ab"/],
    [file({ type: "ReLU", weights: [] }), /model\.json: unexpected field "weights"/],
    [file({ type: "Linear", args: [2, 2, null] }), /model\.json: cannot build Linear: Linear: the options must be an object \{ bias \}, got null/],
    [file({ type: "Linear", args: [2, 2, { bias: "no" }] }), /Linear: bias must be true or false, got "no"/],
    [file({ type: "Residual", children: [["shortcut", { type: "ReLU" }]] }), /model\.json: cannot build Residual/],
  ];
  for (const [text, re] of cases) {
    let err = null;
    try {
      sn.modelFromBytes(text, w);
    } catch (e) {
      err = e;
    }
    assert.ok(err, `no error for ${text.slice(0, 80)}`);
    assert.is(err.constructor, Error, `${err.constructor.name}: ${err.message}`);
    assert.match(err.message, re);
  }
});

test("loadModel: a missing folder or file is named as such (not '.../nonexist/.json not found')", async () => {
  await withDir(async (dir) => {
    await throwsAsync(sn.loadModel(join(dir, "nonexist") + "/"), new RegExp(`loadModel: ${dir}/nonexist/: no such folder or file \\(give the folder saveModel wrote, with model\\.json and model\\.safetensors`));
    await throwsAsync(sn.loadModel(join(dir, "nonexist")), new RegExp(`loadModel: ${dir}/nonexist: no such folder, and no nonexist\\.json or nonexist\\.safetensors in ${dir}`));
    mkdirSync(join(dir, "out"));
    await throwsAsync(sn.loadModel(join(dir, "out")), new RegExp(`loadModel: ${dir}/out has no model\\.json and no model\\.safetensors \\(saveModel writes both files; the folder has no \\.json or \\.safetensors file\\)`));
    writeFileSync(join(dir, "out", "model.json"), file({ type: "ReLU" }));
    writeFileSync(join(dir, "out", "other.safetensors"), sn.weightsToSafetensors(new nn.ReLU()));
    await throwsAsync(sn.loadModel(join(dir, "out")), /out has no model\.safetensors \(saveModel writes both files; the folder has model\.json, other\.safetensors\)/);
    // what saveModel writes still loads, from the folder or either file
    const m = new nn.Sequential(new nn.Conv2d(1, 2, 3), new nn.BatchNorm2d(2), new nn.Dropout(0.3), new nn.Flatten(), new nn.Linear(2, 3));
    await sn.saveModel(m, join(dir, "ok"), { meta: { note: 1 } });
    for (const p of [join(dir, "ok"), join(dir, "ok", "model.json"), join(dir, "ok", "model.safetensors"), join(dir, "ok", "model")]) {
      const { model, meta } = await sn.loadModel(p);
      assert.equal(meta, { note: 1 });
      for (const [k, t] of m.stateDict()) assert.equal(Array.from(model.stateDict().get(k).toArray()), Array.from(t.toArray()), k);
    }
  });
});

// ---- 2. checkpoints ----

function parts(seed = 1) {
  sn.manualSeed(seed);
  const model = new nn.Sequential(new nn.Linear(4, 3), new nn.Dropout(0.2), new nn.Linear(3, 2));
  const optimizer = new sn.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const scheduler = new sn.StepLR(optimizer, { step_size: 2, gamma: 0.5 });
  return { model, optimizer, scheduler };
}
function trainedCheckpoint() {
  const p = parts(1);
  const x = sn.tensor(Float32Array.from({ length: 8 }, (_, i) => Math.sin(i)), [2, 4]);
  for (let i = 0; i < 3; i++) {
    sn.tidy(() => {
      p.optimizer.zeroGrad();
      sn.sum(p.model.call(x)).backward();
      p.optimizer.step();
    });
    p.scheduler.step();
  }
  return sn.packCheckpoint({ ...p, epoch: 3, history: [{ loss: 1 }] });
}
/** The checkpoint with its metadata edited and resealed (a hand edit, or a buggy writer). */
function edited(bytes, edit) {
  const f = sn.parseSafetensors(bytes);
  const meta = { ...f.metadata };
  edit(meta);
  const t = new Map([...f.tensors].map(([k, v]) => [k, { shape: v.shape, data: v.data }]));
  return sn.sealCheckpoint(sn.serializeSafetensors(t, meta));
}
const snapshot = (p) => JSON.stringify({
  model: [...p.model.stateDict()].map(([k, t]) => [k, Array.from(t.toArray())]),
  optim: p.optimizer.stateDict(),
  sched: p.scheduler.stateDict(),
  lr: p.optimizer.paramGroups.map((g) => g.lr),
  rng: sn.defaultGenerator.getState(),
  mods: p.model.rngStates(),
}, (_k, v) => (v instanceof Float32Array ? Array.from(v) : v));

test("checkpoints: a damaged last_lr / base_lrs is refused when restoring (not a NaN learning rate epochs later), and nothing changes", () => {
  const bytes = trainedCheckpoint();
  const bad = [
    [(s) => (s.last_lr = ["a"]), /the scheduler state in the checkpoint does not fit the scheduler given: StepLR\.loadStateDict: last_lr\[0\] must be a finite number >= 0, got "a"/],
    [(s) => (s.base_lrs = [null]), /base_lrs\[0\] must be a finite number >= 0, got null/],
    [(s) => (s.base_lrs = [-0.1]), /base_lrs\[0\] must be a finite number >= 0, got -0\.1/],
    [(s) => (s.last_lr = [0.1, 0.1]), /last_lr must be a list of 1 learning rates, got 2/],
    [(s) => delete s.last_lr, /last_lr must be a list of 1 learning rates, got null/],
    [(s) => (s.step_count = 1.5), /step_count must be an integer >= 0, got 1\.5/],
    [(s) => (s.last_epoch = "3"), /last_epoch must be an integer >= -1, got "3"/],
    [(s) => (s.extra = 1), /unexpected key 'extra'/],
  ];
  for (const [edit, re] of bad) {
    const b = edited(bytes, (m) => {
      const s = JSON.parse(m.scheduler);
      edit(s);
      m.scheduler = JSON.stringify(s);
    });
    const p = parts(2);
    const before = snapshot(p);
    assert.throws(() => sn.unpackCheckpoint(b, p), re);
    assert.is(snapshot(p), before, "nothing changed");
  }
  // a NaN written as the packer writes non-finite numbers
  const nan = edited(bytes, (m) => {
    const s = JSON.parse(m.scheduler);
    s.last_lr = [{ __num__: "NaN" }];
    m.scheduler = JSON.stringify(s);
  });
  assert.throws(() => sn.unpackCheckpoint(nan, parts(2)), /last_lr\[0\] must be a finite number >= 0, got null/);
  // the undamaged file restores
  const p = parts(2);
  assert.is(sn.unpackCheckpoint(bytes, p).epoch, 3);
});

test("checkpoints: optimiser state is checked in full (ids, steps, options, buffers)", () => {
  const bytes = trainedCheckpoint();
  const bad = [
    [(o) => (o.param_groups[0].params[1] = 0), /parameter id 0 appears twice/],
    [(o) => (o.param_groups[0].params[0] = "x"), /parameter id "x" is not an integer >= 0/],
    [(o) => (o.param_groups[0].params[0] = 9), /state for parameter id "0", which no group lists/],
    [(o) => delete o.param_groups[0].momentum, /group 0 has no 'momentum'/],
    [(o) => (o.param_groups[0].lr = "0.1"), /invalid lr "0\.1": must be a finite number >= 0/],
    [(o) => (o.param_groups[0].initial_lr = -1), /initial_lr must be a finite number >= 0, got -1/],
    [(o) => (o.state[0].step = 3), /parameter 0: bad step 3 \(SGD keeps no step\)/],
    [(o) => (o.state[0] = null), /parameter 0: the state must be an object, got null/],
    [(o) => (o.extra = {}), /unexpected key 'extra'/],
  ];
  for (const [edit, re] of bad) {
    const b = edited(bytes, (m) => {
      const o = JSON.parse(m.optimizer);
      edit(o);
      m.optimizer = JSON.stringify(o);
    });
    const p = parts(2);
    const before = snapshot(p);
    assert.throws(() => sn.unpackCheckpoint(b, p), re);
    assert.is(snapshot(p), before, "nothing changed");
  }
});

test("checkpoints: an all-zero generator state is refused (xoshiro would give a constant stream)", () => {
  assert.throws(() => new sn.Generator(1).setState({ s: [0, 0, 0, 0] }), /Generator\.setState: the all-zero state is not a valid xoshiro128\*\* state/);
  const bytes = trainedCheckpoint();
  for (const where of ["default", "modules"]) {
    const b = edited(bytes, (m) => {
      const r = JSON.parse(m.rng);
      if (where === "default") r.default = { s: [0, 0, 0, 0] };
      else r.modules["1"] = { s: [0, 0, 0, 0] };
      m.rng = JSON.stringify(r);
    });
    const p = parts(2);
    const before = snapshot(p);
    assert.throws(() => sn.unpackCheckpoint(b, p), /bad random generator state for (the default generator|layer '1'): \{"s":\[0,0,0,0\]\} \(Generator\.setState: the all-zero state/);
    assert.is(snapshot(p), before);
  }
});

test("checkpoints: a flipped bit anywhere (a weight, a digit of the epoch) fails the checksum; a file without one is refused", () => {
  const bytes = trainedCheckpoint();
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const flip = (at) => {
    const b = new Uint8Array(bytes);
    b[at] ^= 1;
    return b;
  };
  const p = parts(2);
  const before = snapshot(p);
  // the last byte of the data: the low bit of a float, a value that would load silently
  assert.throws(() => sn.unpackCheckpoint(flip(bytes.length - 1), p), /checkpoint: checksum mismatch \(the file says [0-9a-f]{16}, its bytes give [0-9a-f]{16}\): the file is damaged/);
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.throws(() => sn.unpackCheckpoint(flip(8 + text.indexOf('"epoch":"3"') + 9), p), /checksum mismatch/);
  assert.is(snapshot(p), before);
  const unsealed = (() => {
    const f = sn.parseSafetensors(bytes);
    const { checksum, ...meta } = f.metadata;
    return sn.serializeSafetensors(new Map([...f.tensors].map(([k, v]) => [k, { shape: v.shape, data: v.data }])), meta);
  })();
  assert.throws(() => sn.unpackCheckpoint(unsealed, p), /the metadata has no checksum: damaged, or written by an older simdnet/);
  assert.is(snapshot(p), before);
});

// ---- 3. ops and layers ----

test("a tensor where an op takes a number is named in a short message, not serialised", () => {
  const x = sn.ones([4]);
  let msg = "";
  try {
    sn.mul(x, x);
  } catch (e) {
    msg = e.message;
  }
  assert.match(msg, /^mul_scalar: scalar must be a number, got a tensor \[4\] on cpu/);
  assert.ok(msg.length < 200, `${msg.length} characters`);
  assert.throws(() => sn.leaky_relu(x, x), /negative_slope must be a finite number, got a tensor \[4\] on cpu/);
});

test("adaptive_avg_pool2d (and the other ops with output sizes) check the output size before building anything", () => {
  const x = sn.ones([1, 1, 4, 4]);
  const quick = (f, re) => {
    const t0 = performance.now();
    assert.throws(f, (e) => e instanceof sn.OpError && re.test(e.message));
    assert.ok(performance.now() - t0 < 500, `${re} took ${performance.now() - t0} ms`);
  };
  quick(() => sn.adaptive_avg_pool2d(x, 1e9), /adaptive_avg_pool2d: the output \[1,1,1000000000,1000000000\] would need 3\.64e\+9 GiB|adaptive_avg_pool2d: the output \[1,1,1000000000,1000000000\] would need .* more than the engine's memory can hold \(4\.00 GiB\) \(input \[1,1,4,4\], output_size 1000000000\)/);
  quick(() => sn.adaptive_avg_pool2d(x, [1e9, 1]), /adaptive_avg_pool2d: the output \[1,1,1000000000,1\] would need 3\.73 GiB and its index tables 11\.18 GiB, more than the engine's memory can hold/);
  quick(() => sn.adaptive_avg_pool2d(x, 2 ** 53), /adaptive_avg_pool2d: output_size 9007199254740992 is too large \(at most 2\^31 - 1\)/);
  quick(() => sn.interpolate(x, { size: [1e9, 1e9] }), /upsample_nearest2d: the output \[1,1,1000000000,1000000000\] would need .*\(input \[1,1,4,4\], size \[1000000000, 1000000000\]\)/);
  quick(() => sn.interpolate(x, { mode: "bilinear", scale_factor: 1e8 }), /upsample_bilinear2d: the output \[1,1,400000000,400000000\] would need/);
  quick(() => sn.max_pool2d(x, { kernel_size: 2 ** 31 - 1, padding: 2 ** 30 - 1 }), /max_pool2d:/);
  quick(() => sn.conv2d(x, sn.ones([1, 1, 1, 1]), null, { padding: 2 ** 30 }), /conv2d: the output \[1,1,2147483652,2147483652\] would need/);
  quick(() => sn.conv_transpose2d(x, sn.ones([1, 1, 1, 1]), null, { stride: 2 ** 30 }), /conv_transpose2d: the output \[1,1,3221225473,3221225473\] would need/);
  quick(() => sn.cross_entropy(sn.ones([1, 3]), sn.tensor([0]), { ignore_index: 2 ** 32 }), /cross_entropy: ignore_index must be an integer in \[-2\^31, 2\^31\), got 4294967296/);
  // a pool over a huge kernel that fits: answered without walking the kernel
  const t0 = performance.now();
  assert.equal(sn.max_pool2d(x, { kernel_size: [2 ** 30 + 1, 1], padding: [2 ** 29, 0], stride: [2 ** 30, 1] }).shape, [1, 1, 1, 4]);
  assert.ok(performance.now() - t0 < 500);
});

test("tensor() and full() refuse values that are not numbers (no silent NaN)", () => {
  assert.throws(() => sn.tensor(["a"]), /tensor: values must be numbers, got "a" at index 0/);
  assert.throws(() => sn.tensor([[1, 2], [3, "x"]]), /tensor: values must be numbers, got "x" at index 3/);
  assert.throws(() => sn.tensor([1, null]), /got object at index 1/);
  assert.throws(() => sn.tensor([true]), /got boolean at index 0/);
  assert.throws(() => sn.tensor({ length: 1, 0: "x" }), /got "x" at index 0/);
  assert.throws(() => sn.tensor(new BigInt64Array(1)), /got bigint at index 0/);
  assert.throws(() => sn.full([2], "x"), /full: value must be a number, got string/);
  assert.equal(Array.from(sn.tensor([NaN, 1]).toArray()), [NaN, 1], "NaN is a number");
  assert.equal(Array.from(sn.full([2], NaN).toArray()), [NaN, NaN]);
  assert.equal(Array.from(sn.tensor(new Float64Array([1.5])).toArray()), [1.5]);
});

test("dropout propagates NaN as PyTorch does: the input times a mask of 0 and 1/(1-p), so a dropped NaN or infinity is NaN and a dropped -x is -0", () => {
  const n = 1031; // a tail past the vector loop
  const seed = 12345, p = 0.3, scale = Math.fround(1 / (1 - p));
  const mask = sn.dropout(sn.ones([n]), { p, seed }).toArray(); // scale where kept, 0 where dropped
  const vals = [NaN, Infinity, -Infinity, -2, 3, 0];
  const x = Float32Array.from({ length: n }, (_, i) => vals[i % vals.length]);
  const y = sn.dropout(sn.tensor(x), { p, seed }).toArray();
  let dropped = 0;
  for (let i = 0; i < n; i++) {
    const want = Math.fround(x[i] * (mask[i] ? scale : 0));
    assert.ok(Object.is(y[i], want), `element ${i}: dropout(${x[i]}) = ${y[i]}, want ${want}`);
    if (!mask[i]) dropped++;
  }
  assert.ok(dropped > 200 && dropped < 420, `${dropped} dropped`);
  // backward: the same mask times the incoming gradient
  const xt = sn.tensor(new Float32Array(n)).requireGrad();
  const yt = sn.dropout(xt, { p, seed });
  yt.backward(sn.tensor(x));
  const g = xt.grad.toArray();
  for (let i = 0; i < n; i++) assert.ok(Object.is(g[i], Math.fround(x[i] * (mask[i] ? scale : 0))), `gradient ${i}`);
});

test("layers check their arguments when built, not at forward time", () => {
  const cases = [
    [() => new nn.Dropout(null), /Dropout: p must be a number in \[0, 1\) \(new Dropout\(0\.5\)\), got null/],
    [() => new nn.Dropout("0.5"), /Dropout: p must be a number in \[0, 1\) \(new Dropout\(0\.5\)\), got "0\.5"/],
    [() => new nn.MaxPool2d(2, { ceilMode: "yes" }), /MaxPool2d: ceilMode must be true or false, got "yes"/],
    [() => new nn.AvgPool2d(2, { countIncludePad: 1 }), /AvgPool2d: countIncludePad must be true or false, got 1/],
    [() => new nn.AvgPool2d(2, { ceilmode: true }), /AvgPool2d: unknown option 'ceilmode' \(did you mean 'ceilMode'\?\); AvgPool2d takes stride, padding, ceilMode, countIncludePad/],
    [() => new nn.MaxPool2d(2, null), /MaxPool2d: the options must be an object/],
    [() => new nn.Conv2d(1, 1, 3, null), /Conv2d: the options must be an object \{ stride, padding, dilation, \.\.\. \}, got null/],
    [() => new nn.Conv2d(1, 1, 3, { bias: "no" }), /Conv2d: bias must be true or false, got "no"/],
    [() => new nn.Conv2d(1, 1, 2 ** 31), /Conv2d: kernel_size must be an integer >= 1 or a pair \[h, w\] of them, got 2147483648/],
    [() => new nn.ConvTranspose2d(1, 1, 3, { output_padding: 1 }), /ConvTranspose2d: unknown option 'output_padding'/],
    [() => new nn.Linear(2, 2, { bias: 0 }), /Linear: bias must be true or false, got 0/],
    [() => new nn.BatchNorm2d(2, { momentum: null }), /BatchNorm2d: momentum must be a finite number in \[0, 1\], got null/],
    [() => new nn.BatchNorm2d(2, { affine: "true" }), /BatchNorm2d: affine must be true or false/],
    [() => new nn.LocalResponseNorm(2, { alpha: "1" }), /LocalResponseNorm: alpha must be a finite number, got "1"/],
    [() => new nn.Upsample({ scaleFactor: 2, alignCorners: "no" }), /Upsample: alignCorners must be true or false/],
    [() => new nn.Upsample({ scaleFactor: Infinity }), /Upsample: scaleFactor must be a finite number > 0/],
    [() => new nn.PartialConv2d(2, [[0]], 3, { dilation: 2 }), /PartialConv2d: unknown option 'dilation'/],
    [() => new nn.PartialConv2d("2", [[0]], 3), /PartialConv2d: in_channels must be a positive integer, got "2"/],
  ];
  for (const [f, re] of cases) assert.throws(f, re);
});

test("a container with two children of one name is an error (one was silently lost)", () => {
  assert.throws(() => new nn.Sequential([["a", new nn.ReLU()], ["a", new nn.Tanh()]]), /Sequential: two children named 'a' \(names must be unique\)/);
  assert.throws(() => new nn.Concat([["b", new nn.ReLU()], ["b", new nn.Tanh()]]), /Concat: two children named 'b'/);
  assert.throws(() => new nn.Sequential(new nn.ReLU()).add(new nn.Tanh(), "0"), /Sequential: two children named '0'/);
  assert.throws(() => sn.modelFromConfig(file({ type: "Sequential", children: [["a", { type: "ReLU" }], ["a", { type: "Tanh" }]] })), /Sequential has two children named 'a'/);
  // replacing one on purpose still works
  const s = new nn.Sequential(new nn.ReLU());
  s.replaceModule("0", new nn.Tanh());
  assert.is(s.at(0).type, "Tanh");
});

// ---- 4. the arena ----

const MiB = 2 ** 20;

test("arena: once the memory cannot grow, freed memory serves any size (a big buffer freed serves small ones and back)", async () => {
  await sn.init({ threads: 2, maxMemory: 64 * MiB, sentinels: true, warmUp: false });
  try {
    const eng = sn.engine();
    const base = eng.memoryStats().live;
    let big = sn.empty([(52 * MiB) / 4]); // most of the memory
    big.dispose();
    // 652 KiB live (as in the report) and 512 KiB tensors: they come out of the big free block
    const small = [];
    for (let i = 0; i < 40; i++) small.push(sn.full([(512 * 1024) / 4], i));
    for (const t of small) assert.is(t.ptr % 64, 0);
    small.forEach((t, i) => assert.is(t.data[0], i));
    eng.arena.checkSentinels();
    for (const t of small) t.dispose();
    // and merged back into one big block
    big = sn.full([(52 * MiB) / 4], 7);
    assert.is(big.data[big.size - 1], 7);
    eng.arena.checkSentinels();
    big.dispose();
    // mixed sizes, freed in a scattered order, then one that needs neighbours merged
    const mixed = [];
    for (let i = 0; i < 60; i++) mixed.push(sn.empty([(((i % 7) + 1) * 97 * 1024) / 4]));
    for (let i = 0; i < mixed.length; i += 2) mixed[i].dispose();
    for (let i = 1; i < mixed.length; i += 2) mixed[i].dispose();
    const again = sn.empty([(40 * MiB) / 4]);
    again.dispose();
    assert.is(eng.memoryStats().live, base);
    assert.ok(eng.memoryStats().wasmMemory <= 64 * MiB);
  } finally {
    await sn.init({ threads: 2 });
  }
});

test("arena: the out-of-memory error says what is really available (maxMemory, or what the runtime allowed), not '4 GiB'", async () => {
  await sn.init({ threads: 2, maxMemory: 32 * MiB, warmUp: false });
  try {
    const keep = sn.empty([(20 * MiB) / 4]);
    assert.throws(
      () => sn.zeros([16, MiB / 4]),
      /out of memory: tensor \[16,262144\] needs 16\.0 MiB but at most \d+\.\d MiB can be allocated: the engine's memory is limited to 32\.0 MiB \(init's maxMemory\) \(20\.\d MiB in use, .* free, .* not yet reserved\)/,
    );
    keep.dispose();
    assert.is(sn.zeros([16, MiB / 4]).size, 4 * MiB, "and works once there is room");
  } finally {
    await sn.init({ threads: 2 });
  }
  // a runtime that refuses to grow past 8 MiB (a browser tab under pressure): the arena learns the
  // real ceiling from the refusal
  const Arena = sn.engine().arena.constructor;
  let buffer = new ArrayBuffer(4 * MiB);
  const memory = {
    get buffer() {
      return buffer;
    },
    grow(pages) {
      const next = buffer.byteLength + pages * 65536;
      if (next > 8 * MiB) throw new RangeError("WebAssembly.Memory.grow(): Maximum memory size exceeded");
      const b = new ArrayBuffer(next);
      new Uint8Array(b).set(new Uint8Array(buffer));
      buffer = b;
    },
  };
  const a = new Arena(memory, false);
  const p1 = a.alloc(5 * MiB, "tensor one");
  assert.throws(() => a.alloc(4 * MiB, "tensor two"), /out of memory: tensor two needs 4\.0 MiB but at most 3\.9 MiB can be allocated: the runtime refused to grow the wasm memory to 9\.1 MiB \(5\.0 MiB in use, 0 B free, 3\.9 MiB not yet reserved\)/);
  a.release(p1);
  const p2 = a.alloc(4 * MiB, "tensor two");
  const p3 = a.alloc(MiB, "tensor three");
  assert.ok(p2 >= 65536 && p3 >= 65536 && p2 % 64 === 0 && p3 % 64 === 0 && p3 !== p2);
  assert.is(a.limit, 9 * MiB, "below the size that was refused");
});

test("arena: a repeated step still allocates nothing new, also after memory was reclaimed", async () => {
  await sn.init({ threads: 2, maxMemory: 48 * MiB, warmUp: false });
  try {
    const big = sn.empty([(30 * MiB) / 4]);
    big.dispose();
    const x = sn.tensor(new Float32Array(300000).fill(1));
    const step = () => sn.tidy(() => sn.add(sn.relu(x), x).toArray()[0]);
    for (let i = 0; i < 3; i++) step();
    const before = sn.engine().memoryStats();
    const t0 = performance.now();
    for (let i = 0; i < 50; i++) step();
    assert.is(sn.engine().memoryStats().reserved, before.reserved);
    assert.is(sn.engine().memoryStats().live, before.live);
    assert.ok(performance.now() - t0 < 2000);
  } finally {
    await sn.init({ threads: 2 });
  }
});

test("init: maxMemory is checked", async () => {
  await sn.init({ maxMemory: "1" }).then(() => assert.unreachable(), (e) => assert.match(e.message, /init: maxMemory must be a whole number of bytes from 2 MiB to 4 GiB, got "1"/));
  await sn.init({ maxMemory: 2 ** 33 }).then(() => assert.unreachable(), (e) => assert.match(e.message, /maxMemory must be a whole number of bytes from 2 MiB to 4 GiB, got 8589934592/));
  await sn.init({ threads: 2 });
});

test.run();
