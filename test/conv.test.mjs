// conv2d / conv_transpose2d / conv2d_input / conv2d_weight: clear errors before any kernel
// runs, the same bits on 1 and 2 threads, and a float64 loop on shapes larger than the fixtures
// (several position blocks, K blocks and weight-gradient ranges).
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { lcgTensor as rand, rejects } from "./helpers.mjs";

test.before(async () => {
  await sn.init({ threads: 2 });
});

test("conv2d: wrong ranks name the tensor, the layout and the shape", () => {
  const x3 = sn.zeros([3, 8, 8]), x = sn.zeros([1, 3, 8, 8]), w3 = sn.zeros([4, 3, 3]), w = sn.zeros([4, 3, 3, 3]);
  rejects(() => sn.conv2d(x3, w), /conv2d: input must be rank 4 \[N, C, H, W\], got rank 3 \[3,8,8\]/);
  rejects(() => sn.conv2d(x, w3), /conv2d: weight must be rank 4 \[out, in\/groups, kH, kW\], got rank 3 \[4,3,3\]/);
});

test("conv2d: a channel mismatch names both shapes", () => {
  const x = sn.zeros([2, 3, 8, 8]), w = sn.zeros([8, 4, 3, 3]);
  rejects(() => sn.conv2d(x, w), /conv2d: input has 3 channels but weight expects 4 \(weight \[8,4,3,3\], input \[2,3,8,8\]\)/);
  const x8 = sn.zeros([1, 8, 5, 5]), w2 = sn.zeros([6, 2, 3, 3]);
  rejects(() => sn.conv2d(x8, w2, null, { groups: 2 }), /conv2d: input has 8 channels but weight expects 4 \(weight \[6,2,3,3\], groups 2/);
});

test("conv2d: groups that do not divide the channels are errors", () => {
  const x = sn.zeros([1, 8, 5, 5]), w = sn.zeros([9, 3, 3, 3]);
  rejects(() => sn.conv2d(x, w, null, { groups: 3 }), /conv2d: groups 3 does not divide the 8 input channels \(input \[1,8,5,5\]\)/);
  const w5 = sn.zeros([5, 4, 3, 3]);
  rejects(() => sn.conv2d(x, w5, null, { groups: 2 }), /conv2d: groups 2 does not divide the 5 output channels \(weight \[5,4,3,3\]\)/);
});

test("conv2d: zero, negative and non-integer stride / padding / dilation / groups are errors", () => {
  const x = sn.zeros([1, 3, 8, 8]), w = sn.zeros([4, 3, 3, 3]);
  rejects(() => sn.conv2d(x, w, null, { stride: 0 }), /conv2d: stride must be an integer >= 1, got 0/);
  rejects(() => sn.conv2d(x, w, null, { stride: [1, -2] }), /conv2d: stride must be an integer >= 1, got -2/);
  rejects(() => sn.conv2d(x, w, null, { stride: 1.5 }), /conv2d: stride must be an integer >= 1, got 1.5/);
  rejects(() => sn.conv2d(x, w, null, { padding: -1 }), /conv2d: padding must be an integer >= 0, got -1/);
  rejects(() => sn.conv2d(x, w, null, { padding: [1, 2, 3] }), /conv2d: padding must be an int or a pair \[h, w\], got \[1, 2, 3\]/);
  rejects(() => sn.conv2d(x, w, null, { dilation: 0 }), /conv2d: dilation must be an integer >= 1, got 0/);
  rejects(() => sn.conv2d(x, w, null, { groups: 0 }), /conv2d: groups must be an integer >= 1, got 0/);
});

test("conv2d: a zero-size kernel and an output smaller than 1x1 are errors", () => {
  const x = sn.zeros([1, 3, 4, 4]), w0 = sn.zeros([4, 3, 0, 3]), w5 = sn.zeros([4, 3, 5, 5]);
  rejects(() => sn.conv2d(x, w0), /conv2d: weight \[4,3,0,3\] \[out, in\/groups, kH, kW\] has a zero size/);
  rejects(() => sn.conv2d(x, w5), /conv2d: output would be 0x0: the input 4x4 padded by 0,0 is smaller than the 5x5 \(dilated\) kernel/);
  const w3 = sn.zeros([4, 3, 3, 3]);
  rejects(() => sn.conv2d(x, w3, null, { dilation: 2 }), /output would be 0x0: .* smaller than the 5x5 \(dilated\) kernel/);
});

test("conv2d: a bias that is not one value per output channel is an error", () => {
  const x = sn.zeros([1, 3, 8, 8]), w = sn.zeros([4, 3, 3, 3]), b3 = sn.zeros([3]), b2d = sn.zeros([4, 1]);
  rejects(() => sn.conv2d(x, w, b3), /conv2d: bias \[3\] must be \[4\] \(one per output channel; weight \[4,3,3,3\]\)/);
  rejects(() => sn.conv2d(x, w, b2d), /conv2d: bias \[4,1\] must be \[4\]/);
});

test("conv_transpose2d: channel mismatch, output_padding too large, wrong bias are errors", () => {
  const x = sn.zeros([1, 3, 5, 5]), w = sn.zeros([4, 2, 3, 3]), w3 = sn.zeros([3, 2, 3, 3]), b = sn.zeros([3]);
  rejects(() => sn.conv_transpose2d(x, w), /conv_transpose2d: input has 3 channels but weight expects 4 \(weight \[4,2,3,3\] as \[in, out\/groups, kH, kW\]/);
  rejects(() => sn.conv_transpose2d(x, w3, null, { stride: 2, output_padding: 2 }), /conv_transpose2d: output_padding 2,2 must be smaller than stride 2,2 or dilation 1,1/);
  rejects(() => sn.conv_transpose2d(x, w3, b), /conv_transpose2d: bias \[3\] must be \[2\]/);
  rejects(() => sn.conv_transpose2d(x, w3, null, { padding: 4 }), /conv_transpose2d: output would be -1x-1: padding 4,4 removes more than/);
});

test("conv2d_input / conv2d_weight: a gradOut that is not the output shape is an error", () => {
  const w = sn.zeros([4, 3, 3, 3]), x = sn.zeros([2, 3, 8, 8]), g = sn.zeros([2, 4, 5, 6]);
  rejects(() => sn.conv2d_input([2, 3, 8, 8], w, g), /conv2d_input: gradOut \[2,4,5,6\] must be the output shape \[2,4,6,6\]/);
  rejects(() => sn.conv2d_weight(x, [4, 3, 3, 3], g, { padding: 1 }), /conv2d_weight: gradOut \[2,4,5,6\] must be the output shape \[2,4,8,8\]/);
  rejects(() => sn.conv2d_input([2, 5, 8, 8], w, g), /conv2d_input: input has 5 channels but weight expects 3/);
});

// ---- a float64 reference on larger shapes than the fixtures ----

function conv64(X, xs, Wt, ws, B, { stride: [sh, sw], padding: [ph, pw], dilation: [dh, dw], groups: G }) {
  const [N, C, H, Wd] = xs, [O, Cg, KH, KW] = ws, Og = O / G;
  const HO = Math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1, WO = Math.floor((Wd + 2 * pw - dw * (KW - 1) - 1) / sw) + 1;
  const y = new Float64Array(N * O * HO * WO);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / Og);
      for (let oy = 0; oy < HO; oy++)
        for (let ox = 0; ox < WO; ox++) {
          let s = B ? B[o] : 0;
          for (let c = 0; c < Cg; c++)
            for (let ky = 0; ky < KH; ky++)
              for (let kx = 0; kx < KW; kx++) {
                const iy = oy * sh - ph + ky * dh, ix = ox * sw - pw + kx * dw;
                if (iy >= 0 && iy < H && ix >= 0 && ix < Wd)
                  s += X[((n * C + g * Cg + c) * H + iy) * Wd + ix] * Wt[((o * Cg + c) * KH + ky) * KW + kx];
              }
          y[((n * O + o) * HO + oy) * WO + ox] = s;
        }
    }
  return { y, HO, WO };
}

