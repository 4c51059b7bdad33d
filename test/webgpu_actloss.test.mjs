// The WebGPU activation and loss kernels (src/webgpu/ops/activation.ts, loss.ts) against the
// CPU path of the same op on the same random inputs, forward and input gradient: shapes that
// cross the workgroup size and both row kernels (a thread a row, a workgroup a row), the
// two-pass reductions past one workgroup of partials, large-magnitude inputs (no NaN), score
// maps with ignore_index, every reduction, run-to-run bits, and error paths (bad target values:
// webgpu_loss_errors.test.mjs).
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { compare, sameBits } from "./helpers.mjs";
import { initGpu, runAndExit } from "./gpu_helpers.mjs";

test.before(async () => {
  await initGpu(sn);
});

// deterministic inputs
let seed = 12345;
function rand() {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 4294967296;
}
const uniform = (n, lo, hi) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
const classes = (n, C) => Float32Array.from({ length: n }, () => Math.floor(rand() * C));
const size = (shape) => shape.reduce((a, b) => a * b, 1);

/** Runs op on the CPU and on the GPU with the same inputs (input 0 requires grad) and the same
 *  output gradient; returns both outputs and both input-0 gradients as Float32Arrays. */
async function both(op, inputs, attrs, gout) {
  const run = async (device) => {
    const ts = inputs.map(({ data, shape }, i) => {
      let t = sn.tensor(data, shape);
      if (device === "webgpu") t = t.to("webgpu");
      if (i === 0) t.requireGrad();
      return t;
    });
    const y = sn.opTable.get(op).apply(ts, attrs);
    assert.is(y.device, device);
    const g = sn.tensor(gout ?? uniform(y.size, -1, 1), y.shape);
    y.backward(device === "webgpu" ? g.to("webgpu") : g);
    return { out: await y.read(), grad: await ts[0].grad.read(), shape: [...y.shape] };
  };
  const s = seed; // the same random output gradient for both runs
  const cpu = await run("cpu");
  seed = s;
  const gpu = await run("webgpu");
  assert.equal(gpu.shape, cpu.shape, `${op}: output shape`);
  return { cpu, gpu };
}

function noNaN(what, a) {
  for (let i = 0; i < a.length; i++) if (Number.isNaN(a[i])) throw new Error(`${what}: NaN at element ${i}`);
}

async function check(op, inputs, attrs, tol, what = "") {
  const { cpu, gpu } = await both(op, inputs, attrs);
  const name = `${op} ${JSON.stringify(attrs)} ${inputs.map((i) => `[${i.shape}]`).join(" ")} ${what}`;
  if (tol === "exact") {
    sameBits(`${name} out`, gpu.out, cpu.out);
    sameBits(`${name} grad`, gpu.grad, cpu.grad);
  } else {
    compare(`${name} out`, gpu.out, cpu.out, tol.rtol, tol.atol);
    compare(`${name} grad`, gpu.grad, cpu.grad, tol.rtol, tol.atol);
  }
  return { cpu, gpu };
}

const TIGHT = { rtol: 1e-6, atol: 1e-7 };
const SOFT = { rtol: 1e-5, atol: 1e-6 };

// ---- activations ----

test("leaky_relu: GPU = CPU bit for bit (0, -0, odd sizes, slopes)", async () => {
  for (const n of [1, 255, 257, 1000]) {
    const x = uniform(n, -5, 5);
    x[0] = 0;
    if (n > 1) x[1] = -0;
    for (const slope of [0.01, 0.2, -1.5]) await check("leaky_relu", [{ data: x, shape: [n] }], { negative_slope: slope }, "exact");
  }
});

test("sigmoid, tanh: GPU = CPU (fixture tolerance) over wide ranges, no NaN at +-100", async () => {
  for (const op of ["sigmoid", "tanh"])
    for (const [lo, hi, n] of [[-3, 3, 257], [-0.7, 0.7, 100], [-1e-3, 1e-3, 9], [-30, 30, 1000], [-100, 100, 513]]) {
      const x = uniform(n, lo, hi);
      x[0] = 0;
      x[1] = 100;
      x[2] = -100;
      const { gpu } = await check(op, [{ data: x, shape: [n] }], {}, TIGHT, `in [${lo}, ${hi}]`);
      noNaN(`${op} out`, gpu.out);
      noNaN(`${op} grad`, gpu.grad);
    }
});

test("sigmoid, tanh saturate exactly at +-100 (values and zero derivative)", async () => {
  const x = sn.tensor([100, -100, 1e4, -1e4], [4]).to("webgpu").requireGrad();
  const s = sn.sigmoid(x);
  assert.equal([...(await s.read())].map((v) => (v < 1e-30 ? 0 : v)), [1, 0, 1, 0]);
  assert.equal([...(await sn.tanh(x).read())], [1, -1, 1, -1]);
  s.backward(sn.tensor([1, 1, 1, 1], [4]).to("webgpu"));
  for (const v of await x.grad.read()) assert.ok(v >= 0 && v < 1e-30, `sigmoid' at saturation: ${v}`);
});

