// Errors that GPU kernels find in their data (device-side asserts, src/webgpu/engine.ts): a loss
// called directly on webgpu with a bad target (a class index out of range or not an integer, a
// binary_cross_entropy input outside [0, 1]) cannot be checked before it runs, as the CPU op is;
// its kernels write NaN and record the first bad element, and the next read rejects with the CPU
// op's message. Checked here: the message (the CPU's, plus where it was found), reductions,
// both row kernels and score maps, ignore_index, the lowest index and the earliest dispatch win,
// backward checks too, the error is reported once and then the engine reads fine, a value that
// is gone, concurrent reads, fit with a custom loss, and that a training step costs nothing more
// (no buffer, submit or read).
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { initGpu, runAndExit } from "./gpu_helpers.mjs";
import { toyData, tinyModel } from "./helpers.mjs";

test.before(async () => {
  await initGpu(sn);
});

const logits = (N, C) => sn.tensor(Float32Array.from({ length: N * C }, (_, i) => Math.sin(i * 0.7)), [N, C]);
// Every GPU tensor made here stays referenced: the error reads a bad value back only while the
// checked tensor lives, and a temporary target may be garbage-collected before the read.
const alive = [];
const onGpu = (t) => {
  const g = t.to("webgpu");
  alive.push(g);
  return g;
};

/** The error that p rejects with (fails if it resolves). */
async function rejection(p, what) {
  try {
    const v = await p;
    assert.unreachable(`${what}: read ${v} instead of rejecting`);
  } catch (e) {
    if (e instanceof assert.Assertion) throw e;
    return e;
  }
}

/** The CPU op's error for the same call. */
function cpuError(f) {
  try {
    f();
  } catch (e) {
    return e;
  }
  assert.unreachable("the CPU op did not throw");
}

/** The GPU message is the CPU's, with where it was found added inside its parentheses. */
function sameAsCpu(gpuErr, cpuErr, read = "a tensor [] back") {
  assert.instance(gpuErr, sn.OpError, gpuErr.message);
  assert.is(gpuErr.message, cpuErr.message.replace(/\)$/, `; on webgpu, found when reading ${read})`));
}

test("cross_entropy with a bad target: read() rejects with the CPU op's message (out of range, negative, not an integer, NaN; every reduction)", async () => {
  const x = logits(4, 10);
  for (const bad of [10, 12, -1, 1.5, NaN]) {
    const t = [3, bad, 0, 9];
    for (const reduction of ["mean", "sum", "none"]) {
      const cpu = cpuError(() => sn.cross_entropy(x, sn.tensor(t, [4]), { reduction }));
      const y = sn.cross_entropy(onGpu(x), onGpu(sn.tensor(t, [4])), { reduction });
      const e = await rejection(y.read(), `target ${bad}, ${reduction}`);
      sameAsCpu(e, cpu, reduction === "none" ? "a tensor [4] back" : "a tensor [] back");
      assert.match(e.message, `target[1]${Number.isNaN(bad) ? " = NaN" : ` = ${bad}`} is not a class index in [0, 10) or ignore_index -100 (input [4,10]; on webgpu`);
      // the kernels still wrote their NaN: the error was reported once, the values read now
      const v = await y.read();
      if (reduction === "none") assert.ok(Number.isNaN(v[1]) && !Number.isNaN(v[0]), `target ${bad}: ${v}`);
      else assert.ok(Number.isNaN(v[0]), `target ${bad} ${reduction}: ${v}`);
    }
  }
  // a good call reads fine afterwards, and equals the CPU
  const t = sn.tensor([3, 1, 0, 9], [4]);
  const want = sn.cross_entropy(x, t).toArray()[0];
  const got = (await sn.cross_entropy(onGpu(x), onGpu(t)).read())[0];
  assert.ok(Math.abs(got - want) < 1e-5, `${got} vs ${want}`);
});

