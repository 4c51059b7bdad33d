#!/usr/bin/env node
// Training speed of TensorFlow.js's wasm backend on the lecture's LeNet: the reference side of
// the training comparison (our side lives in its own script and imports this one).
//
//   conv 20@5x5 same, relu, maxpool 2, conv 50@5x5 same, relu, maxpool 2, dense 500 relu,
//   dense 10, softmax cross-entropy, plain SGD, batch 64, random data of MNIST shape.
//
// TF.js's wasm backend has no Conv2DBackpropFilter kernel (training a conv net on it fails), and
// its Conv2DBackpropInput is a scalar loop many times slower than its forward convolution. So the
// convolution here is a tf.customGrad whose two gradients are forward convolutions (XNNPACK), as
// a TF.js user would have to write it. The dense layers' gradients likewise avoid the backend's
// slow transposed matrix products. That is the fastest TF.js wasm training we know how to get.
//
//   node bench/train_tfjs_lenet.mjs [--batches 20] [--warmup 3] [--batch 64] [--input-grad conv|native] [--check] [--json]
import { fileURLToPath } from "node:url";
import { setupTfjs, tfjsThreads, convFilterGradAsConv, convInputGradAsConv } from "./refs.mjs";

/** A 5x5 'same' convolution (stride 1, pad 2) with both gradients as forward convolutions.
 *  `needInputGrad` false for the first layer, whose input is data (zeros are returned, as
 *  frameworks skip that gradient). `inputGrad: "native"` uses TF.js's own Conv2DBackpropInput. */
function makeConv(tf, { needInputGrad, inputGrad = "conv" }) {
  return tf.customGrad((x, w, save) => {
    save([x, w]);
    const [KH] = w.shape;
    const pad = (KH - 1) / 2;
    return {
      value: tf.conv2d(x, w, 1, "same"),
      gradFunc: (dy, [xs, ws]) => [
        !needInputGrad ? tf.zerosLike(xs) : inputGrad === "native" ? tf.conv2dTranspose(dy, ws, xs.shape, 1, "same") : convInputGradAsConv(tf, dy, ws, pad),
        convFilterGradAsConv(tf, xs, dy, ws.shape, 1, pad),
      ],
    };
  });
}

/** x @ w whose gradients multiply by explicitly transposed operands: TF.js's wasm BatchMatMul
 *  with transposeA or transposeB set (what the built-in matMul gradient uses) is many times
 *  slower than a transpose followed by the plain product. */
function makeDense(tf) {
  return tf.customGrad((x, w, save) => {
    save([x, w]);
    return {
      value: tf.matMul(x, w),
      gradFunc: (dy, [xs, ws]) => [tf.matMul(dy, tf.transpose(ws)), tf.matMul(tf.transpose(xs), dy)],
    };
  });
}

function lenet(tf, seed, inputGrad) {
  // He-normal weights (fan-in), zero biases, NHWC / HWIO (TF.js's layout)
  const he = (shape, fanIn, s) => tf.tidy(() => tf.variable(tf.randomNormal(shape, 0, Math.sqrt(2 / fanIn), "float32", s)));
  const zeros = (n) => tf.tidy(() => tf.variable(tf.zeros([n])));
  const p = {
    c1w: he([5, 5, 1, 20], 25, seed),
    c1b: zeros(20),
    c2w: he([5, 5, 20, 50], 500, seed + 1),
    c2b: zeros(50),
    f1w: he([7 * 7 * 50, 500], 7 * 7 * 50, seed + 2),
    f1b: zeros(500),
    f2w: he([500, 10], 500, seed + 3),
    f2b: zeros(10),
  };
  const conv1 = makeConv(tf, { needInputGrad: false, inputGrad });
  const conv2 = makeConv(tf, { needInputGrad: true, inputGrad });
  const dense = makeDense(tf);
  const forward = (x) => {
    let h = tf.maxPool(tf.relu(tf.add(conv1(x, p.c1w), p.c1b)), 2, 2, "valid");
    h = tf.maxPool(tf.relu(tf.add(conv2(h, p.c2w), p.c2b)), 2, 2, "valid");
    h = tf.reshape(h, [h.shape[0], -1]);
    h = tf.relu(tf.add(dense(h, p.f1w), p.f1b));
    return tf.add(dense(h, p.f2w), p.f2b);
  };
  return { p, forward };
}

/**
 * Trains LeNet on TF.js's wasm backend and times it.
 * @returns {Promise<{imagesPerSec:number, msPerBatch:number, batch:number, batches:number, threads:number|string, firstLoss:number, lastLoss:number, inputGrad:string}>}
 */
