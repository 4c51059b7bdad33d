// profile(fn): exact call counts per op and phase on a small net, times that add up, FLOPs from
// the shapes against the formula, layers by their dotted names, the kernel paths the shapes
// select, options and nesting errors, and the command line's --profile.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as sn from "../dist/index.js";
import { sameBits } from "./helpers.mjs";
const { nn } = sn;

test.before(async () => {
  await sn.init({ threads: 2 });
});

const fill = (n, seed = 1) => Float32Array.from({ length: n }, (_, i) => (((i * 7919 + seed * 104729) % 1000) / 500 - 1));

/** conv 1->4 3x3 pad 1, ReLU, flatten, linear 144->3 in a nested Sequential: names "0",
 *  "1.0", "1.1", "2" */
function smallNet() {
  sn.manualSeed(0);
  return nn.sequential(new nn.Conv2d(1, 4, 3, { padding: 1 }), nn.sequential(new nn.ReLU(), new nn.Flatten()), new nn.Linear(4 * 6 * 6, 3));
}
const x = () => sn.tensor(fill(2 * 36), [2, 1, 6, 6]);
const labels = () => sn.tensor([0, 2], [2]);

const row = (p, op, phase) => p.ops.filter((r) => r.op === op && r.phase === phase);
const calls = (p, op, phase) => row(p, op, phase).reduce((a, r) => a + r.calls, 0);
const flops = (p, op, phase) => row(p, op, phase).reduce((a, r) => a + r.flops, 0);

test("a training step three times: each op's forward and backward calls counted exactly", () => {
  const model = smallNet();
  const xs = x(), ys = labels();
  const p = sn.profile(() => {
    for (let i = 0; i < 3; i++) sn.tidy(() => sn.cross_entropy(model.call(xs), ys).backward());
  }, { peak: false });
  const seen = p.ops.map((r) => `${r.op} ${r.phase} ${r.calls}`).sort();
  // Flatten is a reshape; nothing else is applied (the gradients of the leaves are written, not accumulated: no add)
  assert.equal(seen, [
    "conv2d backward 3", "conv2d forward 3", "cross_entropy backward 3", "cross_entropy forward 3", "linear backward 3", "linear forward 3",
    "relu backward 3", "relu forward 3", "reshape backward 3", "reshape forward 3",
  ]);
  for (const r of p.ops) assert.is(r.device, "cpu");
  // the layers: every module called through call(), 3 times each, by dotted name, in call order
  assert.equal(p.layers.map((l) => `${l.name} ${l.calls}`), ["(model) 3", "0 3", "1 3", "1.0 3", "1.1 3", "2 3"]);
  assert.is(p.layers.find((l) => l.name === "0").layer, "Conv2d(1, 4, kernel_size=3, padding=1)");
  assert.equal(p.layers.find((l) => l.name === "0").paths, ["im2col"]);
  assert.equal(p.layers.find((l) => l.name === "2").paths, ["gemm"]);
  assert.equal(p.layers.find((l) => l.name === "1.0").paths, []);
});

