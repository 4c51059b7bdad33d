// The forward convolution splits its work by the thread count (src/ops/conv.ts forwardSplit):
// one image's small maps by output-channel row blocks too, and few position blocks into more
// so that the threads get as many each. The split changes no sum, so one image alone must give
// the same bits as the same image inside a batch (where the positions give items enough and
// nothing is split further), on 1, 2 and 4 threads; PyTorch fixtures with row blocks are in
// cases_conv.py ("row blocks ...").
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as lib from "../dist/index.js";

function pseudo(shape, seed) {
  let a = (seed * 2654435761) >>> 0;
  const n = shape.reduce((p, q) => p * q, 1), d = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    d[i] = a / 2 ** 32 - 0.5;
  }
  return d;
}

const shapes = [
  // [C, H, W, O, k, padding, groups]: ResNet-18's last stages at batch 1, and odd ones
  [64, 7, 7, 192, 3, 1, 1],
  [32, 14, 14, 256, 3, 1, 1],
  [24, 5, 9, 200, 1, 0, 1],
  [16, 7, 7, 384, 3, 1, 2],
  [4, 56, 56, 8, 3, 1, 1], // 13 position blocks: 14 on 2 and 4 threads
  [3, 23, 23, 4, 5, 2, 1], // 67 slivers, 3 blocks: 4 on 2 and 4 threads
];

for (const threads of [1, 2, 4]) {
  test(`conv2d: one image alone = the same image in a batch of 16, bit for bit (${threads} thread(s))`, async () => {
    await lib.init({ threads });
    for (const [C, H, W, O, k, padding, groups] of shapes) {
      const N = 16, one = C * H * W;
      const xb = pseudo([N, C, H, W], 1), wd = pseudo([O, C / groups, k, k], 2), bd = pseudo([O], 3);
      const w = lib.tensor(wd, [O, C / groups, k, k]), b = lib.tensor(bd, [O]);
      const batch = lib.conv2d(lib.tensor(xb, [N, C, H, W]), w, b, { padding, groups }).toArray();
      const per = batch.length / N;
      for (const n of [0, 5, 15]) {
        const y = lib.conv2d(lib.tensor(xb.slice(n * one, (n + 1) * one), [1, C, H, W]), w, b, { padding, groups }).toArray();
        const ref = batch.slice(n * per, (n + 1) * per);
        let diff = 0;
        for (let i = 0; i < per; i++) if (Object.is(y[i], ref[i]) === false) diff++;
        assert.is(diff, 0, `[1,${C},${H},${W}] -> ${O} ${k}x${k} groups ${groups}, image ${n}: ${diff} elements differ`);
      }
    }
    lib.dispose();
  });
}

// Depthwise convolutions (groups = channels = outputs, stride 1 or 2 along rows) have a kernel of
// their own (assembly/conv_dw.ts) that promises the GEMM path's bits: each channel alone, as a
// conv2d with a second (zero) output channel, goes through the GEMM path and must give the same
// bits.
const dwShapes = [
  // [N, C, H, W, k, {stride, padding, dilation}, bias]
  [2, 5, 9, 11, 3, { padding: 1 }, true],
  [1, 3, 14, 13, 5, { padding: 2 }, false],
  [1, 4, 12, 10, 3, { padding: 2, dilation: 2 }, true],
  [2, 3, 11, 9, 3, { stride: [2, 1], padding: 1 }, true],
  [1, 2, 7, 6, [3, 1], { padding: [1, 0] }, false],
  [1, 3, 5, 5, 3, {}, true],
  [2, 4, 13, 15, 3, { stride: 2, padding: 1 }, true],
  [1, 3, 40, 37, 3, { stride: [1, 2], padding: 1 }, false],
  [1, 2, 11, 12, 5, { stride: 2, padding: 2, dilation: [1, 2] }, true],
];
for (const threads of [1, 2]) {
  test(`depthwise conv2d = each channel as its own conv2d, bit for bit (${threads} thread(s))`, async () => {
    await lib.init({ threads });
    for (const [N, C, H, W, k, opts, withBias] of dwShapes) {
      const [kh, kw] = Array.isArray(k) ? k : [k, k];
      const xd = pseudo([N, C, H, W], 4), wd = pseudo([C, 1, kh, kw], 5), bd = pseudo([C], 6);
      // zeros and negative zeros in the input: their products must round the same way too
      for (let i = 0; i < xd.length; i += 7) xd[i] = i % 2 ? -0 : 0;
      const y = lib.conv2d(lib.tensor(xd, [N, C, H, W]), lib.tensor(wd, [C, 1, kh, kw]), withBias ? lib.tensor(bd, [C]) : null, { ...opts, groups: C });
      const [, , HO, WO] = y.shape, got = y.toArray();
      for (let n = 0; n < N; n++)
        for (let c = 0; c < C; c++) {
          const xc = xd.slice((n * C + c) * H * W, (n * C + c + 1) * H * W);
          // two output channels (the second all zero), so that this conv is not depthwise itself
          const w2 = new Float32Array(2 * kh * kw);
          w2.set(wd.slice(c * kh * kw, (c + 1) * kh * kw));
          const one = lib.conv2d(lib.tensor(xc, [1, 1, H, W]), lib.tensor(w2, [2, 1, kh, kw]), withBias ? lib.tensor([bd[c], 0], [2]) : null, opts).toArray().slice(0, HO * WO);
          const mine = got.slice((n * C + c) * HO * WO, (n * C + c + 1) * HO * WO);
          let diff = 0;
          for (let i = 0; i < one.length; i++) if (!Object.is(mine[i], one[i])) diff++;
          assert.is(diff, 0, `[${N},${C},${H},${W}] k ${k} ${JSON.stringify(opts)}: image ${n} channel ${c}: ${diff} elements differ`);
        }
    }
    lib.dispose();
  });
}

test.run();
