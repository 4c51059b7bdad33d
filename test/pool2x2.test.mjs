// max_pool2d with 2x2 windows, stride 2 (the fast path of assembly/pool2x2.ts): values and
// gradients bit for bit against PyTorch's scan written out here (window in order (0,0), (0,1),
// (1,0), (1,1); a value takes over when val > max || isnan(val); the gradient 0 + dy at the
// argmax), with ties, signed zeros, infinities and NaN, odd sizes (rows and columns no window
// covers, rows of outputs not a multiple of four), on one thread and on two.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";

/** Values from a small set, so windows have ties; special values where asked. */
function values(n, seed, special) {
  const pool = special ? [1, 2, 2, 0, -0, -1, Infinity, -Infinity, NaN] : [0.5, 1, 1, -1, 2, 0, -0, 3];
  let s = seed >>> 0;
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = pool[s % pool.length];
  }
  return v;
}

function reference(X, dY, [N, C, H, W]) {
  const OH = Math.floor(H / 2), OW = Math.floor(W / 2);
  const y = new Float32Array(N * C * OH * OW), dx = new Float32Array(X.length);
  for (let p = 0; p < N * C; p++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) {
        let m = -Infinity, arg = p * H * W + 2 * oh * W + 2 * ow;
        for (const [r, c] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
          const i = p * H * W + (2 * oh + r) * W + 2 * ow + c;
          if (X[i] > m || Number.isNaN(X[i])) {
            m = X[i];
            arg = i;
          }
        }
        const o = (p * OH + oh) * OW + ow;
        y[o] = m;
        dx[arg] = Math.fround(0 + dY[o]);
      }
  return { y, dx, OH, OW };
}

const bitsOf = (a) => new Uint32Array(Float32Array.from(a).buffer);
function sameBits(what, got, want) {
  const g = bitsOf(got), w = bitsOf(want);
  assert.is(g.length, w.length, `${what}: length`);
  for (let i = 0; i < w.length; i++) {
    // NaN payloads may differ; any NaN matches any NaN
    if (Number.isNaN(want[i]) && Number.isNaN(got[i])) continue;
    if (g[i] !== w[i]) assert.unreachable(`${what}: element ${i}: got ${got[i]} (0x${g[i].toString(16)}), expected ${want[i]} (0x${w[i].toString(16)})`);
  }
}

const shapes = [
  [2, 3, 8, 8],
  [3, 5, 9, 11], // a row and a column no window covers, 5 outputs per row
  [1, 7, 28, 28], // LeNet's first pool, 14 outputs per row
  [2, 2, 3, 2], // one output per row
];

for (const threads of [1, 2])
  for (const special of [false, true])
    for (const shape of shapes)
      test(`max_pool2d 2x2 s2 ${JSON.stringify(shape)}${special ? " with ±0, ±Infinity and NaN" : " with ties"}, ${threads} thread(s): values and gradient match PyTorch's scan`, async () => {
        if (sn.engine().threads !== threads) await sn.init({ threads, minParallelWork: 0 });
        const n = shape.reduce((a, b) => a * b, 1);
        const X = values(n, 7 + n, special);
        const x = sn.tensor(X, shape).requireGrad();
        const y = sn.max_pool2d(x, { kernel_size: 2 });
        const dY = values(y.size, 11 + n, false);
        const ref = reference(X, dY, shape);
        assert.equal(y.shape, [shape[0], shape[1], ref.OH, ref.OW]);
        sameBits("y", y.toArray(), ref.y);
        y.backward(sn.tensor(dY, y.shape));
        sameBits("dx", x.grad.toArray(), ref.dx);
      });

test.before(async () => {
  await sn.init({ threads: 1, minParallelWork: 0 });
});

test.run();