test("times are positive and add up: ops within the total, children within their parent, ops within their layer", () => {
  const model = smallNet();
  const xs = x(), ys = labels();
  const p = sn.profile(() => {
    for (let i = 0; i < 3; i++) sn.tidy(() => sn.cross_entropy(model.call(xs), ys).backward());
  }, { peak: false });
  assert.ok(p.totalMs > 0);
  for (const r of p.ops) assert.ok(r.ms >= 0, `${r.op} ${r.phase}: ${r.ms}`);
  assert.ok(row(p, "conv2d", "forward")[0].ms > 0 && row(p, "linear", "backward")[0].ms > 0);
  const sum = p.ops.reduce((a, r) => a + r.ms, 0);
  assert.ok(Math.abs(sum - p.opsMs) < 1e-9, `${sum} vs ${p.opsMs}`);
  assert.ok(p.opsMs <= p.totalMs, `ops ${p.opsMs} ms > total ${p.totalMs} ms`);
  const layer = (n) => p.layers.find((l) => l.name === n);
  const slack = 1e-6;
  // forward: a parent's wall time holds its children's, a layer's holds its ops'
  assert.ok(layer("0").forwardMs + layer("1").forwardMs + layer("2").forwardMs <= layer("(model)").forwardMs + slack);
  assert.ok(layer("1.0").forwardMs + layer("1.1").forwardMs <= layer("1").forwardMs + slack);
  assert.ok(row(p, "conv2d", "forward")[0].ms <= layer("0").forwardMs + slack);
  const fwdOps = p.ops.filter((r) => r.phase === "forward" && r.op !== "cross_entropy").reduce((a, r) => a + r.ms, 0);
  assert.ok(fwdOps <= layer("(model)").forwardMs + slack);
  assert.ok(layer("(model)").forwardMs <= p.totalMs);
  // backward: a layer gets exactly its ops' backward time, its parent the sum of its children's
  assert.is(layer("0").backwardMs, row(p, "conv2d", "backward")[0].ms);
  assert.is(layer("2").backwardMs, row(p, "linear", "backward")[0].ms);
  const kids = layer("0").backwardMs + layer("1").backwardMs + layer("2").backwardMs;
  assert.ok(Math.abs(kids - layer("(model)").backwardMs) < 1e-9);
  // cross_entropy was applied outside the model: no layer holds its time
  const bwdInModel = p.ops.filter((r) => r.phase === "backward" && r.op !== "cross_entropy").reduce((a, r) => a + r.ms, 0);
  assert.ok(Math.abs(bwdInModel - layer("(model)").backwardMs) < 1e-9);
});

test("FLOPs of a conv are 2*N*O*HO*WO*Cg*KH*KW forward, once more per input gradient", () => {
  const xs = sn.tensor(fill(2 * 6 * 9 * 7), [2, 6, 9, 7]);
  const w = sn.tensor(fill(8 * 3 * 3 * 2, 2), [8, 3, 3, 2]).requireGrad(); // groups 2: Cg = 3
  const opts = { stride: [2, 1], padding: 1, groups: 2 };
  const out = sn.conv2d(sn.tensor(fill(2 * 6 * 9 * 7), [2, 6, 9, 7]), w, null, opts);
  const [N, O, HO, WO] = out.shape; // [2, 8, 5, 8]
  assert.equal(out.shape, [2, 8, 5, 8]);
  const formula = 2 * N * O * HO * WO * 3 * 3 * 2;
  // only w needs its gradient: the backward is one product (the weight gradient)
  let p = sn.profile(() => sn.tidy(() => sn.sum(sn.conv2d(xs, w, null, opts)).backward()), { peak: false });
  assert.is(flops(p, "conv2d", "forward"), formula);
  assert.is(flops(p, "conv2d", "backward"), formula);
  // both: input and weight gradients
  const xg = sn.tensor(fill(2 * 6 * 9 * 7), [2, 6, 9, 7]).requireGrad();
  p = sn.profile(() => sn.tidy(() => sn.sum(sn.conv2d(xg, w, null, opts)).backward()), { peak: false });
  assert.is(flops(p, "conv2d", "backward"), 2 * formula);
  // the GFLOP/s is FLOPs over time; ops without a FLOP count have none
  const r = row(p, "conv2d", "forward")[0];
  assert.ok(Math.abs(r.gflops - r.flops / r.ms / 1e6) < 1e-9 * r.gflops);
  assert.is(row(p, "sum", "forward")[0].gflops, null);
  // linear: 2 * N * in * out
  const lp = sn.profile(() => sn.tidy(() => sn.linear(sn.tensor(fill(5 * 7), [5, 7]), sn.tensor(fill(3 * 7), [3, 7]))), { peak: false });
  assert.is(flops(lp, "linear", "forward"), 2 * 5 * 7 * 3);
});

