#!/usr/bin/env node
// ResNet-18 inference (batch 1, 3x224x224, 1000 classes): simdnet (as built, and with batch norm
// folded by fuseBatchNorm) against TF.js's wasm backend (the same network built with
// tfjs-layers) and ONNX Runtime Web (an ONNX graph written here, in memory), the same random
// weights in all of them, side by side in one process, logits compared. See bench/README.md.
//
//   node bench/resnet18.mjs [--threads 1,2] [--size 224] [--quick] [--json] [--check] [--layers]
//
//   --size N   input height = width (default 224; e.g. 64 for a quick check)
//   --quick    fewer samples
//   --check    exit with an error when a runtime's logits disagree with ours or a runtime fails
//   --layers   also time our forward layer by layer and kernel by kernel (where the time goes)
//   --json     one JSON object per line instead of the table
//
// Like kernels.mjs, each thread count runs in a child process of its own (ONNX Runtime's thread
// pool is global and fixed when it starts), and within a child the runtimes take turns.
import { fileURLToPath } from "node:url";
import { setupTfjs, setupOrt, ortSession, tfjsThreads, oihwToHwio } from "./refs.mjs";
import { GraphBuilder, f32 } from "./onnx.mjs";
import { randn, median, timeInterleaved, maxAbsDiff, maxAbs, runChild, main } from "./harness.mjs";

const TARGET_MS = 100; // the goal: batch 1 at 224x224 within 100 ms on 2 threads
const EPS = 1e-5; // batch norm epsilon (PyTorch's and ours)
const CLASSES = 1000;
/** Logits match when max |ref - ours| <= TOL_REL * max |ours|: see tolerance() */
const TOL_REL = 1e-4;

function parseArgs(argv) {
  const o = { json: false, quick: false, check: false, layers: false, child: false, threads: [1, 2], size: 224 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v;
    };
    if (a === "--json") o.json = true;
    else if (a === "--quick") o.quick = true;
    else if (a === "--check") o.check = true;
    else if (a === "--layers") o.layers = true;
    else if (a === "--child") o.child = true;
    else if (a.startsWith("--threads")) o.threads = val().split(",").map(Number);
    else if (a.startsWith("--size")) o.size = Number(val());
    else if (a === "-h" || a === "--help") usage();
    else usage(`unknown argument ${a}`);
  }
  if (o.threads.some((t) => !Number.isInteger(t) || t < 1)) usage("--threads takes positive integers, e.g. 1,2");
  if (!Number.isInteger(o.size) || o.size < 32) usage("--size takes an integer >= 32");
  return o;
}

function usage(msg) {
  if (msg) console.error(`resnet18.mjs: ${msg}`);
  console.error("usage: node bench/resnet18.mjs [--threads 1,2] [--size 224] [--quick] [--json] [--check] [--layers]");
  process.exit(msg ? 2 : 0);
}

// ================================================================ the network and its weights

/** ResNet-18's blocks in torchvision's names: [name, in channels, out channels, stride]. */
function blocks() {
  const out = [];
  let inC = 64;
  [64, 128, 256, 512].forEach((c, s) => {
    for (let b = 0; b < 2; b++) {
      const stride = s > 0 && b === 0 ? 2 : 1;
      out.push({ name: `layer${s + 1}.${b}`, inC, outC: c, stride, downsample: stride !== 1 || inC !== c });
      inC = c;
    }
  });
  return out;
}

/**
 * Deterministic weights for every state-dict entry (torchvision's names and shapes, taken from
 * our model): conv weights uniform with He's variance 2 / fan-in; batch norm weight in
 * [0.5, 1.5) and bias in [-0.2, 0.2); fc uniform / sqrt(512), bias in [-0.1, 0.1). The running
 * statistics are placeholders here, set by calibrate().
 */
