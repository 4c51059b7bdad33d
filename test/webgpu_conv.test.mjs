// conv2d and conv_transpose2d on WebGPU against the CPU path of the same op on the same random
// inputs: output, input gradient, weight gradient, bias gradient, for shapes the fixtures do
// not reach (channels, positions and K that are not multiples of the 64 x 64 x 16 tiles or
// span several tiles, strides past the kernel, dilation, groups, depthwise, the split weight-
// gradient reduction, batch 0-3); the same bits run to run; inputs unchanged; errors.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { compare, sameBits, uniformValues } from "./helpers.mjs";
import { initGpu, runAndExit } from "./gpu_helpers.mjs";

test.before(async () => {
  await initGpu(sn);
});

const size = (s) => s.reduce((a, b) => a * b, 1);
const pair = (v) => (Array.isArray(v) ? v : [v, v]);

/** The reduction lengths of the four results (for the tolerance atol 1e-5 + 1e-6 K). */
function reductions(op, xs, ws, attrs) {
  const [SH, SW] = pair(attrs.stride ?? 1), [PH, PW] = pair(attrs.padding ?? 0), [DH, DW] = pair(attrs.dilation ?? 1);
  const G = attrs.groups ?? 1, [N, , H, W] = xs, [, Cw, KH, KW] = ws;
  if (op === "conv2d") {
    const HO = Math.floor((H + 2 * PH - DH * (KH - 1) - 1) / SH) + 1, WO = Math.floor((W + 2 * PW - DW * (KW - 1) - 1) / SW) + 1;
    return { y: Cw * KH * KW, dx: (ws[0] / G) * KH * KW, dw: N * HO * WO, db: N * HO * WO };
  }
  const [OPH, OPW] = pair(attrs.output_padding ?? 0);
  const HO = (H - 1) * SH - 2 * PH + DH * (KH - 1) + OPH + 1, WO = (W - 1) * SW - 2 * PW + DW * (KW - 1) + OPW + 1;
  return { y: (ws[0] / G) * KH * KW, dx: Cw * KH * KW, dw: N * H * W, db: N * HO * WO };
}

/** Runs op forward and backward on `device` from the same values; returns the results. */
async function run(device, op, vals, shapes, attrs, gout) {
  const ts = vals.map((v, i) => (v ? sn.tensor(v, shapes[i]) : null)).map((t) => (t && device === "webgpu" ? t.to("webgpu") : t));
  for (const t of ts) t?.requireGrad();
  const y = sn.opTable.get(op).apply(ts, attrs);
  const read = (t) => (device === "webgpu" ? t.read() : t.toArray());
  const out = { shape: [...y.shape], y: await read(y) };
  y.backward(sn.tensor(gout, y.shape).to(device));
  out.grads = await Promise.all(ts.map((t) => (t ? read(t.grad) : null)));
  out.after = await Promise.all(ts.map((t) => (t ? read(t) : null)));
  for (const t of ts) {
    t?.grad?.dispose();
    t?.dispose();
  }
  y.dispose();
  return out;
}

async function check(op, xs, ws, bias, attrs, seed = 1) {
  const bs = bias ? [op === "conv2d" ? ws[0] : ws[1] * (attrs.groups ?? 1)] : null;
  const shapes = [xs, ws, bs];
  const vals = shapes.map((s, i) => (s ? uniformValues(size(s), seed * 7 + i) : null));
  // the output gradient needs the output's shape: run forward once on the CPU for it
  const y0 = sn.opTable.get(op).apply(vals.map((v, i) => (v ? sn.tensor(v, shapes[i]) : null)), attrs);
  const gout = uniformValues(y0.size, seed * 7 + 5);
  const yshape = [...y0.shape];
  y0.dispose();
  const want = await run("cpu", op, vals, shapes, attrs, gout);
  const got = await run("webgpu", op, vals, shapes, attrs, gout);
  assert.equal(got.shape, yshape, "output shape");
  const K = reductions(op, xs, ws, attrs);
  const tol = (k) => 1e-5 + 1e-6 * k;
  compare(`${op} out`, got.y, want.y, 1e-4, tol(K.y));
  compare(`${op} dx`, got.grads[0], want.grads[0], 1e-4, tol(K.dx));
  compare(`${op} dw`, got.grads[1], want.grads[1], 1e-4, tol(K.dw));
  if (bias) compare(`${op} db`, got.grads[2], want.grads[2], 1e-4, tol(K.db));
  got.after.forEach((a, i) => a && sameBits(`${op}: input ${i} was written`, a, vals[i]));
  // the same bits run to run
  const again = await run("webgpu", op, vals, shapes, attrs, gout);
  sameBits(`${op} out, second run`, again.y, got.y);
  again.grads.forEach((g, i) => g && sameBits(`${op} grad ${i}, second run`, g, got.grads[i]));
}