test("ignore_index is not an error (the default -100 and a given 255), and an ignore_index inside [0, C) is just a class", async () => {
  const x = onGpu(logits(4, 10));
  const a = await sn.cross_entropy(x, onGpu(sn.tensor([3, -100, 0, -100], [4]))).read();
  assert.ok(Number.isFinite(a[0]), `${a}`);
  const b = await sn.cross_entropy(x, onGpu(sn.tensor([255, 1, 255, 2], [4])), { ignore_index: 255, reduction: "none" }).read();
  assert.equal([b[0], b[2]], [0, 0]);
  // with ignore_index 255, -100 is an ordinary bad target again (and the message has no "or ignore_index")
  const e = await rejection(sn.cross_entropy(x, onGpu(sn.tensor([255, -100, 1, 2], [4])), { ignore_index: 255 }).read(), "-100 with ignore_index 255");
  assert.match(e.message, "cross_entropy: target[1] = -100 is not a class index in [0, 10) or ignore_index 255 (");
  const e2 = await rejection(sn.cross_entropy(x, onGpu(sn.tensor([3, 10, 1, 2], [4])), { ignore_index: 3 }).read(), "ignore_index 3");
  assert.match(e2.message, "cross_entropy: target[1] = 10 is not a class index in [0, 10) (input [4,10]; on webgpu");
});

test("cross_entropy on score maps and with many classes (a workgroup a row): the flat index of the first bad target", async () => {
  // [N, C, H, W] = [2, 3, 2, 2]: targets [2, 2, 2], a thread a position
  const xm = sn.tensor(Float32Array.from({ length: 24 }, (_, i) => Math.cos(i)), [2, 3, 2, 2]);
  const tm = [0, 1, -100, 2, 1, 2, 7, 3];
  const cpu = cpuError(() => sn.cross_entropy(xm, sn.tensor(tm, [2, 2, 2])));
  const e = await rejection(sn.cross_entropy(onGpu(xm), onGpu(sn.tensor(tm, [2, 2, 2]))).read(), "maps");
  sameAsCpu(e, cpu);
  assert.match(e.message, "target[6] = 7 is not a class index in [0, 3)");
  // 200 classes: one workgroup a row (ce_fwd_wg / ce_bwd_wg), only one thread reports
  const xw = logits(3, 200).requireGrad();
  const tw = [5, 199, 200.5];
  const cpu2 = cpuError(() => sn.cross_entropy(xw, sn.tensor(tw, [3])));
  const gx = onGpu(xw).requireGrad();
  const y = sn.cross_entropy(gx, onGpu(sn.tensor(tw, [3])));
  sameAsCpu(await rejection(y.read(), "200 classes"), cpu2);
  // backward's kernel checks the same targets (the forward's error was reported already)
  y.backward();
  const eg = await rejection(gx.grad.read(), "200 classes, gradient");
  assert.match(eg.message, "cross_entropy: target[2] = 200.5 is not a class index in [0, 200) or ignore_index -100 (input [3,200]; on webgpu, found when reading a tensor [3,200] back)");
  assert.ok(Number.isNaN((await gx.grad.read())[400]));
});

test("multi_margin_loss and binary_cross_entropy: the CPU op's message, forward and backward", async () => {
  const x = logits(4, 10);
  const t = [0, 1, 10, 2.5];
  sameAsCpu(await rejection(sn.multi_margin_loss(onGpu(x), onGpu(sn.tensor(t, [4]))).read(), "margin"), cpuError(() => sn.multi_margin_loss(x, sn.tensor(t, [4]))));
  const gx = onGpu(x).requireGrad();
  sn.multi_margin_loss(gx, onGpu(sn.tensor([0, 1, 2, -3], [4]))).backward();
  // the forward's error is the one reported (it ran first); the backward's came after it
  assert.match((await rejection(gx.grad.read(), "margin backward")).message, "multi_margin_loss: target[3] = -3 is not a class index in [0, 10) (input [4,10]; on webgpu, found when reading a tensor [4,10] back)");
  const p = [0.5, 0, 1, 1.5, -0.5, NaN];
  for (const q of [p, [0.2, NaN, 0.3, 0.4, 0.5, 0.6]]) {
    const pt = sn.tensor(q, [2, 3]), yt = sn.tensor([1, 0, 1, 0, 1, 0], [2, 3]);
    const cpu = cpuError(() => sn.binary_cross_entropy(pt, yt));
    sameAsCpu(await rejection(sn.binary_cross_entropy(onGpu(pt), onGpu(yt), { reduction: "none" }).read(), `bce ${q}`), cpu, "a tensor [2,3] back");
  }
  const bp = onGpu(sn.tensor([0.5, 2, 0.5], [3])).requireGrad();
  const bl = sn.binary_cross_entropy(bp, onGpu(sn.tensor([1, 1, 0], [3])));
  await rejection(bl.read(), "bce forward");
  bl.backward();
  assert.match((await rejection(bp.grad.read(), "bce backward")).message, "binary_cross_entropy: input values must be probabilities in [0, 1], got 2 at element 1 (input [3]; on webgpu");
  // a target outside [0, 1] is not checked, as on the CPU (PyTorch's neither)
  assert.ok(Number.isFinite((await sn.binary_cross_entropy(onGpu(sn.tensor([0.5], [1])), onGpu(sn.tensor([2], [1]))).read())[0]));
});

