// Segmentation: cross_entropy over score maps [N, C, H, W] against class maps [N, H, W] (PyTorch
// fixtures for it are in cases_loss.py; here: its agreement with the rows' kernel, ignore_index,
// errors), and a U-Net from the zoo learning a per-pixel task on real images with the explicit
// loop: which pixels of a noisy MNIST digit are ink.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { compare, rejects, uniformValues, sameBits } from "./helpers.mjs";

await sn.init({ threads: 2 });

/** [N, C, H, W] -> [N*H*W, C] rows (the same logits, one row per pixel) */
function mapsToRows(x, [N, C, H, W]) {
  const P = H * W, rows = new Float32Array(N * P * C);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let p = 0; p < P; p++) rows[(n * P + p) * C + c] = x[(n * C + c) * P + p];
  return rows;
}

function labelsFor(count, C, seed) {
  return Float32Array.from(uniformValues(count, seed, 0, C), (v) => Math.min(C - 1, Math.floor(v)));
}

for (const reduction of ["mean", "sum", "none"])
  test(`cross_entropy on score maps = the rows' kernel on each pixel's logits (${reduction})`, () => {
    const shape = [3, 5, 6, 7], [N, C, H, W] = shape; // 42 positions: groups of four and a tail of two
    const xd = uniformValues(N * C * H * W, 1, -4, 4), td = labelsFor(N * H * W, C, 2);
    const x = sn.tensor(xd, shape).requireGrad(), xr = sn.tensor(mapsToRows(xd, shape), [N * H * W, C]).requireGrad();
    const maps = sn.cross_entropy(x, sn.tensor(td, [N, H, W]), { reduction });
    const rows = sn.cross_entropy(xr, sn.tensor(td, [N * H * W]), { reduction });
    assert.equal(maps.shape, reduction === "none" ? [N, H, W] : []);
    compare("loss", maps.toArray(), rows.toArray(), 1e-6, 1e-6);
    (reduction === "none" ? sn.sum(maps) : maps).backward();
    (reduction === "none" ? sn.sum(rows) : rows).backward();
    compare("gradient", mapsToRows(x.grad.toArray(), shape), xr.grad.toArray(), 1e-5, 1e-8);
  });

test("cross_entropy: ignore_index pixels add nothing, have no gradient and do not count in the mean", () => {
  const shape = [2, 3, 4, 4], [N, C, H, W] = shape;
  const xd = uniformValues(N * C * H * W, 3, -2, 2), td = labelsFor(N * H * W, C, 4);
  const ignored = new Set([0, 5, 6, 17, 31]);
  const tIgn = td.map((v, i) => (ignored.has(i) ? 255 : v));
  const x = sn.tensor(xd, shape).requireGrad();
  const loss = sn.cross_entropy(x, sn.tensor(tIgn, [N, H, W]), { ignore_index: 255 });
  const per = sn.cross_entropy(sn.tensor(xd, shape), sn.tensor(td, [N, H, W]), { reduction: "none" }).toArray();
  let sum = 0;
  for (let i = 0; i < per.length; i++) if (!ignored.has(i)) sum += per[i];
  compare("mean over the counted pixels", [loss.item()], [sum / (per.length - ignored.size)], 1e-6, 1e-7);
  loss.backward();
  const g = x.grad.toArray(), P = H * W;
  for (const i of ignored) {
    const n = Math.floor(i / P), p = i % P;
    for (let c = 0; c < C; c++) assert.is(g[(n * C + c) * P + p], 0, `pixel ${i} class ${c}`);
  }
  // all ignored: the mean is 0/0, as PyTorch's
  assert.ok(Number.isNaN(sn.cross_entropy(sn.tensor(xd, shape), sn.tensor(new Float32Array(N * H * W).fill(-100), [N, H, W])).item()));
});