// [name, input shape, weight shape, bias, attrs]
const convCases = [
  ["1x1, 67 outputs (> one M tile), 100 positions x 3 images", [3, 5, 10, 10], [67, 5, 1, 1], true, {}],
  ["1x1 s2, positions 1 per image", [2, 70, 2, 2], [3, 70, 1, 1], false, { stride: 2 }],
  ["3x3 p1, K 27, 130 outputs (3 M tiles)", [1, 3, 9, 8], [130, 3, 3, 3], true, { padding: 1 }],
  ["3x3 p1, 70 input channels (dx over 2 M tiles, K 630)", [2, 70, 5, 6], [9, 70, 3, 3], true, { padding: 1 }],
  ["3x3 s2 p1, odd sizes", [2, 4, 11, 9], [6, 4, 3, 3], true, { stride: 2, padding: 1 }],
  ["5x5 p2, prime sizes", [1, 3, 13, 7], [5, 3, 5, 5], true, { padding: 2 }],
  ["7x7 s2 p3, ResNet's first layer shrunk, K 147", [2, 3, 19, 17], [8, 3, 7, 7], false, { stride: 2, padding: 3 }],
  ["11x11 s4 p2, AlexNet's first layer shrunk", [1, 3, 31, 29], [5, 3, 11, 11], true, { stride: 4, padding: 2 }],
  ["1x1 s4: pixels no tap reaches get 0", [1, 3, 9, 10], [4, 3, 1, 1], true, { stride: 4 }],
  ["2x2 s3: stride past the kernel", [2, 2, 10, 8], [3, 2, 2, 2], true, { stride: 3 }],
  ["stride 2 on a 1-high input", [1, 3, 1, 7], [2, 3, 1, 3], true, { stride: 2, padding: [0, 1] }],
  ["padding [2, 0], stride [2, 1], 3x5", [2, 3, 8, 11], [4, 3, 3, 5], true, { stride: [2, 1], padding: [2, 0] }],
  ["padding 3 > the kernel's half, 3x3", [1, 2, 5, 6], [3, 2, 3, 3], true, { padding: 3 }],
  ["dilation 2 p2", [2, 3, 10, 9], [4, 3, 3, 3], true, { dilation: 2, padding: 2 }],
  ["dilation [1, 2] = stride 2 p1: a phase gets all its column taps or none", [1, 3, 12, 11], [5, 3, 3, 3], false, { dilation: [1, 2], stride: 2, padding: 1 }],
  ["dilation 3 stride 2 (taps step 2 in a phase)", [1, 2, 15, 13], [3, 2, 5, 3], true, { dilation: 3, stride: 2, padding: 2 }],
  ["groups 2", [2, 6, 7, 8], [10, 3, 3, 3], true, { groups: 2, padding: 1 }],
  ["groups 3, stride 2, 66 outputs per group", [1, 9, 9, 9], [198, 3, 3, 3], true, { groups: 3, stride: 2 }],
  ["depthwise 3x3 p1", [2, 5, 9, 10], [5, 1, 3, 3], true, { groups: 5, padding: 1 }],
  ["depthwise 3x3 s2 p1, batch 3", [3, 4, 11, 8], [4, 1, 3, 3], true, { groups: 4, stride: 2, padding: 1 }],
  ["depthwise 5x5 dilation 2 p4", [1, 3, 12, 9], [3, 1, 5, 5], false, { groups: 3, dilation: 2, padding: 4 }],
  ["depthwise x2 (2 outputs per channel) s2", [2, 3, 8, 7], [6, 1, 3, 3], true, { groups: 3, stride: 2 }],
  ["one input channel per group, 6 outputs each (GEMM path)", [1, 2, 8, 8], [12, 1, 3, 3], true, { groups: 2, padding: 1 }],
  ["one channel in, 20 out, 5x5 (LeNet-like)", [3, 1, 12, 12], [20, 1, 5, 5], true, {}],
  ["weight gradient split into chunks: 1200 positions", [3, 3, 20, 20], [4, 3, 3, 3], true, { padding: 1 }],
  ["weight gradient chunks, depthwise, 2 x 2304 positions", [2, 2, 48, 48], [2, 1, 3, 3], true, { groups: 2, padding: 1 }],
  ["bias gradient chunks: 4 x 48 x 48 positions", [4, 1, 48, 48], [2, 1, 1, 1], true, {}],
  ["batch 0", [0, 3, 6, 6], [4, 3, 3, 3], true, { padding: 1 }],
];
for (const [name, xs, ws, bias, attrs] of convCases)
  test(`webgpu conv2d: ${name}`, () => check("conv2d", xs, ws, bias, attrs));