test("the lowest bad index and the earliest failing call win, the same every run; later errors before that read are dropped", async () => {
  const x = onGpu(logits(600, 4)); // 600 rows: three workgroups of threads race to report
  const t = Float32Array.from({ length: 600 }, (_, i) => (i % 7 === 3 || i > 500 ? 9 : i % 4));
  for (let run = 0; run < 3; run++) {
    const e = await rejection(sn.cross_entropy(x, onGpu(sn.tensor(t, [600]))).read(), `run ${run}`);
    assert.match(e.message, "target[3] = 9 is not a class index in [0, 4)");
  }
  // two failing calls before one read: the first is reported, the second is not kept
  const first = sn.binary_cross_entropy(onGpu(sn.tensor([0.5, 3], [2])), onGpu(sn.tensor([1, 0], [2])));
  const second = sn.cross_entropy(x, onGpu(sn.tensor(t, [600])));
  assert.match((await rejection(second.read(), "two errors")).message, /^binary_cross_entropy: .* got 3 at element 1 .*found when reading a tensor \[\] back\)$/);
  assert.ok(Number.isNaN((await first.read())[0]), "the first call's value, read again");
});

test("the error is reported by the next read of any tensor (it names that read), once; later reads are fine", async () => {
  const x = onGpu(logits(4, 10));
  const other = onGpu(sn.tensor([1, 2, 3], [3]));
  other.name = "other";
  const bad = sn.cross_entropy(x, onGpu(sn.tensor([0, 1, 2, 11], [4])), { reduction: "none" });
  const e = await rejection(other.read(), "unrelated read");
  assert.match(e.message, 'cross_entropy: target[3] = 11 is not a class index in [0, 10) or ignore_index -100 (input [4,10]; on webgpu, found when reading tensor "other" [3] back)');
  assert.equal([...(await other.read())], [1, 2, 3]);
  assert.ok(Number.isNaN((await bad.read())[3]));
  // two reads in flight together: exactly one of them carries the error
  sn.cross_entropy(x, onGpu(sn.tensor([0, 1, 2, 12], [4])));
  const r = await Promise.allSettled([other.read(), x.read(), other.read()]);
  assert.equal(r.map((s) => s.status), ["rejected", "fulfilled", "fulfilled"]);
  assert.match(r[0].reason.message, "target[3] = 12");
});

test("a target freed (or written) before the read: the index without the value", async () => {
  const x = onGpu(logits(4, 10));
  const t = onGpu(sn.tensor([0, 1, 2, 13], [4]));
  const y = sn.cross_entropy(x, t);
  t.dispose();
  const e = await rejection(y.read(), "freed target");
  assert.is(e.message, "cross_entropy: target[3] is not a class index in [0, 10) or ignore_index -100 (input [4,10]; on webgpu, found when reading a tensor [] back; its value is unknown: the tensor was freed or written before the read)");
});