export async function tfjsLenetBench({ batch = 64, warmup = 3, batches = 20, lr = 0.01, inputGrad = "conv", seed = 1 } = {}) {
  const tf = await setupTfjs();
  const { p, forward } = lenet(tf, seed, inputGrad);
  const opt = tf.train.sgd(lr);
  // a few distinct batches of MNIST-shaped random data, cycled
  const data = [];
  for (let i = 0; i < 4; i++) {
    const x = tf.randomUniform([batch, 28, 28, 1], 0, 1, "float32", seed + 10 + i);
    const y = tf.tidy(() => tf.cast(tf.oneHot(tf.randomUniform([batch], 0, 10, "int32", seed + 20 + i), 10), "float32"));
    data.push({ x, y });
  }
  const step = (i) => {
    const { x, y } = data[i % data.length];
    const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, forward(x)), true);
    const v = loss.dataSync()[0]; // wait for the step to finish
    loss.dispose();
    return v;
  };
  let firstLoss = NaN;
  for (let i = 0; i < warmup; i++) {
    const l = step(i);
    if (i === 0) firstLoss = l;
  }
  const times = [];
  let lastLoss = NaN;
  for (let i = 0; i < batches; i++) {
    const t0 = performance.now();
    lastLoss = step(warmup + i);
    times.push(performance.now() - t0);
  }
  for (const d of data) tf.dispose([d.x, d.y]);
  tf.dispose(Object.values(p));
  opt.dispose();
  const sorted = [...times].sort((a, b) => a - b);
  const ms = sorted.length % 2 ? sorted[sorted.length >> 1] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  return { imagesPerSec: (batch * 1000) / ms, msPerBatch: ms, batch, batches, threads: tfjsThreads(tf), firstLoss, lastLoss, inputGrad };
}

/** Images per second of TF.js wasm training LeNet (median over batches after warm-up). */
export async function tfjsLenetImagesPerSec(opts = {}) {
  return (await tfjsLenetBench(opts)).imagesPerSec;
}

/**
 * Checks the rewritten gradients against direct float64 loops on a small case (the rewrite is
 * what the benchmark trusts; a wrong gradient would train fast and learn nothing).
 * Returns the largest error relative to the largest gradient entry.
 */
export async function checkConvGrads() {
  const tf = await setupTfjs();
  const N = 2, H = 9, W = 7, C = 3, O = 4, K = 5, P = 2;
  const rnd = (n, s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s * 78.233) * 0.5);
  const xa = rnd(N * H * W * C, 1), wa = rnd(K * K * C * O, 2), ga = rnd(N * H * W * O, 3);
  const x = tf.tensor4d(xa, [N, H, W, C]), w = tf.tensor4d(wa, [K, K, C, O]), dy = tf.tensor4d(ga, [N, H, W, O]);
  const conv = makeConv(tf, { needInputGrad: true });
  // gradients of sum(conv(x, w) * dy)
  const [gx, gw] = tf.grads((a, b) => tf.sum(tf.mul(conv(a, b), dy)))([x, w]);
  const dx = new Float64Array(xa.length), dw = new Float64Array(wa.length);
  for (let n = 0; n < N; n++)
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++)
        for (let o = 0; o < O; o++) {
          const g = ga[((n * H + i) * W + j) * O + o];
          for (let u = 0; u < K; u++)
            for (let v = 0; v < K; v++) {
              const y = i + u - P, z = j + v - P;
              if (y < 0 || y >= H || z < 0 || z >= W) continue;
              for (let c = 0; c < C; c++) {
                const xi = ((n * H + y) * W + z) * C + c, wi = ((u * K + v) * C + c) * O + o;
                dx[xi] += g * wa[wi];
                dw[wi] += g * xa[xi];
              }
            }
        }
  const rel = (got, want) => {
    let e = 0, m = 0;
    for (let i = 0; i < want.length; i++) {
      e = Math.max(e, Math.abs(got[i] - want[i]));
      m = Math.max(m, Math.abs(want[i]));
    }
    return e / m;
  };
  const err = Math.max(rel(gx.dataSync(), dx), rel(gw.dataSync(), dw));
  tf.dispose([x, w, dy, gx, gw]);
  return err;
}

// ---------------------------------------------------------------- command line

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const num = (name, d) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : d;
  };
  const str = (name, d) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : d;
  };
  const json = args.includes("--json");
  if (args.includes("--check")) {
    const e = await checkConvGrads();
    console.log(`rewritten conv gradients vs float64 loops: max error ${e.toExponential(2)} of the largest entry ${e < 1e-5 ? "✓" : "✗"}`);
    if (!(e < 1e-5)) process.exit(1);
  }
  const r = await tfjsLenetBench({ batches: num("--batches", 20), warmup: num("--warmup", 3), batch: num("--batch", 64), inputGrad: str("--input-grad", "conv") });
  if (json) console.log(JSON.stringify({ bench: "train_lenet", runtime: "tfjs-wasm", ...r }));
  else
    console.log(
      `TF.js wasm (${r.threads} thread, conv gradients as forward convs${r.inputGrad === "native" ? " except dX: native Conv2DBackpropInput" : ""}): ` +
        `LeNet batch ${r.batch}: ${r.imagesPerSec.toFixed(0)} images/s (${r.msPerBatch.toFixed(1)} ms/batch, median of ${r.batches} after warm-up; loss ${r.firstLoss.toFixed(3)} -> ${r.lastLoss.toFixed(3)})`,
    );
}