function makeWeights(shapes) {
  const w = new Map();
  let seed = 1000;
  const U = (n, lo, hi) => randn(n, seed++).map((v) => lo + ((v + 1) / 2) * (hi - lo));
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const leaf = name.slice(name.lastIndexOf(".") + 1);
    let v;
    if (name === "fc.weight") v = randn(n, seed++).map((x) => x / Math.sqrt(shape[1]));
    else if (name === "fc.bias") v = U(n, -0.1, 0.1);
    else if (shape.length === 4) {
      const fanIn = shape[1] * shape[2] * shape[3];
      v = randn(n, seed++).map((x) => x * Math.sqrt(6 / fanIn)); // uniform: variance 2 / fan-in
    } else if (leaf === "running_mean") v = new Float32Array(n);
    else if (leaf === "running_var") v = new Float32Array(n).fill(1);
    else if (leaf === "weight") v = U(n, 0.5, 1.5);
    else if (leaf === "bias") v = U(n, -0.2, 0.2);
    else if (leaf === "num_batches_tracked") v = new Float32Array(n);
    else throw new Error(`resnet18: no rule for the weights of ${name}`);
    w.set(name, { shape, data: v });
  }
  return w;
}

/**
 * Running statistics on the scale of the bench's input, so that activations stay O(1) through
 * the 20 layers (with arbitrary ones they grow block by block), yet far from the identity so
 * that batch norm really matters: a forward pass in eval mode where each BatchNorm2d, before it
 * runs, measures its input's per-channel mean square q (at least a quarter of the layer's
 * average) and sets running_var = q·r, r in [0.5, 2), and running_mean = u·sqrt(q), u in
 * [-0.2, 0.2). Not the input's own mean and variance: on the last stage's few positions (one at
 * 32x32) they are those of one or four values, and normalising by them would subtract nearly
 * equal numbers and divide by nearly nothing, magnifying rounding differences between runtimes
 * layer after layer. Layers run in order, so each one is calibrated on the output of the
 * calibrated layers before it. Returns the state dict after.
 */
function calibrate(lib, model, X) {
  let seed = 5000;
  const restore = [];
  for (const m of model.modules()) {
    if (m.type !== "BatchNorm2d") continue;
    const fwd = m.forward;
    restore.push([m, fwd]);
    m.forward = (x) => {
      const [N, C, H, W] = x.shape;
      const a = x.toArray();
      const P = N * H * W;
      const u = randn(C, seed++);
      const r = randn(C, seed++);
      const q = new Float64Array(C);
      for (let c = 0; c < C; c++) {
        let s2 = 0;
        for (let n = 0; n < N; n++)
          for (let p = 0; p < H * W; p++) {
            const v = a[(n * C + c) * H * W + p];
            s2 += v * v;
          }
        q[c] = s2 / P;
      }
      // a channel that is (nearly) zero on this input gets the layer's typical scale: dividing
      // by its own tiny mean square would magnify rounding differences without bound
      const floor = 0.25 * (q.reduce((x, y) => x + y, 0) / C) + 1e-6;
      const mean = new Float32Array(C);
      const vari = new Float32Array(C);
      for (let c = 0; c < C; c++) {
        const qc = Math.max(q[c], floor);
        mean[c] = 0.2 * u[c] * Math.sqrt(qc);
        vari[c] = qc * (0.5 + ((r[c] + 1) / 2) * 1.5);
      }
      m.runningMean.data.set(mean);
      m.runningVar.data.set(vari);
      return fwd.call(m, x);
    };
  }
  try {
    lib.noGrad(() => lib.tidy(() => model.forward(X).toArray()));
  } finally {
    for (const [m] of restore) delete m.forward; // back to the class's forward
  }
  return new Map([...model.stateDict()].map(([k, t]) => [k, { shape: [...t.shape], data: Float32Array.from(t.toArray()) }]));
}

// ================================================================ runners

/** Ours: init({threads}), the zoo's resnet18 in eval mode, forward under noGrad, logits read
 *  back. Also the weights for every runtime (makeWeights, then calibrate) in `weights`. */
function oursRunner(lib, size) {
  const model = lib.models.resnet18({ classes: CLASSES, inputSize: size });
  model.loadStateDict(makeWeights([...model.stateDict()].map(([k, t]) => [k, [...t.shape]])));
  model.eval();
  const X = lib.tensor(input(size), [1, 3, size, size]);
  const weights = calibrate(lib, model, X);
  const forward = () => lib.noGrad(() => lib.tidy(() => model.forward(X).toArray()));
  return {
    name: "simdnet",
    model,
    weights,
    run: forward,
    result: () => Float32Array.from(forward()),
    dispose() {
      X.dispose();
      model.dispose();
    },
  };
}