test("a fused conv (eval mode conv -> batch norm -> ReLU; conv -> ReLU in training) counts its convolution's FLOPs forward and backward, and its layer gets them", () => {
  sn.manualSeed(0);
  const net = nn.sequential(new nn.Conv2d(3, 8, 3, { padding: 1, stride: 2 }), new nn.BatchNorm2d(8), new nn.ReLU()).eval();
  const xs = sn.tensor(fill(2 * 3 * 9 * 7), [2, 3, 9, 7]);
  const p = sn.noGrad(() => sn.profile(() => sn.tidy(() => net.forward(xs)), { peak: false }));
  const r = row(p, "conv2d_fused", "forward");
  assert.is(r.length, 1, "the conv ran fused");
  const formula = 2 * 2 * 8 * 5 * 4 * 3 * 3 * 3; // output [2, 8, 5, 4], Cg*KH*KW = 27
  assert.is(r[0].flops, formula);
  assert.ok(r[0].gflops > 0);
  const layer = p.layers.find((l) => l.name === "0");
  assert.is(layer.flops, formula);
  // in training, conv -> relu runs fused as well; its backward is conv2d's (here the weight
  // gradient only: the input needs none)
  const tr = nn.sequential(new nn.Conv2d(3, 8, 3, { padding: 1, stride: 2 }), new nn.ReLU()).train();
  const pt = sn.profile(() => sn.tidy(() => sn.sum(tr.forward(xs)).backward()), { peak: false });
  const back = row(pt, "conv2d_fused", "backward");
  assert.is(back.length, 1);
  assert.is(back[0].flops, formula);
  assert.is(back[0].path, "im2col");
});

test("kernel paths from the shapes: depthwise for one channel per group, im2col otherwise, gemm for products", () => {
  const xs = sn.tensor(fill(1 * 4 * 8 * 8), [1, 4, 8, 8]);
  const p = sn.profile(() => sn.tidy(() => {
    sn.conv2d(xs, sn.tensor(fill(4 * 9), [4, 1, 3, 3]), null, { groups: 4, padding: 1 });
    sn.conv2d(xs, sn.tensor(fill(8 * 2 * 9), [8, 2, 3, 3]), null, { groups: 2 });
    sn.conv2d(xs, sn.tensor(fill(6 * 4), [6, 4, 1, 1]));
    sn.matmul(sn.tensor(fill(6), [2, 3]), sn.tensor(fill(12), [3, 4]));
  }), { peak: false });
  const paths = p.ops.map((r) => `${r.op} ${r.path} ${r.calls}`).sort();
  assert.equal(paths, ["conv2d depthwise 1", "conv2d im2col 2", "matmul gemm 1"]);
  // the depthwise kernels compute its gradients too (assembly/conv_dw_bwd.ts, and the forward
  // kernel for the input gradient at stride 1); no depthwise kernel takes strides of 3 along rows
  const wd = sn.tensor(fill(4 * 9), [4, 1, 3, 3]).requireGrad();
  const q = sn.profile(() => sn.tidy(() => {
    sn.sum(sn.conv2d(xs, wd, null, { groups: 4, padding: 1 })).backward();
    sn.conv2d(xs, wd, null, { groups: 4, stride: 3 });
  }), { peak: false });
  const conv = q.ops.filter((r) => r.op === "conv2d").map((r) => `${r.phase} ${r.path} ${r.calls}`).sort();
  assert.equal(conv, ["backward depthwise 1", "forward depthwise 1", "forward im2col 1"]);
  const dw = p.ops.find((r) => r.path === "depthwise");
  assert.is(dw.flops, 2 * 1 * 4 * 8 * 8 * 1 * 3 * 3);
});

test("the Winograd path names itself: a 3x3 stride-1 conv of 64 channels on 16x16 runs F(4,3) forward and for dx; conv3x3 'im2col' turns it off", () => {
  // the input needs a gradient too, or backward computes dW alone (im2col)
  const x = sn.tensor(fill(64 * 16 * 16), [1, 64, 16, 16]).requireGrad();
  const w = sn.tensor(fill(64 * 64 * 9), [64, 64, 3, 3]).requireGrad();
  const run = () => sn.profile(() => sn.tidy(() => sn.sum(sn.conv2d(x, w, null, { padding: 1 })).backward()), { peak: false });
  const paths = (p) => p.ops.filter((r) => r.op === "conv2d").map((r) => `${r.phase} ${r.path}`).sort();
  assert.equal(paths(run()), ["backward winograd F(4,3) dx", "forward winograd F(4,3)"]);
  const before = sn.engine().conv3x3;
  sn.engine().conv3x3 = "im2col";
  try {
    assert.equal(paths(run()), ["backward im2col", "forward im2col"]);
  } finally {
    sn.engine().conv3x3 = before;
  }
});