/** The loss sum(y * R) has gradients dx, dw, db computed here by the chain rule, in float64. */
function grads64(X, xs, Wt, ws, R, attrs, HO, WO) {
  const { stride: [sh, sw], padding: [ph, pw], dilation: [dh, dw], groups: G } = attrs;
  const [N, C, H, Wd] = xs, [O, Cg, KH, KW] = ws, Og = O / G;
  const dx = new Float64Array(X.length), dW = new Float64Array(Wt.length), db = new Float64Array(O);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / Og);
      for (let oy = 0; oy < HO; oy++)
        for (let ox = 0; ox < WO; ox++) {
          const r = R[((n * O + o) * HO + oy) * WO + ox];
          db[o] += r;
          for (let c = 0; c < Cg; c++)
            for (let ky = 0; ky < KH; ky++)
              for (let kx = 0; kx < KW; kx++) {
                const iy = oy * sh - ph + ky * dh, ix = ox * sw - pw + kx * dw;
                if (iy < 0 || iy >= H || ix < 0 || ix >= Wd) continue;
                const xi = ((n * C + g * Cg + c) * H + iy) * Wd + ix, wi = ((o * Cg + c) * KH + ky) * KW + kx;
                dx[xi] += r * Wt[wi];
                dW[wi] += r * X[xi];
              }
        }
    }
  return { dx, dW, db };
}