// softmax over the last dim (rows of D) and over a middle dim (inner > 1): D = 1, 10 (a thread a
// row), 257, 1000 (a workgroup a row), and many long rows with inner > 1 (a thread a row again)
const SOFTMAX_SHAPES = [
  [[5, 1], 1], [[7, 10], 1], [[3, 257], -1], [[2, 1000], 1], [[300, 10], 1],
  [[2, 10, 7], 1], [[3, 257, 5], 1], [[2, 1000, 3], -2], [[257, 2], 0], [[130, 4100], 0],
];

test("softmax, log_softmax: GPU = CPU for D = 1, 10, 257, 1000, any dim", async () => {
  for (const op of ["softmax", "log_softmax"])
    for (const [shape, dim] of SOFTMAX_SHAPES)
      await check(op, [{ data: uniform(size(shape), -3, 3), shape }], { dim }, SOFT);
});

test("softmax, log_softmax: logits of +-100 (and +-1e4): no NaN, GPU = CPU", async () => {
  for (const op of ["softmax", "log_softmax"])
    for (const [shape, dim] of [[[4, 10], 1], [[2, 1000], 1], [[2, 257, 3], 1]]) {
      const x = uniform(size(shape), -100, 100);
      x[0] = 1e4;
      x[x.length - 1] = -1e4;
      const { gpu } = await check(op, [{ data: x, shape }], { dim }, SOFT, "+-100");
      noNaN(`${op} out`, gpu.out);
      noNaN(`${op} grad`, gpu.grad);
    }
});

test("softmax rows sum to 1 on the GPU (long rows)", async () => {
  const y = await sn.softmax(sn.tensor(uniform(3 * 1000, -5, 5), [3, 1000]).to("webgpu"), 1).read();
  for (let r = 0; r < 3; r++) {
    let s = 0;
    for (let i = 0; i < 1000; i++) s += y[r * 1000 + i];
    assert.ok(Math.abs(s - 1) < 1e-5, `row ${r} sums to ${s}`);
  }
});

// ---- losses ----

const REDUCTIONS = ["mean", "sum", "none"];

test("cross_entropy rows [N, C]: C = 1, 10, 257, 1000, every reduction, ignore_index", async () => {
  for (const [N, C] of [[5, 1], [7, 10], [3, 257], [4, 1000], [300, 10]])
    for (const reduction of REDUCTIONS) {
      const t = classes(N, C);
      t[0] = -100;
      await check("cross_entropy", [{ data: uniform(N * C, -3, 3), shape: [N, C] }, { data: t, shape: [N] }], { reduction }, SOFT);
    }
});

test("cross_entropy score maps [N, C, H, W] with class maps, ignore_index -100 and 255, every reduction", async () => {
  for (const shape of [[2, 3, 4, 5], [2, 21, 9, 7], [1, 257, 3, 2], [2, 4, 33, 40]])
    for (const ignore of [-100, 255])
      for (const reduction of REDUCTIONS) {
        const [N, C, ...rest] = shape;
        const t = classes(N * size(rest), C);
        for (let i = 0; i < t.length; i += 3) t[i] = ignore;
        await check("cross_entropy", [{ data: uniform(size(shape), -3, 3), shape }, { data: t, shape: [N, ...rest] }], { reduction, ignore_index: ignore }, SOFT);
      }
});

test("cross_entropy: logits of +-100: no NaN, GPU = CPU (rows and maps)", async () => {
  for (const shape of [[6, 9], [3, 1000], [2, 5, 3, 3]]) {
    const [N, C, ...rest] = shape;
    const x = uniform(size(shape), -100, 100);
    for (const reduction of REDUCTIONS) {
      const { gpu } = await check("cross_entropy", [{ data: x, shape }, { data: classes(N * size(rest), C), shape: [N, ...rest] }], { reduction }, SOFT, "+-100");
      noNaN("cross_entropy out", gpu.out);
      noNaN("cross_entropy grad", gpu.grad);
    }
  }
});

test("cross_entropy mean with every target ignored: NaN as the CPU (and PyTorch), zero gradient", async () => {
  const { cpu, gpu } = await both("cross_entropy", [{ data: uniform(12, -1, 1), shape: [4, 3] }, { data: new Float32Array(4).fill(-100), shape: [4] }], {}, new Float32Array([1]));
  assert.ok(Number.isNaN(cpu.out[0]) && Number.isNaN(gpu.out[0]), `CPU ${cpu.out[0]}, GPU ${gpu.out[0]}`);
  sameBits("grad", gpu.grad, cpu.grad);
});

test("cross_entropy mean: the count of targets comes from the GPU (no readback), 2..1 of 3 ignored", async () => {
  // targets written by a GPU op: the op cannot know the count on the CPU
  const x = sn.tensor(uniform(3 * 4, -2, 2), [3, 4]);
  const tc = sn.tensor([-100, 2, -100], [3]);
  const want = sn.cross_entropy(x, tc).item();
  const gpu = sn.gpuEngine();
  const read0 = gpu.stats.bytesRead;
  const y = sn.cross_entropy(x.to("webgpu"), tc.to("webgpu"));
  assert.is(gpu.stats.bytesRead, read0, "the op read nothing back");
  compare("mean over 1 target", await y.read(), [want], 1e-5, 1e-6);
});