const input = (size) => randn(3 * size * size, 7);

/** Ours again with batch norm folded into the convolutions (fuseBatchNorm), same weights. */
function oursFusedRunner(lib, size, weights) {
  const model = lib.models.resnet18({ classes: CLASSES, inputSize: size });
  model.loadStateDict(weights);
  lib.fuseBatchNorm(model.eval());
  const X = lib.tensor(input(size), [1, 3, size, size]);
  const forward = () => lib.noGrad(() => lib.tidy(() => model.forward(X).toArray()));
  return {
    name: "simdnet-fused",
    run: forward,
    result: () => Float32Array.from(forward()),
    dispose() {
      X.dispose();
      model.dispose();
    },
  };
}

/**
 * TF.js: the same network with tfjs-layers on the wasm backend, NHWC with HWIO filters. Padding
 * as PyTorch pads: explicit ZeroPadding2D then 'valid' (TF's 'same' pads stride-2 layers on the
 * bottom/right only, PyTorch on both sides). The max pool's zero padding equals PyTorch's -inf
 * padding because its input comes out of a ReLU (>= 0). Batch norm: BatchNormalization layers
 * with epsilon 1e-5 (gamma, beta, moving mean, moving variance).
 */
async function tfjsRunner(size, weights) {
  const tf = await setupTfjs();
  const tfl = await import("@tensorflow/tfjs-layers");
  const L = tfl.layers;
  const id = (n) => n.replaceAll(".", "_");
  const sets = []; // [layer, weights] set once the model is built
  const conv = (x, name, filters, k, stride, pad) => {
    if (pad) x = L.zeroPadding2d({ padding: pad, name: id(`${name}.pad`) }).apply(x);
    const layer = L.conv2d({ filters, kernelSize: k, strides: stride, padding: "valid", useBias: false, kernelInitializer: "zeros", name: id(name) });
    const w = weights.get(`${name}.weight`);
    sets.push([layer, [tf.tensor4d(oihwToHwio(w.data, w.shape), [k, k, w.shape[1], filters])]]);
    return layer.apply(x);
  };
  const bn = (x, name) => {
    const layer = L.batchNormalization({ axis: 3, epsilon: EPS, name: id(name) });
    const g = (p) => tf.tensor1d(weights.get(`${name}.${p}`).data);
    sets.push([layer, [g("weight"), g("bias"), g("running_mean"), g("running_var")]]);
    return layer.apply(x);
  };
  const relu = (x, name) => L.reLU({ name: id(name) }).apply(x);

  const inp = tfl.input({ shape: [size, size, 3], name: "x" });
  let x = relu(bn(conv(inp, "conv1", 64, 7, 2, 3), "bn1"), "relu");
  x = L.zeroPadding2d({ padding: 1, name: "maxpool_pad" }).apply(x);
  x = L.maxPooling2d({ poolSize: 3, strides: 2, padding: "valid", name: "maxpool" }).apply(x);
  for (const b of blocks()) {
    let y = relu(bn(conv(x, `${b.name}.conv1`, b.outC, 3, b.stride, 1), `${b.name}.bn1`), `${b.name}.relu1`);
    y = bn(conv(y, `${b.name}.conv2`, b.outC, 3, 1, 1), `${b.name}.bn2`);
    const s = b.downsample ? bn(conv(x, `${b.name}.downsample.0`, b.outC, 1, b.stride, 0), `${b.name}.downsample.1`) : x;
    x = relu(L.add({ name: id(`${b.name}.add`) }).apply([y, s]), `${b.name}.relu`);
  }
  x = L.globalAveragePooling2d({ name: "avgpool" }).apply(x);
  const fc = L.dense({ units: CLASSES, kernelInitializer: "zeros", name: "fc" });
  const fw = weights.get("fc.weight");
  sets.push([fc, [tf.transpose(tf.tensor2d(fw.data, fw.shape)), tf.tensor1d(weights.get("fc.bias").data)]]);
  const logits = fc.apply(x);
  const model = tfl.model({ inputs: inp, outputs: logits });
  for (const [layer, ws] of sets) {
    layer.setWeights(ws);
    for (const t of ws) t.dispose();
  }

  // NCHW -> NHWC once, untimed
  const xs = input(size);
  const nhwc = new Float32Array(xs.length);
  for (let c = 0; c < 3; c++) for (let p = 0; p < size * size; p++) nhwc[p * 3 + c] = xs[c * size * size + p];
  const X = tf.tensor4d(nhwc, [1, size, size, 3]);
  const forward = () => {
    const y = model.predict(X);
    const d = y.dataSync(); // wait for the result and read it back, as a caller would
    y.dispose();
    return d;
  };
  return {
    name: "tfjs-wasm",
    threads: tfjsThreads(tf),
    run: forward,
    result: () => Float32Array.from(forward()),
    dispose() {
      X.dispose();
      model.dispose();
    },
  };
}

