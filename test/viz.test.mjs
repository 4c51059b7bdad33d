import { test } from "uvu";
import * as assert from "uvu/assert";
import { inflateSync } from "node:zlib";
import * as sn from "../dist/index.js";

function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return ~c >>> 0;
}

/** Minimal independent PNG reader: checks every chunk's CRC and inflates with zlib. */
function readPNG(png) {
  const b = Buffer.from(png);
  assert.equal([...b.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], "PNG signature");
  let p = 8, w, h, idat = [];
  while (p < b.length) {
    const len = b.readUInt32BE(p), type = b.toString("ascii", p + 4, p + 8);
    assert.is(b.readUInt32BE(p + 8 + len), crc32(b.subarray(p + 4, p + 8 + len)), `${type} CRC`);
    if (type === "IHDR") {
      w = b.readUInt32BE(p + 8);
      h = b.readUInt32BE(p + 12);
      assert.is(b[p + 16], 8);
      assert.is(b[p + 17], 6);
    } else if (type === "IDAT") idat.push(b.subarray(p + 8, p + 8 + len));
    p += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const data = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    assert.is(raw[y * (w * 4 + 1)], 0, "filter type none");
    data.set(raw.subarray(y * (w * 4 + 1) + 1, (y + 1) * (w * 4 + 1)), y * w * 4);
  }
  return { width: w, height: h, data };
}

test("encodePNG: a zlib/PNG reader gets back the same pixels (also over 65535 bytes: several deflate blocks)", () => {
  for (const [w, h] of [[3, 2], [200, 150]]) {
    const data = new Uint8Array(w * h * 4).map((_, i) => (i * 37) & 255);
    const img = readPNG(sn.viz.encodePNG({ width: w, height: h, data }));
    assert.is(img.width, w);
    assert.is(img.height, h);
    assert.equal(img.data, data);
  }
});

test("encodePNG: data not matching the size is a clear error", () => {
  assert.throws(() => sn.viz.encodePNG({ width: 2, height: 2, data: new Uint8Array(3) }), /3 bytes do not make a 2x2 RGBA image/);
});

test("filterGrid: one tile per filter, each scaled to its own range", async () => {
  await sn.init({ threads: 1 });
  const w = sn.tensor(Float32Array.from({ length: 4 * 1 * 2 * 2 }, (_, i) => i), [4, 1, 2, 2]);
  const img = sn.viz.filterGrid(w, { scale: 1, cols: 4 });
  assert.is(img.width, 4 * 3 + 1);
  assert.is(img.height, 2 + 2);
  // first filter's first pixel is its minimum (black), last pixel its maximum (white)
  const px = (x, y) => img.data[(y * img.width + x) * 4];
  assert.is(px(1, 1), 0);
  assert.is(px(2, 2), 255);
  assert.throws(() => sn.viz.filterGrid(sn.zeros([3, 3])), /rank 4/);
});

// A linear scorer score = W x on [1,1,4,4] inputs: every map has a closed form.
const W = Float32Array.from({ length: 3 * 16 }, (_, i) => Math.sin(i * 1.7) * (i % 5));
const linearModel = () => {
  const w = sn.tensor(W, [3, 16]);
  return (x) => sn.linear(sn.flatten(x), w);
};

test("saliency of a linear scorer is |W[class]| per pixel", async () => {
  await sn.init({ threads: 1 });
  const x = sn.tensor(Float32Array.from({ length: 16 }, (_, i) => i / 16), [1, 1, 4, 4]);
  const s = sn.viz.saliency(linearModel(), x, 2);
  assert.is(s.height, 4);
  for (let i = 0; i < 16; i++) assert.ok(Math.abs(s.map[i] - Math.abs(W[32 + i])) < 1e-6, `pixel ${i}: ${s.map[i]} vs ${Math.abs(W[32 + i])}`);
  assert.throws(() => sn.viz.saliency(linearModel(), x, 3), /class 3 out of range for 3 classes/);
});

