// Convolutions on small maps with the images side by side (src/ops/conv_small.ts): which
// convolutions take the path, that it leaves out only taps that meet padding alone, and its
// promises: the same forward bits as the per-image kernels where the K blocks are the same, an
// image alone or in a batch, on 1 or 2 threads. Values against float64 loops: test/conv.test.mjs's small-map cases.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { lcgTensor as rand, sameBits } from "./helpers.mjs";

test.before(async () => {
  await sn.init({ threads: 2 });
});

/** The kernel paths conv2d's forward and backward report for x * w. */
async function paths(x, w, attrs) {
  x.requireGrad();
  w.requireGrad();
  const p = await sn.profile(() => sn.conv2d(x, w, null, attrs).backward(rand([x.shape[0], w.shape[0], ...outHW(x, w, attrs)], 9)), { peak: false });
  return p.ops.filter((o) => o.op === "conv2d").map((o) => `${o.phase}: ${o.path}`).sort();
}
const outHW = (x, w, { stride = 1, padding = 0 } = {}) => [2, 3].map((i) => Math.floor((x.shape[i] + 2 * padding - w.shape[i]) / stride) + 1);

test("3x3 maps and smaller take the side-by-side path, forward and backward; larger maps and groups do not", async () => {
  const side = ["backward: im2col, images side by side", "forward: im2col, images side by side"];
  assert.equal(await paths(rand([3, 8, 3, 3], 1), rand([5, 8, 3, 3], 2), { padding: 1 }), side);
  assert.equal(await paths(rand([3, 8, 2, 2], 1), rand([5, 8, 3, 3], 2), { stride: 2, padding: 1 }), side);
  assert.equal(await paths(rand([3, 8, 4, 3], 1), rand([5, 8, 3, 3], 2), { padding: 1 }), ["backward: im2col", "forward: im2col"]);
  const x = rand([3, 8, 2, 2], 1).requireGrad(), w = rand([8, 4, 3, 3], 2).requireGrad();
  const p = await sn.profile(() => sn.conv2d(x, w, null, { padding: 1, groups: 2 }).backward(rand([3, 8, 2, 2], 3)), { peak: false });
  assert.ok(p.ops.every((o) => !o.path.includes("side by side")), "groups keep the per-image kernels");
  // engine.smallMapPositions = 0 turns the path off
  sn.engine().smallMapPositions = 0;
  try {
    assert.equal(await paths(rand([3, 8, 3, 3], 1), rand([5, 8, 3, 3], 2), { padding: 1 }), ["backward: im2col", "forward: im2col"]);
  } finally {
    sn.engine().smallMapPositions = 9;
  }
});

// exact: where every tap is live, or the taps left out do not move the K blocks' bounds (K of
// at most 256 either way: one block), each output is the same sum in the same order
const cases = [
  { what: "1x1 maps, 3x3 kernel, padding 1 (one live tap, K 216: one block)", xs: [6, 24, 1, 1], ws: [16, 24, 3, 3], attrs: { padding: 1 }, exact: true },
  { what: "2x2 to 1x1, stride 2 (four live taps, K 180: one block)", xs: [6, 20, 2, 2], ws: [30, 20, 3, 3], attrs: { stride: 2, padding: 1 }, exact: true },
  { what: "3x3 maps, every tap live", xs: [6, 32, 3, 3], ws: [40, 32, 3, 3], attrs: { padding: 1 }, exact: true },
  { what: "1x1 kernel, stride 2", xs: [6, 32, 4, 4], ws: [40, 32, 1, 1], attrs: { stride: 2 }, exact: true },
  // K 1152 in five blocks of 231 per image, 128 live in one: the blocks' partial sums are added
  // in another grouping (measured on 512 channels: 14,724 of 16,384 outputs differ, by at most
  // 2.5e-7)
  { what: "1x1 maps, 128 channels (one live tap, K 1152: the K blocks move)", xs: [6, 128, 1, 1], ws: [16, 128, 3, 3], attrs: { padding: 1 }, exact: false },
];

for (const c of cases)
  test(`${c.what}: the forward gives the per-image kernels' ${c.exact ? "bits" : "values to rounding"}, an image alone the same bits as in the batch`, () => {
    const x = rand(c.xs, 3), w = rand(c.ws, 4), b = rand([c.ws[0]], 5);
    const eng = sn.engine();
    const side = sn.conv2d(x, w, b, c.attrs).toArray();
    eng.smallMapPositions = 0;
    const perImage = sn.conv2d(x, w, b, c.attrs).toArray();
    eng.smallMapPositions = 9;
    if (c.exact) sameBits(`${c.what}: side by side vs per image`, side, perImage);
    else {
      const scale = Math.max(...perImage.map(Math.abs));
      const worst = Math.max(...side.map((v, i) => Math.abs(v - perImage[i])));
      assert.ok(worst <= 1e-6 * scale, `${c.what}: side by side vs per image: ${worst} of a scale of ${scale}`);
    }
    const per = side.length / c.xs[0];
    for (const n of [0, c.xs[0] - 1]) {
      const one = sn.tensor(x.toArray().slice((n * x.size) / c.xs[0], ((n + 1) * x.size) / c.xs[0]), [1, ...c.xs.slice(1)]);
      sameBits(`${c.what}: image ${n} alone`, sn.conv2d(one, w, b, c.attrs).toArray(), side.slice(n * per, (n + 1) * per));
    }
  });

test("the weight gradient of a tap that only meets padding is exactly 0; the live tap's is the sum of x * dy", () => {
  // 1x1 maps, 3x3 kernel, padding 1: only the centre tap (1, 1) ever meets the input
  const x = rand([7, 3, 1, 1], 6), dy = rand([7, 2, 1, 1], 7);
  const dw = sn.conv2d_weight(x, [2, 3, 3, 3], dy, { padding: 1 }).toArray();
  const X = x.toArray(), DY = dy.toArray();
  for (let o = 0; o < 2; o++)
    for (let c = 0; c < 3; c++)
      for (let t = 0; t < 9; t++) {
        const got = dw[(o * 3 + c) * 9 + t];
        if (t !== 4) assert.is(got, 0, `dw[${o}, ${c}, tap ${t}]`);
        else {
          let s = 0;
          for (let n = 0; n < 7; n++) s += X[n * 3 + c] * DY[n * 2 + o];
          assert.ok(Math.abs(got - s) <= 1e-6 * (1 + Math.abs(s)), `dw[${o}, ${c}, centre]: ${got} vs ${s}`);
        }
      }
});

test("conv_transpose2d onto small maps (its forward is the input-gradient kernel, its bias the start) matches conv2d_input plus the bias", () => {
  const x = rand([5, 12, 1, 1], 8), w = rand([12, 6, 3, 3], 9), b = rand([6], 10);
  const y = sn.conv_transpose2d(x, w, b, { padding: 1 }).toArray();
  const dx = sn.conv2d_input([5, 6, 1, 1], w, x, { padding: 1 }).toArray();
  const B = b.toArray();
  const want = dx.map((v, i) => Math.fround(B[i % 6] + v));
  sameBits("conv_transpose2d vs conv2d_input + bias", y, want);
});

test.after(() => sn.dispose());
test.run();