test("the peak: measured once per engine (SGEMM) and cached, or given; % of peak is GFLOP/s over it", () => {
  const w = sn.tensor(fill(4 * 9), [4, 1, 3, 3]);
  const xs = sn.tensor(fill(2 * 64), [2, 1, 8, 8]);
  const run = () => sn.tidy(() => void sn.conv2d(xs, w));
  const a = sn.profile(run), b = sn.profile(run);
  assert.ok(a.peakGflops > 0 && Number.isFinite(a.peakGflops));
  assert.is(b.peakGflops, a.peakGflops);
  assert.is(sn.measurePeak(), a.peakGflops);
  assert.match(a.peakSource, /SGEMM 1024x1024x1024, best of 5, 2 threads/);
  const given = sn.profile(run, { peak: 40 });
  const r = given.ops[0];
  assert.is(given.peakGflops, 40);
  assert.is(r.ofPeak, r.gflops / 40);
  const none = sn.profile(run, { peak: false });
  assert.is(none.peakGflops, null);
  assert.is(none.ops[0].ofPeak, null);
  assert.ok(none.ops[0].gflops > 0);
  assert.match(String(given), /peak 40\.0 GFLOP\/s \(given\)/);
});

test("the table: header, one line per op row and per layer, the time outside ops", () => {
  const model = smallNet();
  const p = sn.profile(() => sn.tidy(() => sn.cross_entropy(model.call(x()), labels()).backward()), { peak: 50 });
  const text = String(p);
  assert.is(text, sn.formatProfile(p));
  assert.match(text, /^Profile: [\d.]+ ms in all, [\d.]+ ms in ops \(\d+%\); 2 threads; peak 50\.0 GFLOP\/s \(given\)/);
  assert.match(text, /\nconv2d\s+forward\s+im2col\s+cpu\s+1\s+[\d.]+\s+\d+%\s+[\d.]+\s+\d+%\n/);
  assert.match(text, /\nrelu\s+backward\s+-\s+cpu\s+1\s+[\d.]+\s+\d+%\s+-\s+-\n/);
  assert.match(text, /\n\(outside ops\)\s+[\d.]+\s+\d+%\n/);
  assert.match(text, /\n1\.1\s+Flatten\(start_dim=1\)\s+1\s+[\d.]+\s+[\d.]+\s+-\s+-\s+-\n/);
  assert.match(text, /\n2\s+Linear\(in_features=144, out_features=3\)\s+1\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+\d+%\s+gemm\n/);
});

test("results are the same bits profiled or not, and nothing is recorded once a profile ends", () => {
  const model = smallNet();
  const xs = x();
  const plain = sn.noGrad(() => model.call(xs)).data.slice();
  const p = sn.profile(() => sn.noGrad(() => model.call(xs)).data.slice(), { peak: false });
  sameBits("profiled forward", p.value, plain);
  // a forward before the profile, its backward inside: backward rows without a layer
  const y = sn.sum(model.call(xs));
  const q = sn.profile(() => y.backward(), { peak: false });
  assert.ok(q.ops.every((r) => r.phase === "backward"), q.ops.map((r) => r.op).join());
  assert.is(q.layers.length, 0);
  assert.is(calls(q, "conv2d", "backward"), 1);
  // the ops of a finished profile do not move
  const before = JSON.stringify(p.ops);
  sn.tidy(() => sn.cross_entropy(model.call(xs), labels()).backward());
  assert.is(JSON.stringify(p.ops), before);
});

test("an async function: the profile covers it until it settles, and its value comes back", async () => {
  const model = smallNet();
  const xs = x();
  const p = await sn.profile(async () => {
    sn.tidy(() => model.call(xs));
    await new Promise((r) => setTimeout(r, 5));
    sn.tidy(() => model.call(xs));
    return "done";
  }, { peak: false });
  assert.is(p.value, "done");
  assert.is(calls(p, "conv2d", "forward"), 2);
  assert.ok(p.totalMs >= 4);
  // a rejected function rejects the profile, and the next profile starts clean
  try {
    await sn.profile(async () => {
      throw new Error("boom");
    }, { peak: false });
    assert.unreachable();
  } catch (e) {
    assert.is(e.message, "boom");
  }
  const again = sn.profile(() => sn.tidy(() => model.call(xs)), { peak: false });
  assert.is(calls(again, "conv2d", "forward"), 1);
});