test("cross_entropy on maps: a target map of the wrong shape or a bad class names both shapes", () => {
  const x = sn.zeros([2, 3, 4, 4]), t245 = sn.zeros([2, 4, 5]), t216 = sn.zeros([2, 16]), t244 = sn.zeros([2, 4, 4]), v5 = sn.zeros([5]);
  const bad = new Float32Array(32);
  bad[9] = 3;
  const tBad = sn.tensor(bad, [2, 4, 4]);
  rejects(() => sn.cross_entropy(x, t245), /cross_entropy: target \[2,\s?4,\s?5\] does not match input \[2,\s?3,\s?4,\s?4\]: expected class indices of shape \[2,\s?4,\s?4\]/);
  rejects(() => sn.cross_entropy(x, t216), /target \[2,\s?16\] does not match input/);
  rejects(() => sn.cross_entropy(x, tBad), /cross_entropy: target\[9\] = 3 is not a class index in \[0, 3\) or ignore_index -100 \(input \[2,\s?3,\s?4,\s?4\]\)/);
  rejects(() => sn.cross_entropy(x, t244, { ignore_index: 0.5 }), /ignore_index must be an integer/);
  rejects(() => sn.cross_entropy(v5, v5), /cross_entropy: input must be \[N, C\] logits or \[N, C, d1, \.\.\.\] score maps, got \[5\]/);
});

/** MNIST digits padded to 32x32, with noise uniform in [-noise, noise) added, and per-pixel
 *  classes of the clean image: 1 where its ink is >= 0.5, else 0. */
function noisyInk(ds, count, noise, seed) {
  const S = 32, off = 2, n = Math.min(count, ds.length);
  const x = uniformValues(n * S * S, seed, -noise, noise), t = new Float32Array(n * S * S);
  for (let i = 0; i < n; i++) {
    const img = ds.get(i).x;
    for (let r = 0; r < 28; r++)
      for (let c = 0; c < 28; c++) {
        const v = img[r * 28 + c], q = (i * S + r + off) * S + c + off;
        x[q] += v;
        t[q] = v >= 0.5 ? 1 : 0;
      }
  }
  return { x, t, n, S };
}

/** Intersection over union of the ink class: predicted ink (score 1 > score 0, or x >= 0.5 for
 *  the thresholding baseline) against the true ink. */
function inkIoU(isInk, t) {
  let inter = 0, union = 0;
  for (let i = 0; i < t.length; i++) {
    const p = isInk(i), w = t[i] === 1;
    if (p && w) inter++;
    if (p || w) union++;
  }
  return inter / union;
}

test("a U-Net from the zoo learns to segment noisy MNIST digits (ink or not per pixel) with the explicit loop, beating a threshold", async () => {
  const { train, test: held } = await sn.loadMnistDigits();
  const NOISE = 0.8;
  const tr = noisyInk(train, 512, NOISE, 1), te = noisyInk(held, 128, NOISE, 2), S = tr.S, P = S * S;
  sn.manualSeed(0);
  const net = sn.models.unet({ classes: 2, inChannels: 1, inputSize: S, depth: 2, width: 8, batchNorm: true });
  const opt = new sn.Adam(net.parameters(), { lr: 0.01 });
  const B = 32;
  const heldOut = () => sn.noGrad(() => sn.tidy(() => {
    net.eval();
    const out = net.forward(sn.tensor(te.x, [te.n, 1, S, S]));
    const loss = sn.cross_entropy(out, sn.tensor(te.t, [te.n, S, S])).item();
    const s = out.toArray();
    const iou = inkIoU((i) => s[(Math.floor(i / P) * 2 + 1) * P + (i % P)] > s[Math.floor(i / P) * 2 * P + (i % P)], te.t);
    net.train();
    return { loss, iou };
  }));
  const before = heldOut();
  for (let epoch = 0; epoch < 3; epoch++)
    for (let i = 0; i + B <= tr.n; i += B)
      sn.tidy(() => {
        opt.zeroGrad();
        const out = net.forward(sn.tensor(tr.x.subarray(i * P, (i + B) * P), [B, 1, S, S]));
        sn.cross_entropy(out, sn.tensor(tr.t.subarray(i * P, (i + B) * P), [B, S, S])).backward();
        opt.step();
      });
  const after = heldOut();
  const threshold = inkIoU((i) => te.x[i] >= 0.5, te.t);
  assert.ok(after.loss < before.loss / 3, `held-out pixel loss ${before.loss.toFixed(3)} -> ${after.loss.toFixed(3)}`);
  // seen: 0.82 -> 0.07, IoU 0.79 against the threshold's 0.29 (the net uses the neighbourhood)
  assert.ok(after.iou > Math.max(0.6, threshold + 0.3), `held-out ink IoU ${after.iou.toFixed(3)}; thresholding the noisy image at 0.5: ${threshold.toFixed(3)}`);
});