// [name, input shape, weight shape [in, out/groups, kH, kW], bias, attrs]
const transposeCases = [
  ["3x3", [2, 3, 5, 6], [3, 4, 3, 3], true, {}],
  ["4x4 s2 p1 (an upsampler), 70 outputs", [1, 5, 6, 7], [5, 70, 4, 4], true, { stride: 2, padding: 1 }],
  ["3x3 s2 p1 output_padding 1, 67 inputs", [2, 67, 4, 5], [67, 3, 3, 3], true, { stride: 2, padding: 1, output_padding: 1 }],
  ["5x5 s3 p1 output_padding [2, 0]", [1, 3, 4, 5], [3, 2, 5, 5], true, { stride: 3, padding: 1, output_padding: [2, 0] }],
  ["1x1 s2 (gaps of zeros + bias)", [2, 4, 3, 4], [4, 3, 1, 1], true, { stride: 2 }],
  ["groups 2, s2", [1, 4, 5, 5], [4, 3, 3, 3], true, { stride: 2, groups: 2 }],
  ["dilation 2 p1 output_padding 1", [1, 2, 5, 4], [2, 3, 3, 3], true, { dilation: 2, padding: 1, output_padding: 1 }],
  ["depthwise s2 p1", [2, 4, 5, 6], [4, 1, 3, 3], true, { groups: 4, stride: 2, padding: 1 }],
  ["to one channel 7x7 s2 p3", [3, 6, 6, 5], [6, 1, 7, 7], false, { stride: 2, padding: 3, output_padding: 1 }],
];
for (const [name, xs, ws, bias, attrs] of transposeCases)
  test(`webgpu conv_transpose2d: ${name}`, () => check("conv_transpose2d", xs, ws, bias, attrs));

test("webgpu conv2d: without gradients the forward alone runs; a frozen weight gets none", async () => {
  const x = sn.tensor(uniformValues(2 * 3 * 6 * 6, 9), [2, 3, 6, 6]);
  const w = sn.tensor(uniformValues(4 * 3 * 3 * 3, 10), [4, 3, 3, 3]);
  const xg = x.to("webgpu").requireGrad(), wg = w.to("webgpu");
  const y = sn.conv2d(xg, wg, null, { padding: 1 });
  y.backward(sn.ones(y.shape).to("webgpu"));
  assert.ok(xg.grad, "input gradient");
  assert.is(wg.grad, null, "no weight gradient");
  const xc = x.requireGrad(), yc = sn.conv2d(xc, w, null, { padding: 1 });
  yc.backward(sn.ones(yc.shape));
  compare("dx", await xg.grad.read(), xc.grad.toArray(), 1e-4, 1e-4);
});

test("webgpu conv2d: shape errors are the CPU's, before any kernel", () => {
  const x = sn.zeros([1, 3, 8, 8]).to("webgpu"), w = sn.zeros([4, 2, 3, 3]).to("webgpu"), b = sn.zeros([3]).to("webgpu");
  assert.throws(() => sn.conv2d(x, w), /conv2d: input has 3 channels but weight expects 2/);
  const w3 = sn.zeros([4, 3, 3, 3]).to("webgpu");
  assert.throws(() => sn.conv2d(x, w3, b), /conv2d: bias \[3\] must be \[4\]/);
  assert.throws(() => sn.conv2d(x, w3, null, { padding: -1 }), /padding must be an integer >= 0/);
  assert.throws(() => sn.conv_transpose2d(x, w3.to("webgpu"), null, { stride: 2, output_padding: 2 }), /conv_transpose2d: (input has|output_padding)/);
  assert.throws(() => sn.conv2d(x, sn.zeros([4, 3, 3, 3])), /webgpu|device|cpu/i);
});

runAndExit(sn);