/**
 * ONNX Runtime Web: the graph as torchvision's exporter lays it out, written here (onnx.mjs):
 * Conv (no bias), BatchNormalization (kept as nodes, epsilon 1e-5: ONNX Runtime's optimiser,
 * level "all", folds them into the convs when it builds the session, as for any exported
 * model), Relu, MaxPool (pads 1), Add, GlobalAveragePool, Flatten, Gemm (transB).
 */
function resnet18Onnx(size, weights) {
  const b = new GraphBuilder([{ name: "input", dims: [1, 3, size, size] }]);
  const w = (name) => b.init(name, weights.get(name).shape, weights.get(name).data);
  const conv = (x, name, k, stride, pad) => b.node("Conv", [x, w(`${name}.weight`)], { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad] }, name);
  const bn = (x, name) => b.node("BatchNormalization", [x, ...["weight", "bias", "running_mean", "running_var"].map((p) => w(`${name}.${p}`))], { epsilon: f32(EPS) }, name);
  let x = b.node("Relu", [bn(conv("input", "conv1", 7, 2, 3), "bn1")]);
  x = b.node("MaxPool", [x], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, "maxpool");
  for (const k of blocks()) {
    let y = b.node("Relu", [bn(conv(x, `${k.name}.conv1`, 3, k.stride, 1), `${k.name}.bn1`)]);
    y = bn(conv(y, `${k.name}.conv2`, 3, 1, 1), `${k.name}.bn2`);
    const s = k.downsample ? bn(conv(x, `${k.name}.downsample.0`, 1, k.stride, 0), `${k.name}.downsample.1`) : x;
    x = b.node("Relu", [b.node("Add", [y, s])]);
  }
  x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], { axis: 1 });
  const logits = b.node("Gemm", [x, w("fc.weight"), w("fc.bias")], { transB: 1 }, "logits");
  return b.finish(logits, [1, CLASSES]);
}

async function ortRunner(threads, size, weights) {
  const ort = await setupOrt(threads);
  const session = await ortSession(ort, resnet18Onnx(size, weights));
  const X = new ort.Tensor("float32", input(size), [1, 3, size, size]);
  const forward = async () => {
    const r = await session.run({ input: X });
    const d = r.logits.data;
    r.logits.dispose?.();
    return d;
  };
  return {
    name: "ort-wasm",
    threads,
    run: forward,
    result: async () => Float32Array.from(await forward()),
    dispose() {
      session.release();
    },
  };
}

// ================================================================ checking

/**
 * Logits match when max |ref - ours| <= 1e-4 * max |ours|. Float32 rounding through 20 layers of
 * sums of up to 4,608 products, done in different orders (fused multiply-adds in ours; batch norm
 * folded into the weights by ONNX Runtime), moves the logits by a few 1e-6 of their scale: each
 * runtime is within 1.6-2.4e-6 of max |logit| of a float64 evaluation of the same network and
 * weights at 64x64 (0.9-1.3e-5 at 32x32, where the last stage is 1x1). A real difference is far
 * larger: a batch norm epsilon of 1e-4 instead of 1e-5 moves the logits by 7e-4 of their scale,
 * TF's 'same' padding on the stride-2 convs by more than their scale.
 */
const tolerance = (ours) => TOL_REL * maxAbs(ours);

// ================================================================ child: one thread count