test("multi_margin_loss: p 1 and 2, margins, every reduction, C up to 257", async () => {
  for (const [N, C] of [[5, 7], [300, 10], [3, 257]])
    for (const p of [1, 2])
      for (const reduction of REDUCTIONS)
        await check("multi_margin_loss", [{ data: uniform(N * C, -2, 2), shape: [N, C] }, { data: classes(N, C), shape: [N] }], { p, margin: p === 1 ? 1 : 0.5, reduction }, SOFT);
});

// element-wise losses: sizes around the first pass's 1024 values a workgroup, and (for two of
// them, to keep the file quick) past 256 partials, where the second pass loops
const ELEM_SIZES = [1, 10, 1023, 1025, 5000];
const BIG = 270001;

/** op on inputs in [xlo, xhi] and targets in [tlo, thi] for every size and reduction */
async function elementLoss(op, [xlo, xhi], [tlo, thi], big) {
  for (const n of big ? [...ELEM_SIZES, BIG] : ELEM_SIZES)
    for (const reduction of REDUCTIONS) {
      if (n === BIG && reduction === "none") continue;
      const x = uniform(n, xlo, xhi), t = uniform(n, tlo, thi);
      const { gpu } = await check(op, [{ data: x, shape: [n] }, { data: t, shape: [n] }], { reduction }, SOFT);
      noNaN(`${op} out`, gpu.out);
      noNaN(`${op} grad`, gpu.grad);
    }
}

test("mse_loss, l1_loss: GPU = CPU, every reduction, sizes across the chunks", async () => {
  await elementLoss("mse_loss", [-3, 3], [-3, 3], true);
  await elementLoss("l1_loss", [-3, 3], [-3, 3], false);
});

test("binary_cross_entropy_with_logits: GPU = CPU, logits of +-100, soft targets, every reduction", async () => {
  await elementLoss("binary_cross_entropy_with_logits", [-100, 100], [0, 1], true);
});

test("binary_cross_entropy: GPU = CPU, every reduction, sizes across the chunks", async () => {
  await elementLoss("binary_cross_entropy", [0.01, 0.99], [0, 1], false);
});

test("binary_cross_entropy at p = 0 and 1 (logs clamped at -100), hard targets", async () => {
  const x = new Float32Array([0, 1, 0, 1, 0.5]), t = new Float32Array([0, 1, 1, 0, 1]);
  for (const reduction of REDUCTIONS) await check("binary_cross_entropy", [{ data: x, shape: [5] }, { data: t, shape: [5] }], { reduction }, SOFT);
});

test("l1_loss at x == t: zero gradient, bit for bit", async () => {
  const x = uniform(100, -1, 1);
  await check("l1_loss", [{ data: x, shape: [100] }, { data: x.slice(), shape: [100] }], { reduction: "none" }, "exact");
});

test("reductions: the same bits run to run (270001 values, mean and sum)", async () => {
  const x = sn.tensor(uniform(BIG, -3, 3), [BIG]).to("webgpu");
  const t = sn.tensor(uniform(BIG, -3, 3), [BIG]).to("webgpu");
  for (const reduction of ["mean", "sum"]) {
    const a = await sn.mse_loss(x, t, { reduction }).read();
    const b = await sn.mse_loss(x, t, { reduction }).read();
    sameBits(`mse ${reduction} run to run`, b, a);
  }
});

test("cross_entropy mean over score maps: the same bits run to run", async () => {
  const xs = sn.tensor(uniform(4 * 21 * 40 * 40, -3, 3), [4, 21, 40, 40]).to("webgpu");
  const ts = sn.tensor(classes(4 * 40 * 40, 21), [4, 40, 40]).to("webgpu");
  sameBits("cross_entropy mean run to run", await sn.cross_entropy(xs, ts).read(), await sn.cross_entropy(xs, ts).read());
});

// ---- error paths ----

test("errors on the GPU: bad dim, shape mismatch, mixed devices (from the shared check)", () => {
  const g = sn.tensor([1, 2, 3, 4], [2, 2]).to("webgpu");
  assert.throws(() => sn.softmax(g, 2), /dim must be an integer in \[-2, 1\]/);
  assert.throws(() => sn.mse_loss(g, sn.tensor([1, 2], [2]).to("webgpu")), /does not match input/);
  assert.throws(() => sn.mse_loss(g, sn.tensor([1, 2, 3, 4], [2, 2])), /different devices/);
  assert.throws(() => sn.cross_entropy(g, sn.tensor([0, 1, 0], [3]).to("webgpu")), /does not match input/);
  assert.throws(() => sn.leaky_relu(g, Infinity), /negative_slope must be a finite number/);
});

// bad targets on the GPU (a class out of range, a probability outside [0, 1]): the kernels write
// NaN and the next read rejects with the op's error: test/webgpu_loss_errors.test.mjs

runAndExit(sn);
