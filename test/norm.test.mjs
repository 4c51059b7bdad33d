// batch_norm, local_response_norm and dropout beyond the fixture cases: bad inputs, dropout's
// statistical properties (its mask cannot match PyTorch's generator), and the same bits on one
// and two threads for inputs large enough to be split.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import * as sn from "../dist/index.js";
import { uniformValues as rand, sameBits, onThreads, loadFixtures, runCase, disposeCase } from "./helpers.mjs";

const T = (shape, seed, lo, hi) => sn.tensor(rand(shape.reduce((a, b) => a * b, 1), seed, lo, hi), shape);

test.before(async () => {
  await sn.init({ threads: 2, sentinels: true });
});

// ---- bad input ----

test("batch_norm: wrong input rank is an error naming the op and the shape", () => {
  assert.throws(() => sn.batch_norm(T([5], 1), null, null, null, null, { training: true }), /batch_norm: input .*must be rank 2 or 3 or 4, got rank 1 \[5\]/);
  assert.throws(() => sn.batch_norm(T([1, 2, 2, 2, 2], 1), null, null, null, null, { training: true }), /batch_norm: .*got rank 5 \[1,2,2,2,2\]/);
});

test("batch_norm: running stats, weight or bias of the wrong length name the expected and given shapes", () => {
  const x = T([2, 3, 4, 4], 2);
  assert.throws(() => sn.batch_norm(x, sn.zeros([4]), sn.ones([3])), /batch_norm: running_mean must have shape \[C\] = \[3\] for input \[2,3,4,4\], got \[4\]/);
  assert.throws(() => sn.batch_norm(x, sn.zeros([3]), sn.ones([3, 1])), /batch_norm: running_var must have shape \[C\] = \[3\] for input \[2,3,4,4\], got \[3,1\]/);
  assert.throws(() => sn.batch_norm(x, null, null, sn.ones([2]), null, { training: true }), /batch_norm: weight must have shape \[C\] = \[3\] for input \[2,3,4,4\], got \[2\]/);
  assert.throws(() => sn.batch_norm(x, null, null, null, sn.ones([5]), { training: true }), /batch_norm: bias must have shape \[C\] = \[3\] for input \[2,3,4,4\], got \[5\]/);
});

test("batch_norm: one value per channel in training is an error (as PyTorch); in eval it is fine", () => {
  const x = T([1, 3], 3);
  assert.throws(() => sn.batch_norm(x, sn.zeros([3]), sn.ones([3]), null, null, { training: true }), /batch_norm: expected more than 1 value per channel when training, got input \[1,3\]/);
  assert.throws(() => sn.batch_norm(T([1, 3, 1, 1], 3), null, null, null, null, { training: true }), /more than 1 value per channel .*\[1,3,1,1\]/);
  const y = sn.batch_norm(x, sn.zeros([3]), sn.ones([3]), null, null, { training: false, eps: 0 });
  sameBits("eval with mean 0, var 1, eps 0 is identity", y.toArray(), x.toArray());
});

test("batch_norm: eval without running stats, or only one of them, is an error", () => {
  const x = T([4, 3], 4);
  assert.throws(() => sn.batch_norm(x), /batch_norm: running_mean and running_var are required when training is false \(input \[4,3\]\)/);
  assert.throws(() => sn.batch_norm(x, sn.zeros([3]), null, null, null, { training: true }), /batch_norm: running_mean and running_var must be given together/);
});

test("batch_norm: momentum outside [0, 1], negative eps and a non-boolean training are errors", () => {
  const x = T([4, 3], 5);
  assert.throws(() => sn.batch_norm(x, null, null, null, null, { training: true, momentum: 1.5 }), /batch_norm: momentum must be a number in \[0, 1\], got 1.5/);
  assert.throws(() => sn.batch_norm(x, null, null, null, null, { training: true, eps: -1 }), /batch_norm: eps must be a number in \[0, Infinity\], got -1/);
  assert.throws(() => sn.batch_norm(x, null, null, null, null, { training: 1 }), /batch_norm: training must be true or false, got 1/);
});

test("local_response_norm: rank below 3, size <= 0 or not an integer, and non-finite alpha are errors", () => {
  assert.throws(() => sn.local_response_norm(T([3, 4], 6), 5), /local_response_norm: input must be rank 3 or more \(\[N,C,\.\.\.\]\), got rank 2 \[3,4\]/);
  assert.throws(() => sn.local_response_norm(T([1, 3, 2, 2], 6), 0), /local_response_norm: size must be an integer >= 1, got 0/);
  assert.throws(() => sn.local_response_norm(T([1, 3, 2, 2], 6), -3), /size must be an integer >= 1, got -3/);
  assert.throws(() => sn.local_response_norm(T([1, 3, 2, 2], 6), 2.5), /size must be an integer >= 1, got 2.5/);
  assert.throws(() => sn.local_response_norm(T([1, 3, 2, 2], 6), 3, { alpha: NaN }), /local_response_norm: alpha must be a finite number, got NaN/);
});