test("bad use is a clear error: unknown options (did you mean), bad peak, no function, nested profiles", () => {
  assert.throws(() => sn.profile(() => 0, { peek: 1 }), /profile: unknown option 'peek' \(did you mean 'peak'\?\); profile takes peak/);
  assert.throws(() => sn.profile(() => 0, { peak: -3 }), /profile: peak must be true \(measure it\), false or a positive number of GFLOP\/s, got -3/);
  assert.throws(() => sn.profile(() => 0, { peak: "fast" }), /peak must be/);
  assert.throws(() => sn.profile(null), /profile: the first argument must be a function to run, got null/);
  let inner;
  const outer = sn.profile(() => {
    try {
      sn.profile(() => 0);
    } catch (e) {
      inner = e;
    }
    return 1;
  }, { peak: false });
  assert.match(inner.message, /profile: a profile is already running; profile\(\) calls do not nest/);
  assert.is(outer.value, 1);
  // the failed inner call left the outer one and the next one working
  assert.is(sn.profile(() => 2, { peak: false }).value, 2);
});

const cli = (args) => {
  const r = spawnSync(process.execPath, ["dist/cli.js", ...args], { encoding: "utf8", timeout: 300000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

test("simdnet bench train --profile prints the per-op and per-layer tables of the LeNet step", () => {
  const r = cli(["bench", "train", "--profile", "--threads", "1"]);
  assert.is(r.code, 0, r.err + r.out);
  assert.match(r.out, /Profile of the LeNet training step at batch 64, 7 of each, 1 thread:/);
  assert.match(r.out, /peak [\d.]+ GFLOP\/s \(SGEMM 1024x1024x1024, best of 5, 1 thread\)/);
  // 7 steps: two convolutions (each with its ReLU: conv2d_fused; the second, 20 -> 50 channels,
  // by Winograd F(2,5), both its gradients too; the first's input needs none) and two linear
  // layers each
  assert.match(r.out, /\nconv2d_fused\s+forward\s+fused im2col\s+cpu\s+7\s+[\d.]+\s+\d+%\s+[\d.]+\s/);
  assert.match(r.out, /\nconv2d_fused\s+forward\s+fused winograd F\(2,5\)\s+cpu\s+7\s+[\d.]+\s+\d+%\s+[\d.]+\s/);
  assert.match(r.out, /\nconv2d_fused\s+backward\s+im2col\s+cpu\s+7\s+[\d.]+\s+\d+%\s+[\d.]+\s/);
  assert.match(r.out, /\nconv2d_fused\s+backward\s+winograd F\(2,5\) dx \+ winograd F\(2,5\) dW\s+cpu\s+7\s+[\d.]+\s+\d+%\s+[\d.]+\s/);
  assert.match(r.out, /\nlinear\s+backward\s+gemm\s+cpu\s+14\s/);
  assert.match(r.out, /\nfeatures\.3\s+Conv2d\(20, 50, kernel_size=5, padding=2\)\s+7\s/);
  assert.match(r.out, /\nclassifier\.0\s+Linear\(in_features=2450, out_features=500\)\s+7\s/);
});

test("simdnet train --profile prints the tables after training; --profile is a flag", () => {
  const out = mkdtempSync(join(tmpdir(), "profile-cli-"));
  try {
    const r = cli(["train", "--epochs", "1", "--limit", "128", "--batch-size", "64", "--threads", "1", "--no-progress", "--profile", "--out", out]);
    assert.is(r.code, 0, r.err + r.out);
    assert.match(r.out, /epoch 1\/1  train loss/);
    assert.match(r.out, /\nProfile: [\d.]+ ms in all/);
    // two training steps of 64 (forward and backward) plus evaluation batches (forward only)
    assert.match(r.out, /\nconv2d_fused\s+backward\s+im2col\s+cpu\s+2\s/);
    assert.match(r.out, /\nconv2d_fused\s+backward\s+winograd F\(2,5\) dx \+ winograd F\(2,5\) dW\s+cpu\s+2\s/);
    assert.match(r.out, /\nfeatures\.0\s+Conv2d\(1, 20, kernel_size=5, padding=2\)\s+\d+\s/);
    const bad = cli(["train", "--profile=yes"]);
    assert.is(bad.code, 1);
    assert.match(bad.err, /--profile is on or off/);
  } finally {
    rmSync(out, { recursive: true });
  }
});

test.run();