async function child(o) {
  const threads = o.threads[0];
  const size = o.size;
  const emit = (row) => process.stdout.write(JSON.stringify(row) + "\n");
  const base = { bench: "resnet18", size, threads };

  let lib = null;
  let info = null;
  let ours = null;
  let weights = null;
  let oursStatus = "ok";
  try {
    lib = await import("../dist/index.js");
    info = await lib.init({ threads });
    ours = oursRunner(lib, size);
    weights = ours.weights;
  } catch (e) {
    oursStatus = `error: ${e.message}`;
    console.error(e);
  }
  if (!weights) {
    emit({ ...base, runtime: "simdnet", status: oursStatus });
    return;
  }

  const runners = ours ? [ours] : [];
  const status = new Map([["simdnet", oursStatus]]);
  const names = ["simdnet-fused", "tfjs-wasm", "ort-wasm"];
  const makers = [() => oursFusedRunner(lib, size, weights), () => tfjsRunner(size, weights), () => ortRunner(threads, size, weights)];
  for (let i = 0; i < makers.length; i++) {
    try {
      const r = await makers[i]();
      runners.push(r);
      status.set(r.name, "ok");
    } catch (e) {
      status.set(names[i], `error: ${e.message}`);
      console.error(e);
    }
  }

  // outputs first (also the first warm-up call of each runtime)
  const outs = new Map();
  for (const r of runners) {
    try {
      outs.set(r.name, await r.result());
    } catch (e) {
      status.set(r.name, `error: ${e.message}`);
      r.failed = e;
    }
  }
  const live = runners.filter((r) => !r.failed);
  const times = await timeInterleaved(live, o, {
    maxReps: o.quick ? 3 : 15,
    warmMs: o.quick ? 200 : 1500,
    minWarmCalls: o.quick ? 1 : 3,
    budgetMs: o.quick ? 1500 : 25000,
  });
  const oursOut = outs.get("simdnet") ?? null;
  const oursMs = ours && !ours.failed ? times[live.indexOf(ours)] : null;
  for (const name of ["simdnet", ...names]) {
    const r = runners.find((x) => x.name === name);
    const i = r ? live.indexOf(r) : -1;
    const ms = i >= 0 ? times[i] : null;
    if (r?.failed) status.set(name, `error: ${r.failed.message}`);
    const out = outs.get(name) ?? null;
    const err = name !== "simdnet" && out && oursOut ? maxAbsDiff(out, oursOut) : null;
    const tol = err != null ? tolerance(oursOut) : null;
    emit({
      ...base,
      runtime: name,
      runtime_threads: name.startsWith("simdnet") ? (info?.threads ?? null) : name === "tfjs-wasm" ? (r?.threads ?? 1) : threads,
      median_ms: ms,
      min_ms: ms != null ? r.minMs : null,
      cpu_ms: ms != null ? r.cpuMs : null,
      samples: ms != null ? r.samples : 0,
      ratio: ms != null && oursMs ? ms / oursMs : null,
      max_abs_diff: err,
      tol,
      match: err == null ? null : err <= tol,
      max_abs_logit: out ? maxAbs(out) : null,
      status: status.get(name) ?? "error: did not start",
      build: name.startsWith("simdnet") ? (info?.build ?? null) : undefined,
    });
  }
  if (o.layers && ours && !ours.failed) for (const row of profileLayers(lib, ours, o)) emit({ ...base, ...row });
  for (const r of runners) r.dispose();
  lib?.dispose();
}

/**
 * Where our forward spends its time: every leaf module's forward and every engine.run wrapped
 * with a clock (the kernels run synchronously: engine.run returns when all threads are done).
 * Medians over passes. A layer's time includes its JS (argument checks, allocation); the
 * kernel rows are engine.run alone.
 */