test("dropout: p outside [0, 1), a bad seed and a non-boolean training are errors", () => {
  const x = T([10], 7);
  for (const p of [1, -0.1, 1.5, NaN])
    assert.throws(() => sn.dropout(x, { p }), new RegExp(`dropout: p must be a number in \\[0, 1\\), got ${String(p)}`));
  assert.throws(() => sn.dropout(x, { seed: -1 }), /dropout: seed must be an integer in \[0, 2\^32\), got -1/);
  assert.throws(() => sn.dropout(x, { seed: 1.5 }), /seed must be an integer in \[0, 2\^32\), got 1.5/);
  assert.throws(() => sn.dropout(x, { seed: 2 ** 32 }), /seed must be an integer in \[0, 2\^32\)/);
  assert.throws(() => sn.dropout(x, { training: "yes" }), /dropout: training must be true or false, got "yes"/);
});

test("dropout declares why it has no fixture case, naming the tests that check it", () => {
  assert.match(sn.opTable.get("dropout").noFixture, /test\/norm\.test\.mjs/);
});

// ---- dropout properties ----

const N = 200000;
const ones = () => sn.full([N], 1);

for (const p of [0.1, 0.5, 0.9])
  test(`dropout p=${p}: kept fraction within 5 sigma of ${(1 - p).toFixed(1)}, kept values scaled by 1/(1-p) exactly, the rest 0`, () => {
    const x = T([N], 11, 0.5, 2);
    const y = sn.dropout(x, { p, seed: 1234 }).toArray();
    const xs = x.toArray();
    const scale = Math.fround(1 / (1 - p));
    let kept = 0;
    for (let i = 0; i < N; i++) {
      if (y[i] === 0) continue;
      kept++;
      if (y[i] !== Math.fround(xs[i] * scale)) assert.unreachable(`element ${i}: ${y[i]} is not ${xs[i]} * ${scale}`);
    }
    const sd = Math.sqrt(N * p * (1 - p));
    assert.ok(Math.abs(kept - N * (1 - p)) < 5 * sd, `kept ${kept} of ${N}, expected ${N * (1 - p)} ± ${5 * sd}`);
  });

test("dropout: neighbouring elements are kept independently (pairs kept ≈ (1-p)², within 5 sigma)", () => {
  const p = 0.5;
  const y = sn.dropout(ones(), { p, seed: 99 }).toArray();
  let both = 0;
  for (let i = 0; i + 1 < N; i += 2) if (y[i] && y[i + 1]) both++;
  const pairs = N / 2, q = (1 - p) ** 2;
  assert.ok(Math.abs(both - pairs * q) < 5 * Math.sqrt(pairs * q * (1 - q)), `${both} of ${pairs} pairs kept`);
});

test("dropout backward applies the forward mask: dx = g * mask / (1-p)", () => {
  const p = 0.3;
  const x = T([N], 12, 0.5, 2).requireGrad();
  const y = sn.dropout(x, { p, seed: 77 });
  const g = T([N], 13);
  y.backward(g);
  const ys = y.toArray(), gs = g.toArray(), dx = x.grad.toArray();
  const scale = Math.fround(1 / (1 - p));
  for (let i = 0; i < N; i++) {
    const want = ys[i] !== 0 ? Math.fround(gs[i] * scale) : 0;
    if (dx[i] !== want) assert.unreachable(`element ${i}: dx ${dx[i]}, expected ${want} (y ${ys[i]})`);
  }
});

test("dropout: the same seed gives the same mask (for any shape of the same size); another seed another mask", () => {
  const a = sn.dropout(ones(), { seed: 5 }).toArray();
  const b = sn.dropout(sn.full([400, 500], 1), { seed: 5 }).toArray();
  sameBits("same seed", a, b);
  const c = sn.dropout(ones(), { seed: 6 }).toArray();
  let agree = 0;
  for (let i = 0; i < N; i++) if ((a[i] === 0) === (c[i] === 0)) agree++;
  // independent masks with p = 0.5 agree on half the elements
  assert.ok(Math.abs(agree - N / 2) < 5 * Math.sqrt(N / 4), `seeds 5 and 6 agree on ${agree} of ${N}`);
});

