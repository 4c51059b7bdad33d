// The WebGPU kernels of the pooling and normalisation ops against the CPU path of the same op on
// the same inputs, beyond the fixture cases: sizes that are not multiples of the workgroup,
// overlapping windows, ceil_mode and padding, ties, NaN and infinities in max-pool windows (the
// max and its gradient must be EXACTLY the CPU's), large windows (the workgroup-per-output
// average), batch norm in training (with several partials per channel) and inference with the
// running statistics written as the CPU writes them, local response norm's general powers, and
// dropout masks equal bit for bit to the CPU's for the same seed.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { compare, sameBits, uniformValues as rand } from "./helpers.mjs";
import { initGpu, runAndExit } from "./gpu_helpers.mjs";

test.before(async () => {
  await initGpu(sn);
});

const size = (shape) => shape.reduce((a, b) => a * b, 1);
const spec = (shape, data, grad = true) => ({ shape, data, grad });

/** Runs op on one device: output, input gradients (for a given output gradient) and the inputs
 *  afterwards. specs: { shape, data, grad } or null. */
async function runOn(device, op, specs, attrs, gout) {
  const gpu = device === "webgpu";
  const read = (t) => (gpu ? t.read() : Promise.resolve(t.toArray()));
  const ins = specs.map((s) => {
    if (!s) return null;
    const t = sn.tensor(s.data, s.shape);
    return gpu ? t.to("webgpu") : t;
  });
  if (gout) specs.forEach((s, i) => s?.grad && ins[i].requireGrad());
  const y = sn.opTable.get(op).apply(ins, attrs);
  assert.is(y.device, gpu ? "webgpu" : "cpu");
  const res = { shape: [...y.shape], out: await read(y), grads: [], after: [] };
  if (gout) {
    const g = sn.tensor(gout(res.out.length), y.shape);
    y.backward(gpu ? g.to("webgpu") : g);
    for (let i = 0; i < ins.length; i++) res.grads.push(specs[i]?.grad && ins[i].grad ? await read(ins[i].grad) : null);
  }
  for (const t of ins) res.after.push(t ? await read(t) : null);
  return res;
}

/** Equal values: NaN equals NaN, and -0 equals +0 (max of ±0 may keep either on the CPU). */
function sameValues(what, got, want) {
  assert.is(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++)
    if (!(got[i] === want[i] || (Number.isNaN(got[i]) && Number.isNaN(want[i]))))
      throw new Error(`${what}: element ${i}: got ${got[i]}, expected ${want[i]}`);
}

/** Runs op on both devices; `check(what, gpu, cpu)` compares outputs, gradients and inputs after. */
async function versus(name, op, specs, attrs, check, gout = (n) => rand(n, 99, -1, 1)) {
  const cpu = await runOn("cpu", op, specs, attrs, gout);
  const gpu = await runOn("webgpu", op, specs, attrs, gout);
  assert.equal(gpu.shape, cpu.shape, `${name}: output shape`);
  check(`${name} out`, gpu.out, cpu.out);
  cpu.grads.forEach((g, i) => g && check(`${name} grad ${i}`, gpu.grads[i], g));
  cpu.after.forEach((a, i) => a && check(`${name} input ${i} after`, gpu.after[i], a));
  // run to run: the same bits
  const again = await runOn("webgpu", op, specs, attrs, gout);
  sameBits(`${name}: out, second run`, again.out, gpu.out);
  again.grads.forEach((g, i) => g && sameBits(`${name}: grad ${i}, second run`, g, gpu.grads[i]));
  return { cpu, gpu };
}

// ---- max_pool2d: exact ----

/** Small integers (many ties per window), with NaN, ±Infinity and -0 sprinkled in. */
function tiesData(n, seed, specials = true) {
  const u = rand(n, seed, 0, 1);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = Math.floor(u[i] * 4) - 2;
    if (!specials) continue;
    if (u[i] > 0.995) x[i] = NaN;
    else if (u[i] > 0.99) x[i] = Infinity;
    else if (u[i] < 0.005) x[i] = -Infinity;
    else if (u[i] < 0.05 && x[i] === -2) x[i] = -0;
  }
  return x;
}