test("saliency and classModel on a model: its parameters' .grad is left as it was (none computed), nothing stays allocated, and the map is a full backward's", async () => {
  await sn.init({ threads: 2 });
  sn.manualSeed(3);
  const model = sn.createModel("lenet");
  model.eval();
  const fwd = (t) => model.forward(t);
  const xs = Float32Array.from({ length: 784 }, (_, i) => Math.sin(i * 0.1));
  const x = sn.tensor(xs, [1, 1, 28, 28]);
  // the map from a backward into every tensor, then the model's gradients cleared
  const xin = sn.tensor(xs, [1, 1, 28, 28]).requireGrad();
  sn.tidy(() => {
    const scores = fwd(xin), onehot = new Float32Array(10);
    onehot[4] = 1;
    scores.backward(sn.tensor(onehot, [1, 10]));
  });
  const g = xin.grad.toArray(), want = new Float32Array(784);
  for (let i = 0; i < 784; i++) want[i] = Math.abs(g[i]);
  for (const p of model.parameters()) p.grad = null;
  // a gradient the user holds (between backward and the optimiser's step) must survive
  const p0 = model.parameters()[0];
  p0.grad = sn.keep(sn.tensor(new Float32Array(p0.size).fill(0.25), p0.shape));
  sn.viz.saliency(fwd, x, 4); // warm-up: the first call packs weights
  const live = sn.engine().memoryStats().live;
  const s = sn.viz.saliency(fwd, x, 4);
  sn.viz.classModel(fwd, [1, 1, 28, 28], 4, { steps: 3 });
  assert.is(sn.engine().memoryStats().live, live, "saliency and classModel free what they make");
  assert.ok(s.map.every((v, i) => Object.is(v, want[i])), "the map has a full backward's bits");
  assert.ok(p0.grad.toArray().every((v) => v === 0.25), "a held gradient is unchanged");
  assert.ok(model.parameters().slice(1).every((p) => p.grad === null), "no parameter gradient computed");
});

test("occlusion of a linear scorer: the drop is W[class] . (x - occluded x) for each patch", async () => {
  await sn.init({ threads: 1 });
  const xs = Float32Array.from({ length: 16 }, (_, i) => (i * 7) % 5 / 4);
  const x = sn.tensor(xs, [1, 1, 4, 4]);
  const r = sn.viz.occlusion(linearModel(), x, 1, { patch: 2, stride: 2, value: 0.5 });
  assert.is(r.height, 2);
  assert.is(r.width, 2);
  for (let py = 0; py < 2; py++)
    for (let px = 0; px < 2; px++) {
      let want = 0;
      for (let y = py * 2; y < py * 2 + 2; y++) for (let xx = px * 2; xx < px * 2 + 2; xx++) want += W[16 + y * 4 + xx] * (xs[y * 4 + xx] - 0.5);
      assert.ok(Math.abs(r.map[py * 2 + px] - want) < 1e-5, `patch ${py},${px}: ${r.map[py * 2 + px]} vs ${want}`);
    }
});

test("class model of a linear scorer with an L2 regulariser converges to W[class] / (2 l2)", async () => {
  await sn.init({ threads: 1 });
  const l2 = 0.5;
  const img = sn.viz.classModel(linearModel(), [1, 1, 4, 4], 0, { steps: 200, lr: 0.2, l2 });
  for (let i = 0; i < 16; i++) assert.ok(Math.abs(img[i] - W[i] / (2 * l2)) < 1e-4, `pixel ${i}: ${img[i]} vs ${W[i] / (2 * l2)}`);
});

test("activationGrid and heatImage make one tile per channel / one heat map", async () => {
  await sn.init({ threads: 1 });
  const img = sn.viz.activationGrid(sn.tensor(Float32Array.from({ length: 2 * 3 * 3 }, (_, i) => i), [1, 2, 3, 3]), { scale: 1, cols: 2 });
  assert.is(img.width, 2 * 4 + 1);
  assert.is(img.height, 3 + 2);
  const h = sn.viz.heatImage({ map: Float32Array.from([0, 1]), height: 1, width: 2 }, 1);
  assert.equal([...h.data.slice(0, 4)], [0, 0, 0, 255]); // minimum: black
  assert.equal([...h.data.slice(4, 8)], [255, 255, 255, 255]); // maximum: white
});

test.after(() => sn.dispose());
test.run();