test("dropout without a seed draws a new mask per call", () => {
  const a = sn.dropout(ones()).toArray(), b = sn.dropout(ones()).toArray();
  let differ = 0;
  for (let i = 0; i < N; i++) if (a[i] !== b[i]) differ++;
  assert.ok(differ > N / 4, `only ${differ} of ${N} differ`);
});

test("dropout: training=false and p=0 are the identity, forward and backward", () => {
  const x = T([1000], 14).requireGrad();
  const y = sn.dropout(x, { training: false, p: 0.7 });
  sameBits("eval forward", y.toArray(), x.toArray());
  const g = T([1000], 15);
  y.backward(g);
  sameBits("eval backward", x.grad.toArray(), g.toArray());
  sameBits("p=0 forward", sn.dropout(x, { p: 0, seed: 3 }).toArray(), x.toArray());
});

// ---- batch norm inference backward uses the statistics of its forward ----

test("batch_norm eval: backward uses the running stats as they were at forward, even if a training call updated them since", () => {
  const x = T([4, 3, 2, 2], 20), rm = T([3], 21), rv = T([3], 22, 0.5, 1.5), w = T([3], 23).requireGrad();
  const y = sn.batch_norm(x, rm, rv, w, null, { training: false });
  const g = T([4, 3, 2, 2], 24);
  // the same computation on copies gives the expected weight gradient
  const rm2 = sn.tensor(rm.toArray()), rv2 = sn.tensor(rv.toArray()), w2 = sn.tensor(w.toArray()).requireGrad();
  sn.batch_norm(x, rm2, rv2, w2, null, { training: false }).backward(g);
  sn.batch_norm(T([4, 3], 25), rm, rv, null, null, { training: true });
  y.backward(g);
  sameBits("dweight", w.grad.toArray(), w2.grad.toArray());
});

// ---- eps is a float32 value ----

// ONNX stores epsilon as a float attribute, WebGPU passes it as an f32, PyTorch's CPU kernels for
// float tensors add it as a float: 1e-5 is Math.fround(1e-5) everywhere. The CPU kernels used to
// add the double 1e-5 to the variance in f64, so a model and its ONNX round trip (eps read back
// as Math.fround(1e-5)) differed in some channels' scale by one rounding (ResNet-18 on 32x32
// inputs: 1 channel of 512, visible in the logits on the SIMD build). Variances near eps here,
// where the two sums differ most.
test("batch_norm: eps is taken as float32 (1e-5 and Math.fround(1e-5) give the same bits), eval, training, the fused eval params and fuseBatchNorm", () => {
  const C = 512, x = T([2, C, 2, 2], 30), rm = T([C], 31), rv = T([C], 32, 0, 4e-5), w = T([C], 33, 0.5, 1.5), b = T([C], 34);
  const run = (eps, training) => {
    const m = sn.tensor(rm.toArray()), v = sn.tensor(rv.toArray());
    const y = sn.batch_norm(x, m, v, w, b, { training, eps }).toArray();
    return [y, m.toArray(), v.toArray()];
  };
  for (const training of [false, true]) {
    const [a, ma, va] = run(1e-5, training), [f, mf, vf] = run(Math.fround(1e-5), training);
    sameBits(`${training ? "training" : "eval"}: output`, a, f);
    sameBits(`${training ? "training" : "eval"}: running mean`, ma, mf);
    sameBits(`${training ? "training" : "eval"}: running var`, va, vf);
  }
  // the conv + batch norm fusion's folded scale and shift (src/nn/fusion.ts)
  const bn = (eps) => {
    const m = new sn.nn.BatchNorm2d(C, { eps });
    m.runningMean.data.set(rm.toArray()), m.runningVar.data.set(rv.toArray()), m.weight.data.set(w.toArray()), m.bias.data.set(b.toArray());
    return m.eval();
  };
  const conv = new sn.nn.Conv2d(C, C, 1, { bias: false });
  const net = (eps) => new sn.nn.Sequential(conv, bn(eps));
  sn.noGrad(() => sameBits("conv + batch norm, fused", net(1e-5).forward(x).toArray(), net(Math.fround(1e-5)).forward(x).toArray()));
  // fuseBatchNorm's fold into the convolution's weights and bias (src/nn/fuse.ts, in JS)
  const folded = (eps) => {
    const c = new sn.nn.Conv2d(C, C, 1, { bias: false });
    c.weight.data.set(conv.weight.toArray());
    sn.fuseBatchNorm(new sn.nn.Sequential(c, bn(eps)).eval());
    return [c.weight.toArray(), c.bias.toArray()];
  };
  const [wa, ba] = folded(1e-5), [wf, bf] = folded(Math.fround(1e-5));
  sameBits("fuseBatchNorm: weights", wa, wf);
  sameBits("fuseBatchNorm: bias", ba, bf);
});