const maxConfigs = [
  ["2x2 stride 2 (the CPU's 2x2 path), odd sizes", [2, 3, 9, 11], { kernel_size: 2 }],
  ["overlapping 3x3 stride 2", [2, 3, 13, 13], { kernel_size: 3, stride: 2 }],
  ["3x3 stride 2 padding 1 ceil_mode", [1, 2, 10, 9], { kernel_size: 3, stride: 2, padding: 1, ceil_mode: true }],
  ["3x3 stride 2 ceil_mode, last window partial", [2, 2, 8, 12], { kernel_size: 3, stride: 2, ceil_mode: true }],
  ["3x3 stride 1 padding 1", [1, 3, 7, 5], { kernel_size: 3, stride: 1, padding: 1 }],
  ["5x5 stride 3 padding 2 ceil_mode", [1, 2, 17, 14], { kernel_size: 5, stride: 3, padding: 2, ceil_mode: true }],
  ["dilation 2 padding 1", [1, 2, 11, 12], { kernel_size: 3, stride: 1, padding: 1, dilation: 2 }],
  ["rectangular kernel, stride and dilation", [2, 2, 15, 16], { kernel_size: [2, 3], stride: [1, 2], padding: [1, 1], dilation: [3, 1] }],
  ["stride larger than the kernel", [1, 3, 11, 13], { kernel_size: 2, stride: 3 }],
  ["1x1 kernel", [1, 2, 5, 3], { kernel_size: 1 }],
  ["1x1 input", [3, 2, 1, 1], { kernel_size: 1 }],
  ["wide plane, more outputs than a workgroup", [1, 1, 9, 601], { kernel_size: 3, stride: 2, padding: 1 }],
  ["many planes (outputs past several workgroups)", [5, 7, 11, 11], { kernel_size: 3, stride: 2, ceil_mode: true }],
];

for (const [name, shape, attrs] of maxConfigs)
  for (const specials of [false, true])
    test(`max_pool2d ${name} ${JSON.stringify(shape)}${specials ? " with NaN, ±Infinity, -0" : ""}: output and gradient exactly the CPU's`, async () => {
      const x = tiesData(size(shape), shape.length * 7 + size(shape), specials);
      // the gradient: exactly the same additions in the same order (sums over overlapping windows)
      await versus(`max_pool2d ${name}`, "max_pool2d", [spec(shape, x)], attrs, (what, g, c) => (what.includes("grad") ? sameBits(what, g, c) : sameValues(what, g, c)));
    });

test("max_pool2d: distinct values, random gradient: exact", async () => {
  const shape = [2, 4, 23, 19];
  const n = size(shape);
  const perm = Array.from({ length: n }, (_, i) => i).sort((a, b) => rand(1, a + 1)[0] - rand(1, b + 1)[0]);
  const x = Float32Array.from(perm, (v) => v / n - 0.5);
  await versus("max_pool2d distinct", "max_pool2d", [spec(shape, x)], { kernel_size: 3, stride: 2, padding: 1 }, sameBits);
});

test("max_pool2d: a window wholly in the padding is the op's error on the GPU too", () => {
  const x = sn.tensor(rand(2 * 5 * 5, 3), [1, 2, 5, 5]).to("webgpu");
  const row = sn.tensor(rand(2 * 5, 3), [1, 2, 1, 5]).to("webgpu");
  assert.throws(() => sn.max_pool2d(row, { kernel_size: 2, padding: 1, dilation: 2 }), /max_pool2d: window of output row 0 lies wholly in the padding/);
  assert.throws(() => sn.max_pool2d(x, { kernel_size: 3, padding: 2 }), /max_pool2d: padding \[2,2\] must be at most half the kernel size/);
});

// ---- average pools ----

const avgTol = (what, g, c) => compare(what, g, c, 1e-5, 1e-6);