function close(what, got, want, length) {
  const atol = 1e-5 + 1e-6 * length;
  for (let i = 0; i < want.length; i++)
    if (!(Math.abs(got[i] - want[i]) <= atol + 1e-4 * Math.abs(want[i])))
      assert.unreachable(`${what}: element ${i}: got ${got[i]}, expected ${want[i]}`);
}

const bigCases = [
  // 3 position blocks per image, K = 360 (two K blocks), 3 weight-gradient column blocks
  { xs: [2, 40, 22, 17], ws: [19, 40, 3, 3], attrs: { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 } },
  // groups, stride 2, dilation, non-square
  { xs: [3, 12, 19, 23], ws: [10, 6, 3, 2], attrs: { stride: [2, 1], padding: [2, 0], dilation: [2, 3], groups: 2 } },
  // strides 2 and 3: col2im adds runs of positions SW apart (with and without bounds checks)
  { xs: [2, 5, 21, 37], ws: [7, 5, 3, 3], attrs: { stride: [2, 3], padding: [1, 1], dilation: [1, 1], groups: 1 } },
  // 300 output channels: the input gradient sums over them in two K blocks
  { xs: [2, 4, 7, 6], ws: [300, 4, 3, 3], attrs: { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 } },
  // LeNet-like: one weight-gradient column block, so the sum over positions is split in ranges
  { xs: [16, 1, 28, 28], ws: [6, 1, 5, 5], attrs: { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 } },
  // the lecture's LeNet conv2 (padded-block path: slivers across output rows of 14)
  { xs: [3, 20, 14, 14], ws: [50, 20, 5, 5], attrs: { stride: [1, 1], padding: [2, 2], dilation: [1, 1], groups: 1 } },
  // input gradient as a forward convolution: groups of 12 channels, dilation, padding 1 of the
  // dilated kernel's reach of 4, non-square
  { xs: [2, 24, 10, 13], ws: [10, 12, 3, 3], attrs: { stride: [1, 1], padding: [1, 2], dilation: [2, 2], groups: 2 } },
  // outputs 7 wide (the narrowest of the padded-block path), dilation, rows of stride 2, groups
  { xs: [2, 6, 11, 6], ws: [4, 3, 3, 2], attrs: { stride: [2, 1], padding: [1, 2], dilation: [2, 3], groups: 2 } },
  // small maps, images side by side (src/ops/conv_small.ts): 1x1 maps where a 3x3 kernel with
  // padding 1 has one live tap (the other eight only meet padding and are left out)
  { xs: [5, 24, 1, 1], ws: [16, 24, 3, 3], attrs: { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 } },
  // stride 2 from 2x2 to 1x1: four live taps
  { xs: [4, 20, 2, 2], ws: [30, 20, 3, 3], attrs: { stride: [2, 2], padding: [1, 1], dilation: [1, 1], groups: 1 } },
  // dilation, 2x3 maps; a 5x5 kernel with padding 2 on 2x3 maps (rows 1-3 and columns 0-4 live)
  { xs: [3, 10, 4, 5], ws: [12, 10, 3, 3], attrs: { stride: [1, 1], padding: [1, 1], dilation: [2, 2], groups: 1 } },
  { xs: [3, 6, 2, 3], ws: [7, 6, 5, 5], attrs: { stride: [1, 1], padding: [2, 2], dilation: [1, 1], groups: 1 } },
  // depthwise (assembly/conv_dw.ts forward and, at stride 1, input gradient by the reversed taps;
  // assembly/conv_dw_bwd.ts weight gradient): 3x3 with nine chains, stride 2, and a 5x3 kernel
  // with dilation on the generic loop; rows not a multiple of four positions
  { xs: [3, 16, 9, 11], ws: [16, 1, 3, 3], attrs: { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 16 } },
  { xs: [2, 12, 13, 17], ws: [12, 1, 3, 3], attrs: { stride: [2, 2], padding: [1, 1], dilation: [1, 1], groups: 12 } },
  { xs: [2, 8, 15, 14], ws: [8, 1, 5, 3], attrs: { stride: [1, 1], padding: [3, 1], dilation: [2, 2], groups: 8 } },
  // depthwise with more padding than the kernel's reach: the input gradient keeps the GEMM path
  { xs: [2, 6, 7, 9], ws: [6, 1, 3, 3], attrs: { stride: [1, 1], padding: [3, 3], dilation: [1, 1], groups: 6 } },
  // stride 2, 300 output channels: the input gradient's column GEMM with two blocks of input
  // channels and two K blocks of output channels (each thread packs a block's W^T strips once
  // and keeps them for the block's next images)
  { xs: [3, 20, 9, 9], ws: [300, 20, 3, 3], attrs: { stride: [2, 2], padding: [1, 1], dilation: [1, 1], groups: 1 } },
  // stride 2 along rows on the padded-block path (rows stored as even then odd columns: the
  // forward and the weight gradient): 3x3 with odd sizes, a ResNet stem's 7x7, a 3x5 kernel
  // with stride 1 down and 2 across, groups
  { xs: [2, 6, 17, 19], ws: [9, 6, 3, 3], attrs: { stride: [2, 2], padding: [1, 1], dilation: [1, 1], groups: 1 } },
  { xs: [1, 3, 30, 30], ws: [4, 3, 7, 7], attrs: { stride: [2, 2], padding: [3, 3], dilation: [1, 1], groups: 1 } },
  { xs: [2, 4, 9, 24], ws: [5, 4, 3, 5], attrs: { stride: [1, 2], padding: [0, 2], dilation: [1, 1], groups: 1 } },
  { xs: [2, 8, 16, 16], ws: [6, 4, 3, 3], attrs: { stride: [2, 2], padding: [1, 1], dilation: [1, 1], groups: 2 } },
  // 100 images of 300 channels on 2x2 maps: two chunks of images (the weight gradient adds them)
  { xs: [100, 300, 2, 2], ws: [8, 300, 3, 3], attrs: { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 } },
];