test("inference (noGrad, or no input needing a gradient) keeps nothing for backward: disposing the output frees all", () => {
  const x = T([2, 8, 6, 6], 26), rm = T([8], 27), rv = T([8], 28, 0.5, 1.5), w = T([8], 29).requireGrad(), x2 = T([2, 8, 6, 6], 30);
  const live = () => sn.engine().memoryStats().live;
  const calls = [
    () => sn.noGrad(() => sn.batch_norm(x, rm, rv, w, null)),
    () => sn.noGrad(() => sn.batch_norm(x, rm, rv, w, null, { training: true })),
    () => sn.batch_norm(x, rm, rv, null, null),
    () => sn.noGrad(() => sn.local_response_norm(x.requireGrad(), 5)),
    () => sn.local_response_norm(x2, 5),
  ];
  calls.forEach((f, i) => {
    const before = live();
    f().dispose();
    assert.is(live(), before, `call ${i}`);
  });
  x.requiresGrad = false;
  // while recording, the saved statistics outlive the output (until backward's graph is dropped)
  const before = live();
  sn.batch_norm(x, rm, rv, w, null).dispose();
  assert.ok(live() > before, "recorded forward keeps its statistics");
});

// ---- same bits on any thread count ----

function bnRun(shape, training, affine) {
  const C = shape[1];
  const x = T(shape, 31, -2, 3).requireGrad();
  const rm = T([C], 32), rv = T([C], 33, 0.5, 1.5);
  const w = affine ? T([C], 34).requireGrad() : null, b = affine ? T([C], 35).requireGrad() : null;
  const y = sn.batch_norm(x, rm, rv, w, b, { training, momentum: 0.2 });
  y.backward(T(shape, 36));
  return [y, rm, rv, x.grad, w?.grad, b?.grad].filter(Boolean).map((t) => t.toArray());
}

const splitCases = [
  ["batch_norm train [8,16,13,13] affine", () => bnRun([8, 16, 13, 13], true, true)],
  ["batch_norm train [64,37] affine", () => bnRun([64, 37], true, true)],
  ["batch_norm train [5,7,6] no affine", () => bnRun([5, 7, 6], true, false)],
  ["batch_norm eval [6,9,10,11] affine", () => bnRun([6, 9, 10, 11], false, true)],
  ["batch_norm eval [33,21] affine", () => bnRun([33, 21], false, true)],
  ...[0.75, 0.6].map((beta) => [
    `local_response_norm size 5 beta ${beta} [2,24,11,13]`,
    () => {
      const x = T([2, 24, 11, 13], 41, 0, 4).requireGrad();
      const y = sn.local_response_norm(x, 5, { alpha: 0.5, beta, k: 2 });
      y.backward(T([2, 24, 11, 13], 42));
      return [y.toArray(), x.grad.toArray()];
    },
  ]),
  [
    "dropout p=0.4 [300001]",
    () => {
      const x = T([300001], 43).requireGrad();
      const y = sn.dropout(x, { p: 0.4, seed: 2024 });
      y.backward(T([300001], 44));
      return [y.toArray(), x.grad.toArray()];
    },
  ],
];

for (const [name, fn] of splitCases)
  test(`${name}: same bits on 1 and 2 threads (every kernel split), forward, running stats and gradients`, async () => {
    const one = await onThreads(1, fn);
    const two = await onThreads(2, fn);
    assert.is(one.length, two.length);
    one.forEach((a, i) => sameBits(`${name}: result ${i}`, a, two[i]));
    await sn.init({ threads: 2, sentinels: true });
  });