const avgConfigs = [
  ["avg_pool2d", "2x2 stride 2 odd sizes", [2, 3, 9, 11], { kernel_size: 2 }],
  ["avg_pool2d", "3x3 stride 2 padding 1 count_include_pad", [2, 3, 13, 11], { kernel_size: 3, stride: 2, padding: 1 }],
  ["avg_pool2d", "3x3 stride 2 padding 1 exclude pad", [2, 3, 13, 11], { kernel_size: 3, stride: 2, padding: 1, count_include_pad: false }],
  ["avg_pool2d", "ceil_mode padding 1 count_include_pad (divisor clipped at the padded edge)", [1, 2, 10, 8], { kernel_size: 3, stride: 2, padding: 1, ceil_mode: true }],
  ["avg_pool2d", "ceil_mode padding 2 exclude pad", [1, 2, 11, 9], { kernel_size: 5, stride: 3, padding: 2, ceil_mode: true, count_include_pad: false }],
  ["avg_pool2d", "ceil_mode without padding", [2, 2, 9, 7], { kernel_size: 2, stride: 2, ceil_mode: true }],
  ["avg_pool2d", "rectangular, overlapping stride 1", [2, 2, 7, 6], { kernel_size: [3, 2], stride: [1, 1], padding: [1, 0] }],
  ["avg_pool2d", "wide plane", [1, 1, 5, 517], { kernel_size: 3, stride: 2, padding: 1 }],
  ["avg_pool2d", "32x32 window (a workgroup per output)", [1, 2, 34, 33], { kernel_size: 32, stride: 8, padding: 16, count_include_pad: false }],
  ["adaptive_avg_pool2d", "non-divisible", [2, 3, 10, 9], { output_size: 4 }],
  ["adaptive_avg_pool2d", "output larger than the input", [1, 2, 3, 5], { output_size: [7, 11] }],
  ["adaptive_avg_pool2d", "prime sizes", [3, 5, 13, 17], { output_size: [5, 3] }],
  ["adaptive_avg_pool2d", "null keeps the width", [1, 2, 6, 7], { output_size: [4, null] }],
  ["adaptive_avg_pool2d", "big windows (a workgroup per output)", [1, 3, 67, 64], { output_size: [2, 1] }],
  ["global_avg_pool2d", "7x7", [3, 5, 7, 7], {}],
  ["global_avg_pool2d", "1x1", [2, 3, 1, 1], {}],
  ["global_avg_pool2d", "45x47 (a workgroup per output)", [2, 3, 45, 47], {}],
];

for (const [op, name, shape, attrs] of avgConfigs)
  test(`${op} ${name} ${JSON.stringify(shape)} ${JSON.stringify(attrs)}: output and gradient as the CPU's`, async () => {
    await versus(`${op} ${name}`, op, [spec(shape, rand(size(shape), size(shape), -2, 2))], attrs, avgTol);
  });

// ---- batch_norm ----

function bnSpecs(shape, { stats = true, weight = true, bias = true, lo = -1, hi = 1, seed = 1 } = {}) {
  const C = shape[1];
  return [
    spec(shape, rand(size(shape), seed, lo, hi)),
    stats ? spec([C], rand(C, seed + 1, -0.5, 0.5), false) : null,
    stats ? spec([C], rand(C, seed + 2, 0.5, 1.5), false) : null,
    weight ? spec([C], rand(C, seed + 3, 0.5, 1.5)) : null,
    bias ? spec([C], rand(C, seed + 4, -1, 1)) : null,
  ];
}

const bnTol = (what, g, c) => compare(what, g, c, 1e-4, 1e-5);
// Inputs near 50 (ulp 3.8e-6): the CPU's mean is a few ulps off (its f32 lane sums), so its
// normalised output is within 2e-5 of the f64 truth; the GPU's is held to 1e-5 of the truth
// below, and to the CPU's within their two errors.
const bnTolOffset = (what, g, c) => compare(what, g, c, 1e-4, 3e-5);

/** f64 batch norm in training (no affine): the truth for the outputs of the offset case. */
function bnTrain64(x, [N, C, ...sp], eps) {
  const HW = size(sp), M = N * HW, y = new Float64Array(x.length);
  for (let c = 0; c < C; c++) {
    let s = 0, v = 0;
    for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) s += x[(n * C + c) * HW + i];
    const m = s / M;
    for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) v += (x[(n * C + c) * HW + i] - m) ** 2;
    const is = 1 / Math.sqrt(v / M + eps);
    for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) y[(n * C + c) * HW + i] = (x[(n * C + c) * HW + i] - m) * is;
  }
  return y;
}

const bnConfigs = [
  ["[N,C] channels past a workgroup", [7, 300], {}],
  ["[N,C,L]", [3, 5, 11], {}],
  ["[N,C,H,W] odd sizes (one thread a channel)", [2, 6, 9, 7], {}],
  ["one partial per channel (512 < N·HW <= 4096)", [2, 5, 17, 19], {}],
  ["several partials per channel (N·HW = 2·53·47 > 4096)", [2, 3, 53, 47], {}],
  ["mean 50, std 0.3: variance without cancellation", [3, 4, 37, 41], { lo: 49.5, hi: 50.5 }],
  ["no affine, no running stats", [4, 3, 5, 5], { stats: false, weight: false, bias: false }],
  ["weight without bias", [2, 4, 7, 9], { bias: false }],
  ["two values per channel", [2, 3], {}],
];