function profileLayers(lib, ours, o) {
  const passes = o.quick ? 5 : 15;
  const eng = lib.engine();
  const layers = [];
  let cur = null;
  for (const [name, m] of ours.model.namedModules()) {
    if (m.children().length) continue;
    const fwd = m.forward.bind(m);
    const row = { name, layer: m.describe(), ms: [], shape: null };
    layers.push(row);
    m.forward = (x) => {
      const t0 = performance.now();
      const y = fwd(x);
      if (cur) cur.layers.set(row, (cur.layers.get(row) ?? 0) + performance.now() - t0);
      row.shape ??= [...y.shape];
      return y;
    };
  }
  const orig = eng.run.bind(eng);
  eng.run = (name, args, work) => {
    const t0 = performance.now();
    orig(name, args, work);
    if (cur) cur.kern.set(name, (cur.kern.get(name) ?? 0) + performance.now() - t0);
  };
  const recs = [];
  for (let p = 0; p < passes + 2; p++) {
    cur = { layers: new Map(), kern: new Map(), total: 0 };
    const t0 = performance.now();
    ours.run();
    cur.total = performance.now() - t0;
    if (p >= 2) recs.push(cur);
  }
  cur = null;
  eng.run = orig;
  const macsOf = new Map(lib.summary(ours.model, [1, 3, o.size, o.size]).rows.map((r) => [r.name, r.macs]));
  const rows = [];
  rows.push({ kind: "pass", ms: median(recs.map((r) => r.total)) });
  for (const row of layers) {
    const ms = median(recs.map((r) => r.layers.get(row) ?? 0));
    rows.push({ kind: "layer", name: row.name, layer: row.layer, out_shape: row.shape, ms, macs: macsOf.get(row.name) ?? null });
  }
  const kernels = [...new Set(recs.flatMap((r) => [...r.kern.keys()]))];
  for (const k of kernels) rows.push({ kind: "kernel", name: k, ms: median(recs.map((r) => r.kern.get(k) ?? 0)) });
  return rows;
}

// ================================================================ parent: the table