for (const [i, c] of bigCases.entries())
  test(`conv2d ${JSON.stringify(c.xs)} * ${JSON.stringify(c.ws)} ${JSON.stringify(c.attrs)}: y, dx, dW, db match a float64 loop`, () => {
    const x = rand(c.xs, 11 + i).requireGrad(), w = rand(c.ws, 21 + i).requireGrad(), b = rand([c.ws[0]], 31 + i).requireGrad();
    const y = sn.conv2d(x, w, b, c.attrs);
    const X = x.toArray(), Wt = w.toArray(), B = b.toArray();
    const ref = conv64(X, c.xs, Wt, c.ws, B, c.attrs);
    assert.equal(y.shape, [c.xs[0], c.ws[0], ref.HO, ref.WO]);
    const K = c.ws[1] * c.ws[2] * c.ws[3];
    close("y", y.toArray(), ref.y, K);
    const r = rand(y.shape, 41 + i);
    y.backward(r);
    const g = grads64(X, c.xs, Wt, c.ws, r.toArray(), c.attrs, ref.HO, ref.WO);
    close("dx", x.grad.toArray(), g.dx, (c.ws[0] / c.attrs.groups) * c.ws[2] * c.ws[3]);
    close("dW", w.grad.toArray(), g.dW, c.xs[0] * ref.HO * ref.WO);
    close("db", b.grad.toArray(), g.db, c.xs[0] * ref.HO * ref.WO);
  });