for (const training of [true, false])
  for (const [name, shape, opts] of bnConfigs) {
    if (!training && opts.stats === false) continue;
    for (const attrs of [{ training }, { training, momentum: 0.3, eps: 1e-3 }])
      test(`batch_norm ${training ? "train" : "eval"} ${name} ${JSON.stringify(shape)} ${JSON.stringify(attrs)}: output, gradients, running stats as the CPU's`, async () => {
        const specs = bnSpecs(shape, { ...opts, seed: size(shape) });
        const offset = opts.lo === 49.5;
        const { gpu } = await versus(`batch_norm ${name}`, "batch_norm", specs, attrs, offset ? bnTolOffset : bnTol);
        if (offset && training) {
          const noAffine = await runOn("webgpu", "batch_norm", [specs[0], null, null, null, null], attrs, null);
          compare("offset input: the f64 truth", noAffine.out, bnTrain64(specs[0].data, shape, attrs.eps ?? 1e-5), 0, 1e-5);
        }
        // inputs 1, 2 (running stats): written in training only; x, w, b never
        for (const i of training ? [0, 3, 4] : [0, 1, 2, 3, 4]) if (specs[i]) sameBits(`input ${i} unchanged`, gpu.after[i], specs[i].data);
        if (training && specs[1]) assert.not.equal([...gpu.after[1]], [...specs[1].data], "running mean updated");
      });
  }

test("batch_norm: train without grad (nothing kept) and momentum 0 / 1", async () => {
  const specs = bnSpecs([3, 4, 5, 5], { seed: 11 });
  for (const momentum of [0, 1]) {
    const cpu = await runOn("cpu", "batch_norm", specs, { training: true, momentum }, null);
    const gpu = await runOn("webgpu", "batch_norm", specs, { training: true, momentum }, null);
    bnTol(`momentum ${momentum} out`, gpu.out, cpu.out);
    bnTol(`momentum ${momentum} running mean`, gpu.after[1], cpu.after[1]);
    bnTol(`momentum ${momentum} running var`, gpu.after[2], cpu.after[2]);
    if (momentum === 0) sameBits("momentum 0 keeps the running var", gpu.after[2], specs[2].data);
  }
});

test("batch_norm: a bad weight shape is the op's error on the GPU too", () => {
  const x = sn.tensor(rand(2 * 3 * 4, 5), [2, 3, 4]).to("webgpu");
  assert.throws(() => sn.batch_norm(x, null, null, sn.ones([2]).to("webgpu"), null, { training: true }), /batch_norm: weight must have shape \[C\] = \[3\]/);
  const cpuStats = sn.zeros([3]);
  assert.throws(() => sn.batch_norm(x, cpuStats, sn.ones([3]), null, null, { training: true }), /batch_norm: inputs are on different devices/);
});

// ---- local_response_norm ----

const lrnConfigs = [
  ["AlexNet size 5 beta 0.75 k 2, channels past a window", [2, 19, 5, 7], { size: 5, alpha: 1e-4, beta: 0.75, k: 2 }, 0, 10],
  ["size 4 even window alpha 1", [2, 6, 3, 3], { size: 4, alpha: 1, beta: 0.75, k: 1 }, -1, 1],
  ["size 7 on 3 channels", [1, 3, 17, 16], { size: 7, alpha: 0.5, beta: 0.75, k: 1 }, -1, 1],
  ["beta 0.5 (general power)", [2, 5, 3, 3], { size: 3, alpha: 2, beta: 0.5, k: 1 }, -1, 1],
  ["beta 2 k 0.5", [1, 4, 5, 3], { size: 3, alpha: 1, beta: 2, k: 0.5 }, -1, 1],
  ["beta 0 (the identity)", [1, 4, 3, 3], { size: 3, alpha: 1, beta: 0, k: 1 }, -1, 1],
  ["rank 5", [2, 5, 3, 2, 3], { size: 3, alpha: 1, beta: 0.75, k: 1 }, -1, 1],
  ["negative k, odd integer beta (negative base)", [1, 4, 3, 3], { size: 3, alpha: 0.1, beta: 3, k: -5 }, -1, 1],
  ["negative k, even integer beta", [1, 4, 3, 3], { size: 3, alpha: 0.1, beta: 2, k: -5 }, -1, 1],
];

