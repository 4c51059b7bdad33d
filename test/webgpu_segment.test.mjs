// Per-pixel metrics on webgpu (wgsl/metrics.wgsl pixel_ranks / pixel_counts): evaluateAsync on
// the GPU counts pixel accuracy, top-5, and the per-class counts behind IoU exactly as evaluate()
// on the CPU (scores with exact ties, -Infinity and ignored pixels); fit() trains a segmentation
// net on webgpu with those metrics and follows the CPU run; bad labels are clear errors there too.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { initGpu, runAndExit } from "./gpu_helpers.mjs";
import { fuzzRng } from "./helpers.mjs";

test.before(async () => {
  await initGpu(sn);
});

/** n images of S x S with small integer values and random masks of 3 classes, some pixels the
 *  ignore index 255 */
function data(n, S, seed, { ignoreIndex = 255, classes = 3 } = {}) {
  const rnd = fuzzRng(seed);
  const x = Float32Array.from({ length: n * S * S }, () => Math.floor(rnd() * 5) - 2);
  const masks = Int32Array.from({ length: n * S * S }, () => (rnd() < 0.1 ? ignoreIndex : Math.floor(rnd() * classes)));
  return sn.Dataset.segmentation(x, [n, 1, S, S], masks, classes, { ignoreIndex });
}

/** scores exactly x, -x and 0 (a 1x1 convolution with weights 1, -1, 0): every value is exact on
 *  any device, and x = 0 ties all three classes */
function tieModel() {
  const m = new sn.nn.Conv2d(1, 3, 1);
  m.loadStateDict(new Map([["weight", sn.tensor([1, -1, 0], [3, 1, 1, 1])], ["bias", sn.tensor([0, 0, 0], [3])]]));
  return m;
}

test("evaluateAsync on webgpu gives evaluate's per-pixel accuracy, top-5, IoU and pixel count exactly, ties and ignored pixels included", async () => {
  const ds = data(7, 9, 1);
  const m = tieModel();
  const want = sn.evaluate(m, ds, { batchSize: 3 });
  m.to("webgpu");
  const got = await sn.evaluateAsync(m, ds, { batchSize: 3 });
  assert.equal(
    { n: got.n, pixels: got.pixels, top1: got.top1, top5: got.top5, iou: got.iou, miou: got.miou },
    { n: want.n, pixels: want.pixels, top1: want.top1, top5: want.top5, iou: want.iou, miou: want.miou },
  );
  assert.ok(Math.abs(got.loss - want.loss) <= 1e-6 * Math.abs(want.loss), `loss ${got.loss} vs ${want.loss}`);
  assert.ok(want.pixels < 7 * 81 && want.pixels > 0.8 * 7 * 81, "some pixels ignored");
});

test("fit on webgpu trains a segmentation net with pixel accuracy and IoU, following the CPU run", async () => {
  const train = data(24, 12, 2), val = data(8, 12, 3);
  const net = () => {
    sn.manualSeed(5);
    return sn.nn.sequential(new sn.nn.Conv2d(1, 6, 3, { padding: 1 }), new sn.nn.ReLU(), new sn.nn.Conv2d(6, 3, 3, { padding: 1 }));
  };
  const opts = { epochs: 2, batchSize: 8, lr: 0.05, momentum: 0.9, seed: 1, logEvery: 2, validation: val };
  const c = await sn.fit(net(), train, { ...opts, device: "cpu" });
  const g = await sn.fit(net(), train, { ...opts, device: "webgpu" });
  for (let e = 0; e < 2; e++) {
    const a = c.history[e], b = g.history[e];
    for (const k of ["loss", "val_loss"]) assert.ok(Math.abs(a[k] - b[k]) <= 1e-4 * Math.max(1, a[k]), `epoch ${e + 1} ${k}: ${b[k]} on webgpu, ${a[k]} on the CPU`);
    // counts of pixels: a score that differs in its last bit may flip a near-tie, so allow 2 pixels
    for (const k of ["top1", "top5", "val_top1", "val_top5"]) assert.ok(Math.abs(a[k] - b[k]) <= 2 / (8 * 144) + 1e-12, `epoch ${e + 1} ${k}: ${b[k]} vs ${a[k]}`);
    for (const k of ["miou", "val_miou"]) assert.ok(Math.abs(a[k] - b[k]) < 0.01, `epoch ${e + 1} ${k}: ${b[k]} vs ${a[k]}`);
    assert.is(b.imagesPerSec > 0, true);
  }
});

test("fit and evaluateAsync on webgpu: a label outside the classes is an error naming it before the step (the GPU loss would report it only at the next read)", async () => {
  const ds = data(4, 6, 4);
  ds.y[7] = 3; // 3 classes, not the ignore index
  const m = tieModel().to("webgpu");
  await sn.evaluateAsync(m, ds).then(() => assert.unreachable(), (e) => assert.match(e.message, /evaluate: pixel class 3 is out of range for score maps of 3 classes \(and is not the ignore index 255\)/));
  await sn.fit(tieModel(), ds, { device: "webgpu", batchSize: 4 }).then(() => assert.unreachable(), (e) => assert.match(e.message, /fit: pixel class 3 is out of range/));
  const digits = await sn.loadMnistDigits();
  const few = digits.train.slice(0, 8);
  few.y[2] = 12;
  sn.manualSeed(1);
  await sn.fit(sn.models.lenet({ classes: 10 }), few, { device: "webgpu", batchSize: 8 }).then(
    () => assert.unreachable(),
    (e) => assert.match(e.message, /fit: label 12 \(image \d of the batch\) is out of range for 10 classes/),
  );
});

runAndExit(sn);