// The training backward runs one kernel per channel (f32_batchnorm_bwd: the sums, then dx while
// the channel's rows are in cache); it promises the bits of the two kernels it replaced, which
// still serve eval-mode and [N, C] inputs: f32_batchnorm_bwd_params, then f32_batchnorm_bwd_input
// on its masked gradient. Both run here on the same buffers, with and without ReLU's mask and
// weight, rows whose length is not a multiple of 4 (the scalar tails), an odd batch (the
// two-row sum helper's last row alone), and the masked gradient kept or not.
test("batch norm's one-pass training backward gives the two-kernel path's bits (dx, dw, db, the masked gradient)", () => {
  const eng = sn.engine();
  for (const [N, C, HW] of [[3, 5, 9], [2, 4, 25], [1, 3, 7], [4, 16, 1024], [5, 2, 289]])
    for (const relu of [false, true])
      for (const affine of [false, true])
        for (const keep of [false, true]) {
          const what = `[${N}, ${C}, ${HW}] relu ${relu} affine ${affine} keep ${keep}`;
          const x = T([N, C, HW], 1, -2, 2), g = T([N, C, HW], 2), z = T([N, C, HW], 3, -1, 1);
          const mean = T([C], 4, -0.5, 0.5), invstd = T([C], 5, 0.5, 2), w = affine ? T([C], 6) : null;
          const out = () => ({ dw: sn.zeros([C]), db: sn.zeros([C]), dx: sn.zeros([N, C, HW]), gm: sn.zeros([N, C, HW]) });
          const two = out(), one = out();
          const zp = relu ? z.ptr : 0;
          eng.run("f32_batchnorm_bwd_params", [x.ptr, g.ptr, zp, two.gm.ptr, mean.ptr, invstd.ptr, N, C, HW, two.dw.ptr, two.db.ptr], 2 * x.size);
          eng.run("f32_batchnorm_bwd_input", [x.ptr, relu ? two.gm.ptr : g.ptr, mean.ptr, invstd.ptr, w?.ptr ?? 0, two.dw.ptr, two.db.ptr, N, C, HW, 1, two.dx.ptr], x.size);
          eng.run("f32_batchnorm_bwd", [x.ptr, g.ptr, zp, keep ? one.gm.ptr : 0, mean.ptr, invstd.ptr, w?.ptr ?? 0, N, C, HW, one.dw.ptr, one.db.ptr, one.dx.ptr], 3 * x.size);
          for (const k of ["dx", "dw", "db"]) sameBits(`${what}: ${k}`, one[k].toArray(), two[k].toArray());
          if (relu && keep) sameBits(`${what}: masked gradient`, one.gm.toArray(), two.gm.toArray());
          if (!keep) assert.ok(one.gm.toArray().every((v) => Object.is(v, 0)), `${what}: no masked gradient written`);
          for (const t of [x, g, z, mean, invstd, w, ...Object.values(one), ...Object.values(two)]) t?.dispose();
        }
});

test("batch_norm and batch_norm_fused: every PyTorch fixture case gives the same bits on both wasm builds (output, gradients, running statistics)", async () => {
  // conformance.test.mjs holds them to PyTorch on the build picked here; the kernels use no madd
  const cases = loadFixtures(sn).flatMap(({ tensors, cases }) => cases.filter((c) => c.op === "batch_norm" || c.op === "batch_norm_fused").map((c) => ({ c, tensors })));
  assert.ok(cases.filter(({ c }) => c.op === "batch_norm_fused").length >= 8, "the fused op's cases");
  const run = async (build) => {
    await sn.init({ threads: 2, sentinels: true, build });
    assert.is(sn.engine().info.build, build);
    return cases.map(({ c, tensors }) => {
      const r = runCase(sn, c, tensors);
      const got = [r.out, ...r.grads, ...r.after];
      disposeCase(r);
      return got;
    });
  };
  const simd = await run("simd"), relaxed = await run("relaxed");
  cases.forEach(({ c }, k) => simd[k].forEach((v, i) => v && sameBits(`${c.name}: result ${i}`, v, relaxed[k][i])));
  await sn.init({ threads: 2, sentinels: true });
});

// ---- the kernel module ----

/** Section ids in a wasm binary (data segments are id 11). */
function sectionIds(bytes) {
  const ids = [];
  let p = 8;
  const leb = () => {
    let v = 0, s = 0, b;
    do {
      b = bytes[p++];
      v |= (b & 0x7f) << s;
      s += 7;
    } while (b & 0x80);
    return v >>> 0;
  };
  while (p < bytes.length) {
    const id = bytes[p++];
    const len = leb();
    ids.push(id);
    p += len;
  }
  return ids;
}

test("the kernel modules have no data segment (each worker's instantiation would copy it over shared memory)", () => {
  for (const f of ["simd", "relaxed", "simd.single", "relaxed.single"]) {
    const ids = sectionIds(readFileSync(new URL(`../dist/simdnet.${f}.wasm`, import.meta.url)));
    assert.ok(ids.includes(10), `${f}: no code section found: the section walk is broken`);
    assert.not.ok(ids.includes(11), `simdnet.${f}.wasm has a data section: a kernel uses static data (Math.pow/log/exp tables, a constant array)`);
  }
});

test.after(() => sn.dispose());
test.run();