for (const [name, shape, attrs, lo, hi] of lrnConfigs)
  test(`local_response_norm ${name} ${JSON.stringify(shape)}: output and gradient as the CPU's`, async () => {
    const x = rand(size(shape), size(shape) + 3, lo, hi);
    await versus(`lrn ${name}`, "local_response_norm", [spec(shape, x)], attrs, (w, g, c) => compare(w, g, c, 1e-5, 1e-5));
  });

test("local_response_norm: s = 0 and a negative base with a fractional beta give the CPU's Infinity and NaN", async () => {
  const x = new Float32Array([0, 0, 0, 0, 1, 2, 0, 0]);
  for (const attrs of [{ size: 1, alpha: 1, beta: 0.75, k: 0 }, { size: 1, alpha: 1, beta: 0.5, k: 0 }, { size: 1, alpha: 1, beta: 0.5, k: -10 }]) {
    const cpu = await runOn("cpu", "local_response_norm", [spec([1, 2, 4], x)], attrs, null);
    const gpu = await runOn("webgpu", "local_response_norm", [spec([1, 2, 4], x)], attrs, null);
    sameValues(`lrn ${JSON.stringify(attrs)}`, gpu.out, cpu.out);
  }
});

// ---- dropout: the CPU's mask, bit for bit ----

for (const [shape, p, seed] of [
  [[1], 0.5, 0],
  [[257], 0.1, 1],
  [[3, 7, 11, 13], 0.5, 12345],
  [[100003], 0.9, 2 ** 32 - 1],
  [[64, 1000], 0.3, 0x9e3779b9],
])
  test(`dropout ${JSON.stringify(shape)} p=${p} seed ${seed}: forward and backward equal the CPU's bits`, async () => {
    const x = rand(size(shape), seed % 1000, -2, 2);
    const { gpu } = await versus(`dropout p=${p}`, "dropout", [spec(shape, x)], { p, seed }, sameBits);
    const kept = gpu.out.reduce((k, v) => k + (v !== 0 ? 1 : 0), 0);
    if (size(shape) > 1000) assert.ok(Math.abs(kept / size(shape) - (1 - p)) < 0.02, `kept fraction ${kept / size(shape)}`);
  });

test("dropout: NaN and infinite inputs (kept: NaN, ±Infinity; dropped: 0, as the CPU)", async () => {
  const x = new Float32Array(1000).map((_, i) => [NaN, Infinity, -Infinity, 1][i % 4]);
  const cpu = await runOn("cpu", "dropout", [spec([1000], x)], { p: 0.5, seed: 7 }, null);
  const gpu = await runOn("webgpu", "dropout", [spec([1000], x)], { p: 0.5, seed: 7 }, null);
  sameValues("dropout specials", gpu.out, cpu.out);
  assert.ok(gpu.out.some(Number.isNaN) && gpu.out.some((v) => v === 0));
});

test("dropout: training=false and p=0 pass the input through (forward and backward)", async () => {
  const x = rand(777, 5, -3, 3);
  for (const attrs of [{ training: false, p: 0.7 }, { p: 0, seed: 3 }]) {
    const r = await runOn("webgpu", "dropout", [spec([777], x)], attrs, (n) => rand(n, 6));
    sameBits(`${JSON.stringify(attrs)} forward`, r.out, x);
    sameBits(`${JSON.stringify(attrs)} backward`, r.grads[0], rand(777, 6));
  }
});

test("dropout without a seed: backward applies the forward's (random) mask", async () => {
  const x = sn.ones([5000]).to("webgpu").requireGrad();
  const y = sn.dropout(x, { p: 0.4 });
  y.backward(sn.ones([5000]).to("webgpu"));
  sameBits("dx = y for x = 1, dy = 1", await x.grad.read(), await y.read());
  const y2 = await sn.dropout(sn.ones([5000]).to("webgpu"), { p: 0.4 }).read();
  assert.not.equal([...y2], [...(await y.read())], "a new mask per call");
});

runAndExit(sn);
