// Pooling, activation, loss and shape ops: bad inputs are clear errors thrown before any kernel
// runs, and every kernel gives the same bits on 1, 2 and 3 threads with every call split
// (minParallelWork 0). Values against PyTorch are in the conformance suite.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import * as sn from "../dist/index.js";
import { uniformValues as rand } from "./helpers.mjs";

const size = (s) => s.reduce((a, b) => a * b, 1);
const labels = (n, c, seed) => Float32Array.from(rand(n, seed, 0, c), Math.floor);

// ---- bad inputs ----

let eng;
test.before(async () => {
  await sn.init({ threads: 2 });
  eng = sn.engine();
});

const T = (shape, values) => sn.tensor(values ?? rand(size(shape), 1), shape);

/** [op, inputs (made lazily), attrs, expected message] */
const bad = [
  ["max_pool2d", () => [T([3, 8, 8])], { kernel_size: 2 }, /^max_pool2d: input must be rank 4, got rank 3 \[3,8,8\]$/],
  ["max_pool2d", () => [T([1, 1, 8, 8])], { kernel_size: 2, padding: 2 }, /^max_pool2d: padding \[2,2\] must be at most half the kernel size \[2,2\] \(input \[1,1,8,8\]\)$/],
  ["max_pool2d", () => [T([1, 1, 2, 2])], { kernel_size: 3 }, /^max_pool2d: input \[1,1,2,2\] is too small for kernel \[3,3\] .*output would be 0x0$/],
  ["max_pool2d", () => [T([1, 1, 1, 1])], { kernel_size: 2, dilation: 2, padding: 1 }, /^max_pool2d: window of output row 0 lies wholly in the padding \(input \[1,1,1,1\]/],
  ["max_pool2d", () => [T([1, 1, 4, 4])], { kernel_size: 0 }, /^max_pool2d: kernel_size must be an integer >= 1, got 0$/],
  ["avg_pool2d", () => [T([4, 4])], { kernel_size: 2 }, /^avg_pool2d: input must be rank 4, got rank 2 \[4,4\]$/],
  ["avg_pool2d", () => [T([1, 1, 4, 4])], { kernel_size: 2, count_include_pad: "yes" }, /^avg_pool2d: count_include_pad must be a boolean, got "yes"$/],
  ["avg_pool2d", () => [T([1, 1, 4, 4])], { kernel_size: 2, divisor_override: 3 }, /^avg_pool2d: divisor_override is not supported$/],
  ["adaptive_avg_pool2d", () => [T([1, 2, 4, 4])], { output_size: 0 }, /^adaptive_avg_pool2d: output_size must be an integer >= 1, got 0$/],
  ["adaptive_avg_pool2d", () => [T([1, 2, 4, 4])], { output_size: [1, 2, 3] }, /^adaptive_avg_pool2d: output_size must be an int or a pair/],
  ["global_avg_pool2d", () => [T([2, 4, 4])], {}, /^global_avg_pool2d: input must be rank 4, got rank 3 \[2,4,4\]$/],
  ["leaky_relu", () => [T([3])], { negative_slope: "a" }, /^leaky_relu: negative_slope must be a finite number, got "a"$/],
  ["sigmoid", () => [5], {}, /^sigmoid: input 'input' must be a Tensor, got number$/],
  ["tanh", () => [], {}, /^tanh: input 'input' is required$/],
  ["softmax", () => [T([4, 10])], { dim: 4 }, /^softmax: dim must be an integer in \[-2, 1\] for input \[4,10\], got 4$/],
  ["log_softmax", () => [T([])], { dim: 0 }, /^log_softmax: input must have at least one dimension, got a scalar \[\]$/],
  ["cross_entropy", () => [T([4, 10]), T([5], labels(5, 10, 2))], {}, /^cross_entropy: target \[5\] does not match input \[4,10\]: expected class indices of shape \[4\]$/],
  ["cross_entropy", () => [T([2, 10]), T([2], [3, 10])], {}, /^cross_entropy: target\[1\] = 10 is not a class index in \[0, 10\) or ignore_index -100 \(input \[2,10\]\)$/],
  ["cross_entropy", () => [T([2, 3, 4]), T([2], [0, 1])], {}, /^cross_entropy: target \[2\] does not match input \[2,3,4\]: expected class indices of shape \[2,4\]$/],
  ["cross_entropy", () => [T([5]), T([5], [0, 1, 0, 1, 0])], {}, /^cross_entropy: input must be \[N, C\] logits or \[N, C, d1, \.\.\.\] score maps, got \[5\]$/],
  ["cross_entropy", () => [T([2, 3]), T([2], [0, 1])], { reduction: "avg" }, /^cross_entropy: reduction must be "mean", "sum" or "none", got "avg"$/],
  ["multi_margin_loss", () => [T([2, 3]), T([2], [0, 1])], { p: 3 }, /^multi_margin_loss: p must be 1 or 2, got 3$/],
  ["multi_margin_loss", () => [T([2, 3]), T([2], [0, 1.5])], {}, /^multi_margin_loss: target\[1\] = 1.5 is not a class index in \[0, 3\)/],
  ["binary_cross_entropy", () => [T([2, 2], [0.5, 1.5, 0, 1]), T([2, 2])], {}, /^binary_cross_entropy: input values must be probabilities in \[0, 1\], got 1.5 at element 1 \(input \[2,2\]\)$/],
  ["binary_cross_entropy_with_logits", () => [T([2, 3]), T([3, 2])], {}, /^binary_cross_entropy_with_logits: target \[3,2\] does not match input \[2,3\]$/],
  ["mse_loss", () => [T([3, 4]), T([3, 5])], {}, /^mse_loss: target \[3,5\] does not match input \[3,4\]$/],
  ["l1_loss", () => [T([3, 4]), T([12])], {}, /^l1_loss: target \[12\] does not match input \[3,4\]$/],
  ["cat", () => [T([2, 3, 4]), T([2, 3, 5])], { dim: 1 }, /^cat: input 1 \[2,3,5\] does not match input 0 \[2,3,4\] outside dim 1$/],
  ["cat", () => [T([2, 3]), T([2, 3])], { dim: 2 }, /^cat: dim must be an integer in \[-2, 1\] for inputs of rank 2, got 2$/],
  ["cat", () => [], { dim: 0 }, /^cat: needs at least one tensor$/],
  ["bias_add", () => [T([2, 4, 3, 3]), T([5])], {}, /^bias_add: bias \[5\] does not match input channels 4 \(input \[2,4,3,3\]\)$/],
  ["bias_add", () => [T([4]), T([4])], {}, /^bias_add: input must be rank 2 or more \[N, C, \.\.\.\], got rank 1 \[4\]$/],
  ["upsample_bilinear2d", () => [T([1, 1, 4, 4])], { size: 8, scale_factor: 2 }, /^upsample_bilinear2d: give exactly one of size and scale_factor \(input \[1,1,4,4\]\)$/],
  ["upsample_bilinear2d", () => [T([1, 4, 4])], { scale_factor: 2 }, /^upsample_bilinear2d: input must be rank 4, got rank 3 \[1,4,4\]$/],
  ["upsample_bilinear2d", () => [T([1, 1, 4, 4])], { scale_factor: 0.1 }, /^upsample_bilinear2d: scale_factor 0.1 gives an empty output 0x0 for input \[1,1,4,4\]$/],
  ["upsample_bilinear2d", () => [T([1, 1, 4, 4])], { scale_factor: 2, recompute_scale_factor: true }, /^upsample_bilinear2d: recompute_scale_factor is not supported$/],
  ["upsample_nearest2d", () => [T([1, 1, 4, 4])], { scale_factor: 2, align_corners: true }, /^upsample_nearest2d: align_corners applies only to bilinear mode$/],
  ["sum", () => ["x"], {}, /^sum: input 'input' must be a Tensor, got string$/],
  ["mean", () => [T([2]), T([2])], {}, /^mean: takes 1 inputs, got 2$/],
  ["mul_scalar", () => [T([2])], { scalar: "2" }, /^mul_scalar: scalar must be a number, got "2"$/],
];

for (const [op, inputs, attrs, want] of bad) {
  test(`${op}: bad input is an error naming the op and shapes (${want.source.slice(1, 60)}...), before any kernel runs`, () => {
    const ins = inputs();
    const run = eng.run;
    let calls = 0;
    eng.run = (...a) => {
      calls++;
      return run.apply(eng, a);
    };
    try {
      assert.throws(() => sn.opTable.get(op).apply(ins, attrs), (e) => want.test(e.message) || assert.unreachable(`message was: ${e.message}`));
    } finally {
      eng.run = run;
    }
    assert.is(calls, 0, "no kernel ran");
  });
}

test("interpolate: an unknown mode is an error", () => {
  assert.throws(() => sn.interpolate(T([1, 1, 2, 2]), { scale_factor: 2, mode: "bicubic" }), /interpolate: mode must be "bilinear" or "nearest", got "bicubic"/);
});

test("the kernels' static data (if any) ends below the pool's control block at 57344", () => {
  // every worker's instantiation copies the data segments into the shared memory again
  for (const f of ["simdnet.simd.wasm", "simdnet.relaxed.wasm", "simdnet.simd.single.wasm", "simdnet.relaxed.single.wasm"]) {
    const bytes = readFileSync(new URL(`../dist/${f}`, import.meta.url));
    let at = 8, end = 0;
    const leb = () => {
      let v = 0, shift = 0, b;
      do {
        b = bytes[at++];
        v += (b & 0x7f) * 2 ** shift;
        shift += 7;
      } while (b & 0x80);
      return v;
    };
    while (at < bytes.length) {
      const id = bytes[at++];
      const len = leb();
      const next = at + len;
      if (id === 11)
        for (let i = 0, n = leb(); i < n; i++) {
          const flags = leb();
          assert.is(flags, 0, "active segments in memory 0");
          assert.is(bytes[at++], 0x41, "i32.const offset");
          const offset = leb();
          at++;
          const size = leb();
          end = Math.max(end, offset + size);
          at += size;
        }
      at = next;
    }
    assert.ok(end <= 57344, `${f}: static data ends at ${end}`);
  }
});

// ---- same bits on any thread count ----

/** Each scenario: inputs (shape, values, whether a gradient is wanted), the op call, and whether
 *  the output is a scalar (backward with no gradient) or takes a random output gradient. */
const P = (shape, seed, lo, hi, grad = true) => ({ shape, values: rand(size(shape), seed, lo, hi), grad });
const D = (shape, values) => ({ shape, values, grad: false });
const scenarios = [
  ["max_pool2d 3x3 s2 p1", [P([3, 5, 23, 29], 1)], ([x]) => sn.max_pool2d(x, { kernel_size: 3, stride: 2, padding: 1 })],
  ["max_pool2d 3x3 s3 p1 dilation 2 ceil", [P([2, 3, 17, 19], 2)], ([x]) => sn.max_pool2d(x, { kernel_size: 3, stride: 3, padding: 1, dilation: 2, ceil_mode: true })],
  ["max_pool2d 2x2 s1", [P([2, 9, 13, 11], 3)], ([x]) => sn.max_pool2d(x, { kernel_size: 2, stride: 1 })],
  ["avg_pool2d 3x3 s2 p1 ceil exclude pad", [P([3, 5, 23, 29], 4)], ([x]) => sn.avg_pool2d(x, { kernel_size: 3, stride: 2, padding: 1, ceil_mode: true, count_include_pad: false })],
  ["adaptive_avg_pool2d -> [5,7]", [P([3, 5, 23, 29], 5)], ([x]) => sn.adaptive_avg_pool2d(x, [5, 7])],
  ["global_avg_pool2d", [P([3, 5, 23, 29], 6)], ([x]) => sn.global_avg_pool2d(x)],
  ["leaky_relu", [P([3 * 4096 + 7], 7)], ([x]) => sn.leaky_relu(x, 0.1)],
  ["sigmoid", [P([3 * 4096 + 7], 8, -20, 20)], ([x]) => sn.sigmoid(x)],
  ["tanh", [P([3 * 4096 + 7], 9, -5, 5)], ([x]) => sn.tanh(x)],
  ["softmax last dim", [P([37, 301], 10, -5, 5)], ([x]) => sn.softmax(x, -1)],
  ["softmax dim 1 of NCHW", [P([3, 7, 11, 13], 11, -5, 5)], ([x]) => sn.softmax(x, 1)],
  ["log_softmax last dim", [P([37, 301], 12, -5, 5)], ([x]) => sn.log_softmax(x, -1)],
  ["log_softmax dim 1 of NCHW", [P([3, 7, 11, 13], 13, -5, 5)], ([x]) => sn.log_softmax(x, 1)],
  ["cross_entropy mean", [P([67, 103], 14, -5, 5), D([67], labels(67, 103, 15))], ([x, t]) => sn.cross_entropy(x, t)],
  ["cross_entropy none", [P([67, 103], 16, -5, 5), D([67], labels(67, 103, 17))], ([x, t]) => sn.cross_entropy(x, t, { reduction: "none" })],
  ["multi_margin_loss p=2", [P([67, 103], 18), D([67], labels(67, 103, 19))], ([x, t]) => sn.multi_margin_loss(x, t, { p: 2, reduction: "sum" })],
  ["mse_loss mean", [P([12295], 20), D([12295], rand(12295, 21))], ([x, t]) => sn.mse_loss(x, t)],
  ["l1_loss none", [P([12295], 22), D([12295], rand(12295, 23))], ([x, t]) => sn.l1_loss(x, t, { reduction: "none" })],
  ["binary_cross_entropy mean", [P([12295], 24, 0.01, 0.99), D([12295], rand(12295, 25, 0, 1))], ([x, t]) => sn.binary_cross_entropy(x, t)],
  ["binary_cross_entropy_with_logits sum", [P([12295], 26, -8, 8), D([12295], rand(12295, 27, 0, 1))], ([x, t]) => sn.binary_cross_entropy_with_logits(x, t, { reduction: "sum" })],
  ["cat along channels", [P([3, 5, 11, 13], 28), P([3, 2, 11, 13], 29)], ([a, b]) => sn.cat([a, b], 1)],
  ["cat along dim 0 (one long row)", [P([1, 9001], 30), P([2, 9001], 31)], ([a, b]) => sn.cat([a, b], 0)],
  ["bias_add NCHW", [P([3, 7, 11, 13], 32), P([7], 33)], ([x, b]) => sn.bias_add(x, b)],
  ["bias_add [N,C]", [P([67, 103], 34), P([103], 35)], ([x, b]) => sn.bias_add(x, b)],
  ["upsample_bilinear2d scale 2", [P([2, 3, 13, 17], 36)], ([x]) => sn.interpolate(x, { scale_factor: 2, mode: "bilinear" })],
  ["upsample_bilinear2d size align_corners", [P([2, 3, 13, 17], 37)], ([x]) => sn.interpolate(x, { size: [30, 21], mode: "bilinear", align_corners: true })],
  ["upsample_nearest2d size", [P([2, 3, 13, 17], 38)], ([x]) => sn.interpolate(x, { size: [30, 21], mode: "nearest" })],
  ["sum", [P([12295], 39)], ([x]) => sn.sum(x)],
  ["mean", [P([12295], 40)], ([x]) => sn.mean(x)],
  ["mul_scalar", [P([12295], 41)], ([x]) => sn.mul(x, -1.7)],
];

/** Output and input gradients, as raw bits. */
function runOn(e, inputs, call) {
  const ins = inputs.map((s) => {
    const t = sn.tensor(s.values, s.shape, e);
    if (s.grad) t.requireGrad();
    return t;
  });
  const y = call(ins);
  if (y.size === 1) y.backward();
  else y.backward(sn.tensor(rand(y.size, 99), y.shape, e));
  const bits = (t) => Array.from(new Uint32Array(t.toArray().buffer));
  return { y: bits(y), grads: ins.filter((t) => t.requiresGrad).map((t) => bits(t.grad)) };
}

// These kernels use no madd (only plain mul and add), so the baseline SIMD build must give the
// same bits as the build picked for this runtime too.
let engines = [];
const setups = ["1 thread", "2 threads", "3 threads", "2 threads, baseline simd build"];
test("setup: engines with 1, 2 and 3 threads (every kernel call split), and one on the baseline simd build", async () => {
  engines = [
    await sn.Engine.create({ threads: 1 }),
    await sn.Engine.create({ threads: 2, minParallelWork: 0 }),
    await sn.Engine.create({ threads: 3, minParallelWork: 0 }),
    await sn.Engine.create({ threads: 2, minParallelWork: 0, build: "simd" }),
  ];
  assert.equal(engines.map((e) => e.threads), [1, 2, 3, 2]);
  assert.is(engines[3].info.build, "simd");
});

for (const [name, inputs, call] of scenarios) {
  test(`${name}: output and gradients have the same bits on 1, 2 and 3 threads and on the baseline build`, () => {
    const [one, ...more] = engines.map((e) => runOn(e, inputs, call));
    assert.ok(one.y.length > 0 && one.grads.length > 0);
    more.forEach((r, i) => {
      assert.equal(r.y, one.y, `output on ${setups[i + 1]}`);
      r.grads.forEach((g, j) => assert.equal(g, one.grads[j], `gradient of input ${j} on ${setups[i + 1]}`));
    });
  });
}

test.after(() => {
  engines.forEach((e) => e.dispose());
  sn.dispose();
});
test.run();