// ---- FCN-32s / 16s / 8s (Long et al. 2015) ----

test("FCN-32s/16s/8s: parameter counts are VGG-16's convolutions plus the heads', shapes, clear errors", () => {
  const VGG16_FEATURES = 14714688; // torchvision's vgg16().features
  const K = 21, fc = 512 * 4096 * 49 + 4096 + 4096 * 4096 + 4096 + 4096 * K + K;
  const up = (f) => K * K * 4 * f * f, skip = (c) => c * K + K;
  const want = { fcn32s: up(32), fcn16s: skip(512) + up(2) + up(16), fcn8s: skip(512) + skip(256) + up(2) + up(2) + up(8) };
  for (const [name, heads] of Object.entries(want)) {
    const m = sn.createModel(name);
    const count = m.parameters().reduce((a, p) => a + p.size, 0);
    assert.is(count, VGG16_FEATURES + fc + heads, name);
    assert.equal(m.outputShape([1, 3, 224, 224]), [1, 21, 224, 224], name);
    assert.equal(m.outputShape([2, 3, 96, 160]), [2, 21, 96, 160], name);
    assert.throws(() => m.outputShape([1, 3, 100, 100]), /multiples of 32/);
    assert.ok(m.namedParameters().some(([n]) => n === "features.0.weight"), "torchvision's VGG names for the convolutions");
    m.dispose();
  }
  assert.throws(() => sn.models.fcn8s({ inputSize: 100 }), /fcn8s: inputSize must be a multiple of 32/);
  assert.throws(() => sn.models.fcn8s({ clases: 3 }), /clases/);
});

test("FCN upsampling starts as bilinear interpolation: the transposed conv = interpolate(bilinear) away from the border", () => {
  const C = 3, H = 6, W = 5;
  for (const f of [2, 8]) {
    const x = sn.tensor(uniformValues(C * H * W, 7 + f), [1, C, H, W]);
    const w = sn.tensor(sn.models.bilinearKernel(C, 2 * f), [C, C, 2 * f, 2 * f]);
    const up = sn.conv_transpose2d(x, w, null, { stride: f, padding: f / 2 }).toArray();
    const ref = sn.interpolate(x, { scale_factor: f, mode: "bilinear", align_corners: false }).toArray();
    // rows/columns within f/2 of the border see the transposed conv's zero padding instead of
    // interpolate's edge clamping
    const HO = H * f, WO = W * f, m = f / 2;
    const got = [], want = [];
    for (let c = 0; c < C; c++)
      for (let i = m; i < HO - m; i++)
        for (let j = m; j < WO - m; j++) {
          got.push(up[(c * HO + i) * WO + j]);
          want.push(ref[(c * HO + i) * WO + j]);
        }
    compare(`x${f}`, got, want, 1e-5, 1e-6);
  }
});