// 4 output channels: the input-gradient kernel, starting from the bias; 12: a forward
// convolution with the flipped weights, the bias added per channel
for (const Cout of [4, 12])
  test(`conv_transpose2d stride 1 with bias, ${Cout} output channels, matches a float64 loop`, () => {
    // conv_transpose2d(x, w, b) is conv2d's input gradient for dy = x, plus b per channel
    const xs = [2, 6, 9, 10], ws = [6, Cout, 3, 3], attrs = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    const x = rand(xs, 81), w = rand(ws, 82), b = rand([Cout], 83);
    const y = sn.conv_transpose2d(x, w, b, { padding: 1 });
    const ys = [2, Cout, 9, 10];
    assert.equal(y.shape, ys);
    const ref = grads64(new Float64Array(2 * Cout * 9 * 10), ys, w.toArray(), ws, x.toArray(), attrs, 9, 10).dx;
    const B = b.toArray();
    for (let i = 0; i < ref.length; i++) ref[i] += B[Math.floor(i / 90) % Cout];
    close("y", y.toArray(), ref, 6 * 9);
  });

test("conv_transpose2d depthwise (groups = channels) with bias: the depthwise forward with reversed taps, matches a float64 loop", async () => {
  const xs = [2, 6, 9, 10], ws = [6, 1, 3, 3], attrs = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 6 };
  const x = rand(xs, 84), w = rand(ws, 85), b = rand([6], 86);
  const p = await sn.profile(() => sn.conv_transpose2d(x, w, b, { padding: 1, groups: 6 }), { peak: false });
  assert.equal(p.ops.map((o) => o.path), ["depthwise"]);
  const y = sn.conv_transpose2d(x, w, b, { padding: 1, groups: 6 });
  const ref = grads64(new Float64Array(2 * 6 * 90), xs, w.toArray(), ws, x.toArray(), attrs, 9, 10).dx;
  const B = b.toArray();
  for (let i = 0; i < ref.length; i++) ref[i] += B[Math.floor(i / 90) % 6];
  close("y", y.toArray(), ref, 9);
});

test("conv2d on an empty batch: empty output, empty input gradient, zero weight and bias gradients", () => {
  const x = sn.zeros([0, 3, 8, 8]).requireGrad(), w = rand([4, 3, 3, 3], 71).requireGrad(), b = rand([4], 72).requireGrad();
  const y = sn.conv2d(x, w, b);
  assert.equal(y.shape, [0, 4, 6, 6]);
  y.backward(sn.zeros([0, 4, 6, 6]));
  assert.equal(x.grad.shape, [0, 3, 8, 8]);
  assert.ok(w.grad.toArray().every((v) => v === 0), "dW is zero");
  assert.ok(b.grad.toArray().every((v) => v === 0), "db is zero");
});

// ---- determinism ----

function runAll() {
  const out = [];
  const bits = (t) => out.push(new Uint32Array(t.toArray().buffer));
  for (const [i, c] of bigCases.entries()) {
    const x = rand(c.xs, 11 + i).requireGrad(), w = rand(c.ws, 21 + i).requireGrad(), b = rand([c.ws[0]], 31 + i).requireGrad();
    const y = sn.conv2d(x, w, b, c.attrs);
    y.backward(rand(y.shape, 41 + i));
    [y, x.grad, w.grad, b.grad].forEach(bits);
  }
  const x = rand([2, 16, 9, 11], 51).requireGrad(), w = rand([16, 6, 4, 3], 52).requireGrad(), b = rand([12], 53).requireGrad();
  const y = sn.conv_transpose2d(x, w, b, { stride: 2, padding: 1, output_padding: 1, groups: 2 });
  y.backward(rand(y.shape, 54));
  [y, x.grad, w.grad, b.grad].forEach(bits);
  const xd = rand([2, 24, 15, 15], 61), wd = rand([24, 1, 3, 3], 62);
  bits(sn.conv2d(xd, wd, null, { groups: 24, padding: 1 }));
  return out;
}

test("conv2d (fwd, dx, dW, db), conv_transpose2d and depthwise: same bits on 1 thread and on 2 threads splitting every kernel", async () => {
  await sn.init({ threads: 1 });
  const one = runAll();
  await sn.init({ threads: 2, minParallelWork: 0 });
  const two = runAll();
  assert.is(one.length, two.length);
  one.forEach((b, i) => {
    const j = b.findIndex((v, k) => v !== two[i][k]);
    assert.is(j, -1, `result ${i}: element ${j} differs`);
  });
  await sn.init({ threads: 2 });
});

test.after(() => sn.dispose());
test.run();