test("more checking kernels than are kept between two reads: the error still names the op and the index", async () => {
  const x = onGpu(logits(4, 10));
  const bad = sn.cross_entropy(x, onGpu(sn.tensor([0, 1, 14, 2], [4])), { reduction: "none" });
  const good = onGpu(sn.tensor([0, 1, 2, 3], [4]));
  for (let i = 0; i < 4100; i++) sn.cross_entropy(x, good, { reduction: "none" }).dispose();
  const e = await rejection(bad.read(), "details dropped");
  assert.is(e.message, "cross_entropy: target[2] is not a class index (on webgpu, found when reading a tensor [4] back; the details of that call were not kept: more than 4096 checking kernels ran before the read)");
  // an empty tensor's read checks too
  sn.multi_margin_loss(x, onGpu(sn.tensor([0, 1, 2, 30], [4])));
  const e0 = await rejection(onGpu(sn.zeros([0])).read(), "empty read");
  assert.match(e0.message, "multi_margin_loss: target[3] = 30 is not a class index in [0, 10) (input [4,10]; on webgpu, found when reading a tensor [0] back)");
});

test("fit with a custom loss on bad targets: the periodic read rejects with the loss's error (fit checks the labels only for its own loss)", async () => {
  // labels 0 and 1 of 2 classes, doubled by the loss: 2 is out of range
  const loss = (out, y) => sn.cross_entropy(out, sn.add(y, y));
  const e = await rejection(sn.fit(tinyModel(), toyData(8), { device: "webgpu", epochs: 1, batchSize: 4, shuffle: false, loss }), "fit");
  assert.instance(e, sn.OpError);
  // the loss's target (y + y) was freed at the end of its step: its value is not read back
  assert.is(e.message, "cross_entropy: target[1] is not a class index in [0, 2) or ignore_index -100 (input [4,2]; on webgpu, found when reading the loss and metrics summed on the GPU by fit/evaluateAsync back; its value is unknown: the tensor was freed or written before the read)");
  const ev = await rejection(sn.evaluateAsync(tinyModel().to("webgpu"), toyData(8), { batchSize: 4, loss }), "evaluateAsync");
  assert.match(ev.message, "cross_entropy: target[1] is not a class index in [0, 2) or ignore_index -100 (input [4,2]; on webgpu, found when reading the loss and metrics summed on the GPU by fit/evaluateAsync back; its value is unknown");
  // and the engine goes on: a good fit on webgpu runs
  const r = await sn.fit(tinyModel(), toyData(8), { device: "webgpu", epochs: 1, batchSize: 4 });
  assert.ok(Number.isFinite(r.history[0].loss));
});

test("a training step with checked losses creates no buffer, forces no submit and reads nothing", async () => {
  const g = sn.gpuEngine();
  const model = tinyModel().to("webgpu");
  const opt = new sn.SGD(model.parameters(), { lr: 0.01 });
  const x = onGpu(sn.tensor(toyData(4).x, [4, 1, 8, 8]));
  const y = onGpu(sn.tensor([0, 1, 0, 1], [4]));
  const p = onGpu(sn.tensor([0.2, 0.7, 0.4, 0.9, 0.1, 0.5, 0.3, 0.6], [4, 2]));
  const step = () =>
    sn.tidy(() => {
      opt.zeroGrad();
      const out = model.forward(x);
      const l = sn.add(sn.add(sn.cross_entropy(out, y), sn.multi_margin_loss(out, y)), sn.binary_cross_entropy(sn.sigmoid(out), p));
      l.backward();
      opt.step();
    });
  step();
  step();
  await g.sync();
  const before = { ...g.stats };
  for (let s = 0; s < 5; s++) step();
  const d = (k) => g.stats[k] - before[k];
  assert.is(d("buffersCreated"), 0, "buffers created");
  assert.is(d("bytesRead"), 0, "bytes read");
  assert.ok(d("submits") <= Math.ceil(d("dispatches") / 16), `${d("submits")} submits for ${d("dispatches")} dispatches`);
  const w = model.parameters()[0];
  assert.ok((await w.read()).every(Number.isFinite));
});

runAndExit(sn);