test("FCN-8s: config round trip gives the same outputs; training on noisy MNIST digits lowers the pixel loss", async () => {
  sn.manualSeed(3);
  const net = sn.models.fcn8s({ classes: 2, inChannels: 1, inputSize: 32, config: "A", batchNorm: true, hidden: 64 });
  const copy = sn.modelFromConfig(JSON.parse(JSON.stringify(sn.modelConfig(net))));
  copy.loadStateDict(net.stateDict());
  net.eval();
  copy.eval();
  const probe = sn.tensor(uniformValues(2 * 32 * 32, 9), [2, 1, 32, 32]);
  assert.equal(copy.forward(probe).toArray(), net.forward(probe).toArray());
  assert.is(copy.type, "FCNSegmenter");
  net.train();
  const { train } = await sn.loadMnistDigits();
  const tr = noisyInk(train, 256, 0.8, 5), S = tr.S, P = S * S, B = 32;
  const opt = new sn.Adam(net.parameters(), { lr: 0.003 });
  const lossAt = (i) => sn.cross_entropy(net.forward(sn.tensor(tr.x.subarray(i * P, (i + B) * P), [B, 1, S, S])), sn.tensor(tr.t.subarray(i * P, (i + B) * P), [B, S, S]));
  const first = sn.noGrad(() => sn.tidy(() => lossAt(0).item()));
  let last = 0;
  for (let epoch = 0; epoch < 2; epoch++)
    for (let i = 0; i + B <= tr.n; i += B)
      last = sn.tidy(() => {
        opt.zeroGrad();
        const l = lossAt(i);
        l.backward();
        opt.step();
        return l.item();
      });
  // seen: 0.68 -> 0.20 (the same bits on any machine and thread count)
  assert.ok(last < first / 2.5, `pixel loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
});

// ---- fit() / evaluate() on a segmentation Dataset (a class per pixel) ----

/** noisyInk's images and masks as a segmentation Dataset */
function inkDataset(ds, count, noise, seed, classes = ["background", "ink"]) {
  const r = noisyInk(ds, count, noise, seed);
  return { ...r, data: sn.Dataset.segmentation(r.x, [r.n, 1, r.S, r.S], r.t, classes) };
}

async function throwsAsync(fn, re) {
  try {
    await fn();
  } catch (e) {
    assert.match(e.message, re);
    return;
  }
  assert.unreachable(`no error; expected ${re}`);
}

const smallUnet = (seed) => {
  sn.manualSeed(seed);
  return sn.models.unet({ classes: 2, inChannels: 1, inputSize: 32, depth: 2, width: 8, batchNorm: true });
};

test("fit() trains a U-Net on a segmentation Dataset (flips and shifts move the masks too); validation pixel accuracy and IoU beat a threshold", async () => {
  const { train, test: held } = await sn.loadMnistDigits();
  const tr = inkDataset(train, 384, 0.8, 11), te = inkDataset(held, 128, 0.8, 12), P = 32 * 32;
  const net = smallUnet(0);
  const r = await sn.fit(net, tr.data, { epochs: 2, batchSize: 32, optimizer: "adam", lr: 0.01, seed: 1, validation: te.data, augment: [sn.data.horizontalFlip(), sn.data.shift(2)] });
  const last = r.history.at(-1);
  assert.equal(Object.keys(last).filter((k) => /top|miou|loss/.test(k)).sort(), ["loss", "miou", "top1", "top5", "val_loss", "val_miou", "val_top1", "val_top5"]);
  assert.is(last.val_top5, 1, "two classes: every pixel's class is among its 5 highest scores");
  // the thresholding baseline: ink where the noisy image is >= 0.5
  let thrHits = 0;
  for (let i = 0; i < te.t.length; i++) if ((te.x[i] >= 0.5 ? 1 : 0) === te.t[i]) thrHits++;
  const thrAcc = thrHits / te.t.length, thrInk = inkIoU((i) => te.x[i] >= 0.5, te.t);
  const thrBack = inkIoU((i) => te.x[i] < 0.5, te.t.map((v) => 1 - v));
  // seen: pixel accuracy 0.966 against 0.797, mean IoU 0.858 against 0.532, ink IoU 0.754 against 0.286
  assert.ok(last.val_top1 > thrAcc + 0.12, `validation pixel accuracy ${last.val_top1.toFixed(3)}; threshold ${thrAcc.toFixed(3)}`);
  assert.ok(last.val_miou > (thrInk + thrBack) / 2 + 0.25, `validation mean IoU ${last.val_miou.toFixed(3)}; threshold ${((thrInk + thrBack) / 2).toFixed(3)}`);
  assert.ok(last.loss < r.history[0].loss && last.top1 > 0.9);
  // evaluate() gives the same numbers, and they are what the outputs say
  const ev = sn.evaluate(net, te.data);
  assert.equal([ev.loss, ev.top1, ev.miou], [last.val_loss, last.val_top1, last.val_miou]);
  assert.equal([ev.n, ev.pixels, ev.iou.length], [128, 128 * P, 2]);
  const s = sn.noGrad(() => sn.tidy(() => {
    net.eval();
    const out = net.forward(sn.tensor(te.x, [te.n, 1, 32, 32])).toArray();
    net.train();
    return out;
  }));
  const ink = (i) => s[(Math.floor(i / P) * 2 + 1) * P + (i % P)] > s[Math.floor(i / P) * 2 * P + (i % P)];
  let hits = 0;
  for (let i = 0; i < te.t.length; i++) if ((ink(i) ? 1 : 0) === te.t[i]) hits++;
  compare("pixel accuracy and ink IoU", [ev.top1, ev.iou[1]], [hits / te.t.length, inkIoU(ink, te.t)], 1e-9, 1e-9);
  assert.ok(ev.iou[1] > Math.max(0.6, thrInk + 0.3), `ink IoU ${ev.iou[1].toFixed(3)}; threshold ${thrInk.toFixed(3)}`);
});

test("fit() on a segmentation Dataset: 2 epochs + 1 resumed from the checkpoint give the same bits as 3 epochs in one run", async () => {
  const { mkdtempSync, rmSync } = await import("node:fs"), { tmpdir } = await import("node:os"), { join } = await import("node:path");
  const { train } = await sn.loadMnistDigits();
  const tr = inkDataset(train, 48, 0.8, 21), va = inkDataset(train.slice(48, 64), 16, 0.8, 22);
  const dir = mkdtempSync(join(tmpdir(), "segckpt-"));
  try {
    const run = async (epochs, checkpoint) => {
      const net = smallUnet(7);
      const augment = [sn.data.randomCrop(32, { padding: 2 }), sn.data.horizontalFlip(), sn.data.rotation(10), sn.data.colorJitter({ brightness: 0.2, clamp: [-1, 2] })];
      let ran = 0;
      const callbacks = { onEpochEnd: () => void ran++ };
      const r = await sn.fit(net, tr.data, { epochs, batchSize: 16, optimizer: "adam", lr: 0.01, seed: 3, validation: va.data, augment, checkpoint, resume: !!checkpoint, callbacks });
      return { net, r, ran };
    };
    const full = await run(3);
    const path = join(dir, "seg.safetensors");
    await run(2, path);
    const resumed = await run(3, path);
    assert.is(resumed.ran, 1, "the resumed run trains the third epoch only");
    for (const [n, t] of full.net.stateDict()) sameBits(n, resumed.net.stateDict().get(n).data, t.data);
    for (const k of ["loss", "top1", "miou", "val_loss", "val_top1", "val_miou"]) assert.equal(resumed.r.history.map((h) => h[k]), full.r.history.map((h) => h[k]), k);
    assert.ok(full.r.history.every((h) => h.miou > 0 && h.val_miou > 0));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("fit() on a segmentation Dataset: memory stays flat across epochs (training, augmentation, validation)", async () => {
  const { train } = await sn.loadMnistDigits();
  const tr = inkDataset(train, 64, 0.8, 31), va = inkDataset(train.slice(64, 96), 32, 0.8, 32);
  const reserved = [];
  await sn.fit(smallUnet(1), tr.data, {
    epochs: 3,
    batchSize: 16,
    optimizer: "adam",
    validation: va.data,
    augment: [sn.data.shift(2), sn.data.rotation(5)],
    callbacks: { onBatchEnd: () => reserved.push(sn.engine().memoryStats().reserved) },
  });
  assert.is(reserved.length, 12);
  assert.is(reserved[11], reserved[2], `reserved bytes per step: ${reserved.join(", ")}`);
});

test("segmentation data: bad masks, a classifier's output, mixed targets and an unlabelled batch are clear errors", async () => {
  const S = 8, n = 4, x = uniformValues(n * S * S, 41, 0, 1), masks = Int32Array.from(x, (v) => (v > 0.5 ? 1 : 0));
  rejects(() => sn.Dataset.segmentation(x, [n, 1, S, S], masks.subarray(1)), /per-pixel targets for 4 images of 8x8 need 256 values \(4x8x8\), got 255/);
  rejects(() => new sn.Dataset(x, [n, 1, S, S], new Int32Array(100)), /4 images but 100 labels: give one class per image \(4 values\) or a class per pixel \(256 values, 4x8x8\)/);
  const bad = masks.slice();
  bad[70] = 2;
  rejects(() => sn.Dataset.segmentation(x, [n, 1, S, S], bad, 2), /mask value at image 1, row 0, column 6 is 2, out of range for 2 classes/);
  const seg = sn.Dataset.segmentation(x, [n, 1, S, S], masks, 2);
  sn.manualSeed(0);
  const classifier = sn.nn.sequential(new sn.nn.Flatten(), new sn.nn.Linear(S * S, 2));
  await throwsAsync(() => sn.fit(classifier, seg, { batchSize: 4 }), /fit: the data set has a class per pixel \(targets \[4,\s?8,\s?8\]\) but the model's output is \[4,\s?2\]; a segmentation model gives score maps \[4, classes, 8, 8\]/);
  rejects(() => sn.evaluate(classifier, seg), /evaluate: the data set has a class per pixel/);
  const labels = new sn.Dataset(x, [n, 1, S, S], Int32Array.from([0, 1, 0, 1]));
  const conv = () => (sn.manualSeed(0), sn.nn.sequential(new sn.nn.Conv2d(1, 2, 3, { padding: 1 })));
  await throwsAsync(() => sn.fit(conv(), seg, { validation: labels }), /fit: the training data has a class per pixel but the validation data one label per image/);
  await throwsAsync(() => sn.fit(classifier, labels, { metrics: ["loss", "miou"] }), /metric "miou" needs per-pixel targets/);
  // more classes in the masks than the net gives
  await throwsAsync(() => sn.fit(conv(), sn.Dataset.segmentation(x, [n, 1, S, S], bad, 3), { batchSize: 4 }), /cross_entropy: target\[\d+\] = 2 is not a class index in \[0, 2\)/);
  // every pixel of a batch unlabelled: the mean loss would be 0/0
  const none = sn.Dataset.segmentation(x, [n, 1, S, S], new Int32Array(n * S * S).fill(255), 2, { ignoreIndex: 255 });
  await throwsAsync(() => sn.fit(conv(), none, { batchSize: 2 }), /fit: batch 1 of epoch 1 has no labelled pixel \(every mask value is the ignore index 255\)/);
  // ignoreIndex reaches the default loss and the metrics: ignored pixels count nowhere
  const half = masks.map((v, i) => (i % 2 ? 255 : v));
  const net = conv();
  const a = sn.evaluate(net, sn.Dataset.segmentation(x, [n, 1, S, S], half, 2, { ignoreIndex: 255 }));
  assert.is(a.pixels, n * S * S / 2);
  const out = sn.noGrad(() => net.forward(sn.tensor(x, [n, 1, S, S])));
  const want = sn.cross_entropy(out, sn.tensor(Float32Array.from(half), [n, S, S]), { ignore_index: 255 }).item();
  compare("loss over the labelled pixels", [a.loss], [want], 1e-6, 1e-7);
});

test.after(() => sn.dispose());
test.run();