const fmtMs = (v) => (v == null ? "" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const fmtErr = (v) => (v == null ? "" : v === 0 ? "0" : v === Infinity ? "inf" : v.toExponential(1));
const pad = (s, w, right) => (right ? String(s).padStart(w) : String(s).padEnd(w));

const COLS = [
  ["runtime", 13],
  ["thr", 3],
  ["median ms", 9],
  ["min ms", 7],
  ["cpu ms", 7],
  ["ratio", 6],
  ["max |logit diff|", 16],
  ["tol", 7],
  ["match", 5],
  ["note", 0],
];

function tableRow(r) {
  const notes = [];
  if (r.status !== "ok") notes.push(r.status);
  if (r.runtime.startsWith("simdnet") && r.runtime_threads != null && r.runtime_threads !== r.threads) notes.push(`ours ran ${r.runtime_threads} thr`);
  if (r.runtime === "simdnet-fused") notes.push("ours, batch norm folded into the convs (fuseBatchNorm)");
  if (r.runtime === "tfjs-wasm") notes.push("1 thread in Node");
  if (r.runtime === "simdnet" && r.max_abs_logit != null) notes.push(`max |logit| ${r.max_abs_logit.toFixed(2)}${r.build ? `, ${r.build} build` : ""}`);
  // how many cores the process had on average: below the thread count, other load took them
  if (r.runtime === "simdnet" && r.threads > 1 && r.cpu_ms != null && r.median_ms) notes.push(`process busy ${(r.cpu_ms / r.median_ms).toFixed(2)} cores on average`);
  const thr = r.runtime === "tfjs-wasm" ? (r.runtime_threads ?? 1) : r.threads;
  const cells = [
    r.runtime,
    String(thr),
    r.median_ms == null ? (r.status === "ok" ? "" : "error") : fmtMs(r.median_ms),
    fmtMs(r.min_ms),
    fmtMs(r.cpu_ms),
    r.ratio == null ? "" : `${r.ratio.toFixed(2)}x`,
    r.runtime === "simdnet" ? "(ours)" : fmtErr(r.max_abs_diff),
    fmtErr(r.tol),
    r.match == null ? "" : r.match ? "✓" : "✗",
    notes.join("; "),
  ];
  return cells.map((c, i) => pad(c, COLS[i][1], i >= 2 && i <= 8)).join(" ").trimEnd();
}

function layerTable(rows, threads) {
  const pass = rows.find((r) => r.kind === "pass");
  const layers = rows.filter((r) => r.kind === "layer");
  const kernels = rows.filter((r) => r.kind === "kernel").sort((a, b) => b.ms - a.ms);
  const inLayers = layers.reduce((a, r) => a + r.ms, 0);
  console.log(`\nour forward layer by layer, ${threads} thread(s): ${fmtMs(pass.ms)} ms per pass (median), ${fmtMs(inLayers)} ms inside the layers`);
  console.log(`${pad("layer", 28)} ${pad("output", 16)} ${pad("ms", 7, true)} ${pad("%", 5, true)} ${pad("GFLOP/s", 8, true)}`);
  for (const r of layers) {
    const gf = r.macs ? (2 * r.macs) / r.ms / 1e6 : null;
    console.log(`${pad(r.name, 28)} ${pad(r.out_shape ? r.out_shape.join("x") : "", 16)} ${pad(fmtMs(r.ms), 7, true)} ${pad(((100 * r.ms) / pass.ms).toFixed(1), 5, true)} ${pad(gf == null ? "" : gf.toFixed(1), 8, true)}`);
  }
  // by kind of layer
  const kinds = new Map();
  for (const r of layers) {
    const k = r.layer.slice(0, r.layer.indexOf("("));
    const key = k === "Conv2d" ? `${k} ${r.layer.match(/kernel_size=\S+?(?=[,)])/)?.[0] ?? ""}` : k;
    kinds.set(key, (kinds.get(key) ?? 0) + r.ms);
  }
  console.log("by kind:", [...kinds].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${fmtMs(v)} ms`).join(", "));
  console.log("kernels (engine.run):", kernels.map((k) => `${k.name} ${fmtMs(k.ms)}`).join(", "));
}

async function parent(o) {
  const self = fileURLToPath(import.meta.url);
  if (!o.json) {
    console.log(`ResNet-18 inference, batch 1, 3x${o.size}x${o.size}, ${CLASSES} classes, the same random weights in every runtime`);
    console.log(`median / min ms per forward pass (logits read back) after warm-up, runtimes interleaved${o.quick ? " (quick: few samples)" : ""}`);
    console.log("ratio = runtime ms / our ms (> 1: we are faster); cpu ms = the process's CPU time per pass, all threads (1 thread: below the wall time by what other load took)\n");
    const header = COLS.map(([n, w], i) => pad(n, w, i >= 2 && i <= 8)).join(" ");
    console.log(header);
    console.log("-".repeat(header.length + 20));
  }
  let failed = 0;
  let mismatched = 0;
  const oursAt = new Map();
  const layerRows = new Map();
  for (const t of o.threads) {
    const args = ["--child", "--threads", String(t), "--size", String(o.size)];
    if (o.quick) args.push("--quick");
    if (o.layers) args.push("--layers");
    const code = await runChild(self, args, (line, r) => {
      if (o.json) console.log(line);
      if (r.kind) {
        if (!layerRows.has(t)) layerRows.set(t, []);
        layerRows.get(t).push(r);
        return;
      }
      if (!o.json) console.log(tableRow(r));
      if (r.status !== "ok") failed++;
      if (r.match === false) mismatched++;
      if (r.runtime.startsWith("simdnet")) oursAt.set(`${r.runtime} ${t}`, r.median_ms);
    });
    if (code) {
      failed++;
      console.error(`resnet18.mjs: the ${t}-thread run exited with code ${code}`);
    }
  }
  if (!o.json) {
    console.log(`\nmatch: max |logit - ours| <= ${TOL_REL} * max |our logits| (float32 rounding moves them by a few 1e-6 of it)`);
    const two = oursAt.get("simdnet 2");
    const fused = oursAt.get("simdnet-fused 2");
    if (o.size === 224)
      console.log(
        `target: <= ${TARGET_MS} ms with 2 threads at 224x224: ${two == null ? "not measured (no 2-thread run)" : `ours ${fmtMs(two)} ms${fused != null ? ` (batch norm folded: ${fmtMs(fused)} ms)` : ""}, ${Math.min(two, fused ?? Infinity) <= TARGET_MS ? "met" : "not met"}`}`,
      );
    else console.log(`target: <= ${TARGET_MS} ms with 2 threads at 224x224 (this run: ${o.size}x${o.size}, not comparable)`);
    for (const [t, rows] of layerRows) layerTable(rows, t);
  }
  if (o.check && (failed || mismatched)) {
    console.error(`resnet18.mjs --check: ${mismatched} runtime(s) disagree with ours, ${failed} failed`);
    process.exit(1);
  }
  process.exit(failed ? 1 : 0);
}

// ================================================================ main

await main(parseArgs(process.argv.slice(2)), child, parent);
