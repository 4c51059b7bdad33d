#!/usr/bin/env node
// Whole nets, ours beside the reference runtimes, in one table: ResNet-18, ResNet-50 and VGG-16
// inference (batch 1, 3x224x224) and training steps of CIFAR ResNet-20 (batch 32 and 128),
// ResNet-18 on 32x32 (batch 32) and on 224x224 (batch 16) and the lecture's LeNet (forward,
// cross-entropy, backward, SGD with momentum). See bench/README.md.
//
//   node bench/models.mjs [--threads 1,2] [--reps N] [--quick] [--only resnet20,lenet]
//                         [--no-torch] [--no-tfjs] [--no-ort] [--python PATH] [--size N] [--seed N] [--no-fuse] [--profile] [--json]
//
//   --reps N    timed calls per runtime after one to warm up (default 3; --quick: 2)
//   --profile   also print sn.profile()'s per-op and per-layer table of one of our calls
//   --python    the interpreter with torch (default /usr/bin/python3: Debian's python3-torch)
//   --size N    the inference nets' input height and width (default 224; 64 for a quick check)
//   --seed N    the weights' and the input's seed (default 0; every runtime gets the same ones)
//   --conv3x3 MODE  init's conv3x3 for ours ("im2col": the exact path; default: the engine's
//               choice, Winograd F(4,3) for most 3x3 layers). On the CIFAR ResNet-20 step
//               at batch 32 the default path's first-layer gradient is 3.4e-3 of its largest
//               entry from PyTorch's (im2col: 5e-6), past the 1e-3 the match column allows:
//               at this point one-ulp input noise moves the exact path's gradient by up to
//               1e-3 too (ReLU masks flip; docs/performance.md, "Training gradients")
//   --conv5x5 MODE  init's conv5x5 for ours ("im2col": the exact path; default: Winograd F(2,5)
//               for LeNet's second layer and other 5x5 layers with 16+ channels)
//   --no-fuse   init({ fuse: false }): inference without the automatic conv + batch norm
//               (+ add) (+ ReLU) fusion (src/nn/fusion.ts; the same bits, more passes)
//
// References, each with the same weights and inputs as ours where it can take them (the nets
// rebuilt from our model's config in from_config.mjs):
//   - PyTorch (Debian's python3-torch, /usr/bin/python3) in a child process with
//     torch.set_num_threads(the same count): the net is rebuilt from our model's config (the
//     same layer names), loaded with our state dict, fed the same input;
//   - ONNX Runtime Web (wasm, the same thread count): inference only, an ONNX graph written from
//     our model's config with our weights;
//   - TF.js's wasm backend (one thread in Node): inference via tfjs-layers built from the config
//     with our weights; LeNet training via train_tfjs_lenet.mjs (its own weights and data: the
//     wasm backend has no convolution weight gradient, so that script rewrites the gradients).
// Outputs are compared where the weights are the same: logits for inference, the first step's
// loss and first-layer weight gradient for training; PyTorch also runs that first step in float64,
// and a training row's match cell says how far each float32 gradient is from it ("f64: ours /
// PyTorch's"): where a step is ill-conditioned (ReLU inputs within rounding of zero) both float32
// steps are far from the exact one, and the match column's 1e-3 says NO for rounding alone.
// Each thread count runs in a child process
// of its own (ONNX Runtime's thread pool is global); in it, ours and every reference take turns
// call by call (harness.mjs), so that load from elsewhere hits them alike.
import { fileURLToPath } from "node:url";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setupOrt, ortSession } from "./refs.mjs";
import { Na, onnxOf, tfjsModel, TORCH_SCRIPT } from "./from_config.mjs";
import { randn, timeInterleaved, maxAbsDiff, maxAbs, runChild, main } from "./harness.mjs";

/** Debian's python3-torch installs for this interpreter (the python3 on PATH may be another) */
let PYTHON = "/usr/bin/python3";
let SEED = 0;
const LR = 0.01, MOMENTUM = 0.9;
/** Logits match when max |ref - ours| <= 1e-4 * max |ours| (as bench/resnet18.mjs: float32 sums
 *  in other orders move them by a few 1e-6 of their scale); a training step's loss within 1e-4
 *  of it and its first-layer weight gradient within 1e-3 of the gradient's largest entry (the
 *  gradient comes back through every layer and sums over the batch: a few 1e-5 seen). A wrong
 *  layer moves them by far more. */
const TOL = { logits: 1e-4, loss: 1e-4, grad: 1e-3 };

const WORKLOADS = [
  { name: "resnet18", what: "ResNet-18 inference", train: false, zoo: "resnet18", options: {}, input: [1, 3, 224, 224] },
  { name: "resnet50", what: "ResNet-50 inference", train: false, zoo: "resnet50", options: {}, input: [1, 3, 224, 224] },
  { name: "vgg16", what: "VGG-16 inference", train: false, zoo: "vgg16", options: {}, input: [1, 3, 224, 224] },
  { name: "resnet20", what: "CIFAR ResNet-20 training step", train: true, zoo: "resnet20", options: {}, input: [32, 3, 32, 32], classes: 10 },
  { name: "resnet18-32", what: "ResNet-18 training step, 32x32", train: true, zoo: "resnet18", options: { classes: 10, inputSize: 32 }, input: [32, 3, 32, 32], classes: 10 },
  { name: "lenet", what: "LeNet training step", train: true, zoo: "lenet", options: {}, input: [64, 1, 28, 28], classes: 10 },
  // the training targets: CIFAR ResNet-20 at batch 128 (>= 450 img/s) and ResNet-18 at
  // batch 16 on 224x224 (>= 12 img/s)
  { name: "resnet20-b128", what: "CIFAR ResNet-20 training step, batch 128", train: true, zoo: "resnet20", options: {}, input: [128, 3, 32, 32], classes: 10 },
  { name: "resnet18-b16", what: "ResNet-18 training step, batch 16, 224x224", train: true, zoo: "resnet18", options: {}, input: [16, 3, 224, 224], classes: 1000 },
];

function parseArgs(argv) {
  const o = { size: 224, seed: 0, conv3x3: null, conv5x5: null, python: PYTHON, threads: [1, 2], reps: null, quick: false, only: null, torch: true, tfjs: true, ort: true, profile: false, json: false, child: false, fuse: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v;
    };
    if (a === "--quick") o.quick = true;
    else if (a === "--json") o.json = true;
    else if (a === "--profile") o.profile = true;
    else if (a === "--child") o.child = true;
    else if (a === "--no-torch") o.torch = false;
    else if (a === "--no-tfjs") o.tfjs = false;
    else if (a === "--no-ort") o.ort = false;
    else if (a === "--no-fuse") o.fuse = false;
    else if (a.startsWith("--threads")) o.threads = val().split(",").map(Number);
    else if (a.startsWith("--reps")) o.reps = Number(val());
    else if (a.startsWith("--only")) o.only = val().split(",");
    else if (a.startsWith("--python")) o.python = val();
    else if (a.startsWith("--size")) o.size = Number(val());
    else if (a.startsWith("--seed")) o.seed = Number(val());
    else if (a.startsWith("--conv3x3")) o.conv3x3 = val();
    else if (a.startsWith("--conv5x5")) o.conv5x5 = val();
    else if (a === "-h" || a === "--help") usage();
    else usage(`unknown argument ${a}`);
  }
  if (o.threads.some((t) => !Number.isInteger(t) || t < 1)) usage("--threads takes positive integers, e.g. 1,2");
  o.reps ??= o.quick ? 2 : 3;
  PYTHON = o.python;
  if (!Number.isInteger(o.size) || o.size < 32) usage("--size takes an integer >= 32");
  if (!Number.isInteger(o.seed) || o.seed < 0) usage("--seed takes an integer >= 0");
  SEED = o.seed;
  if (!Number.isInteger(o.reps) || o.reps < 1) usage("--reps takes an integer >= 1");
  const names = WORKLOADS.map((w) => w.name);
  for (const n of o.only ?? []) if (!names.includes(n)) usage(`--only: unknown workload '${n}' (${names.join(", ")})`);
  return o;
}

function usage(msg) {
  if (msg) console.error(`models.mjs: ${msg}`);
  console.error("usage: node bench/models.mjs [--threads 1,2] [--reps N] [--quick] [--only NAME,...] [--no-torch] [--no-tfjs] [--no-ort] [--python PATH] [--size N] [--seed N] [--conv3x3 MODE] [--conv5x5 MODE] [--no-fuse] [--profile] [--json]");
  process.exit(msg ? 2 : 0);
}

// ================================================================ ours

const size = (shape) => shape.reduce((a, b) => a * b, 1);
const inputOf = (w) => randn(size(w.input), 7 + 1000 * SEED);
const labelsOf = (w) => Array.from({ length: w.input[0] }, (_, i) => (i * 7) % w.classes);

/** Our model (seeded), its weights as plain arrays, and a runner: a forward pass in eval mode
 *  (logits read back) or a training step (zeroGrad(true), forward, cross-entropy, backward,
 *  SGD with momentum; the loss read back). check: the outputs compared with the references. */
function oursRunner(lib, w) {
  lib.manualSeed(SEED);
  const model = lib.createModel(w.zoo, w.options);
  const X = lib.tensor(inputOf(w), w.input);
  const weights = new Map([...model.stateDict()].map(([k, t]) => [k, { shape: [...t.shape], data: Float32Array.from(t.toArray()) }]));
  const config = model.config();
  const shapes = new Map(lib.summary(model, w.input).rows.map((r) => [r.name, r]));
  if (!w.train) {
    model.eval();
    const forward = () => lib.noGrad(() => lib.tidy(() => model.call(X).toArray()));
    return { name: "simdnet", model, weights, config, shapes, run: forward, check: () => ({ logits: Float32Array.from(forward()) }), dispose: () => (X.dispose(), model.dispose()) };
  }
  model.train();
  const Y = lib.tensor(labelsOf(w), [w.input[0]]);
  const opt = lib.createOptimizer("sgd", model.parameters(), { lr: LR, momentum: MOMENTUM });
  const [gradName, first] = model.namedParameters()[0];
  const step = () =>
    lib.tidy(() => {
      opt.zeroGrad(true);
      const loss = lib.cross_entropy(model.call(X), Y);
      loss.backward();
      const g = Float32Array.from(first.grad.toArray());
      opt.step();
      return { loss: loss.item(), grad: g };
    });
  // the check is the first step from the seeded weights: before any timed step changes them
  const firstStep = step();
  return { name: "simdnet", model, weights, config, shapes, gradName, run: step, check: () => firstStep, dispose: () => (X.dispose(), Y.dispose(), model.dispose()) };
}

// ================================================================ ONNX Runtime Web

async function ortRunner(w, ours, threads) {
  if (w.train) throw new Na("inference only (ONNX Runtime Web has no training)");
  const ort = await setupOrt(threads);
  const session = await ortSession(ort, onnxOf(w, ours));
  const X = new ort.Tensor("float32", inputOf(w), w.input);
  const forward = async () => {
    const r = await session.run({ input: X });
    const d = r[session.outputNames[0]].data;
    return d;
  };
  return { name: "ort-wasm", run: forward, check: async () => ({ logits: Float32Array.from(await forward()) }), dispose: () => session.release() };
}

// ================================================================ TF.js

async function tfjsRunner(w, ours, threads) {
  if (threads !== 1) throw new Na("one thread in Node: see its 1-thread row");
  if (w.train && w.zoo !== "lenet") throw new Na("training: TF.js's wasm backend has no convolution weight gradient (Conv2DBackpropFilter)");
  if (w.train) {
    // train_tfjs_lenet.mjs: the same net and batch, its own weights and data
    const { tfjsLenetBench } = await import("./train_tfjs_lenet.mjs");
    return { name: "tfjs-wasm", own: (reps) => tfjsLenetBench({ batch: w.input[0], warmup: 1, batches: reps, lr: LR }), noMatch: "own weights and data (train_tfjs_lenet.mjs)" };
  }
  const { tf, model } = await tfjsModel(w, ours);
  const [N, C, H, W] = w.input;
  const x = inputOf(w), nhwc = new Float32Array(x.length);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let p = 0; p < H * W; p++) nhwc[(n * H * W + p) * C + c] = x[(n * C + c) * H * W + p];
  const X = tf.tensor4d(nhwc, [N, H, W, C]);
  const forward = () => {
    const y = model.predict(X);
    const d = y.dataSync();
    y.dispose();
    return d;
  };
  return { name: "tfjs-wasm", run: forward, check: () => ({ logits: Float32Array.from(forward()) }), dispose: () => (X.dispose(), model.dispose()) };
}

// ================================================================ PyTorch

/** Our config, weights and input to a temp folder; PyTorch in a child process that builds the
 *  net, sends the first call's outputs, then makes one call per request: a runner that takes
 *  turns with ours like the in-process references (its time includes a pipe round trip, well
 *  under a millisecond). */
async function torchRunner(w, ours, threads) {
  const dir = mkdtempSync(join(tmpdir(), "simdnet-models-"));
  const parts = [], weights = [];
  let offset = 0;
  const add = (name, shape, data) => {
    parts.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    const e = { name, shape, offset, size: data.length };
    offset += data.length;
    return e;
  };
  for (const [k, v] of ours.weights) if (!k.endsWith("num_batches_tracked")) weights.push(add(k, v.shape, v.data));
  const input = add("input", w.input, inputOf(w));
  writeFileSync(join(dir, "blob.f32"), Buffer.concat(parts));
  const manifest = { threads, train: w.train, lr: LR, momentum: MOMENTUM, config: ours.config, weights, input, blob: join(dir, "blob.f32"), labels: w.train ? labelsOf(w) : null, gradName: ours.gradName ?? null };
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
  const cp = spawn(PYTHON, ["-c", TORCH_SCRIPT, join(dir, "manifest.json")], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, OMP_NUM_THREADS: String(threads) } });
  let stderr = "", ended = null;
  const waiting = [], lines = [];
  cp.stderr.on("data", (d) => (stderr += d));
  const fail = (e) => {
    ended = e;
    for (const p of waiting.splice(0)) p.reject(e);
  };
  cp.on("error", (e) => fail(new Na(`${PYTHON}: ${e.message}`)));
  cp.on("exit", (code) => {
    const last = stderr.trim().split("\n").pop() ?? "";
    fail(/No module named 'torch'/.test(last) ? new Na("python3-torch is not installed (apt-get install python3-torch)") : new Error(`PyTorch exited (${code}): ${last}`));
  });
  createInterface({ input: cp.stdout }).on("line", (l) => (waiting.length ? waiting.shift().resolve(l) : lines.push(l)));
  const next = () => (lines.length ? Promise.resolve(lines.shift()) : ended ? Promise.reject(ended) : new Promise((resolve, reject) => waiting.push({ resolve, reject })));
  const dispose = () => {
    cp.stdin.end();
    rmSync(dir, { recursive: true, force: true });
  };
  let first;
  try {
    first = JSON.parse(await next());
  } catch (e) {
    dispose();
    throw e;
  }
  const check = { logits: first.logits && Float32Array.from(first.logits), loss: first.loss, grad: first.grad && Float32Array.from(first.grad),
    loss64: first.loss64, grad64: first.grad64 && Float64Array.from(first.grad64) };
  return {
    name: "pytorch",
    version: first.torch,
    threads: first.threads,
    run: async () => {
      cp.stdin.write("run\n");
      await next();
    },
    check: () => check,
    dispose,
  };
}

// ================================================================ comparing

/** Whether a reference's outputs agree with ours, and by how much (relative to our scale). */
function compare(train, ours, ref) {
  if (!train) {
    const err = maxAbsDiff(ref.logits, ours.logits) / maxAbs(ours.logits);
    return { match: err <= TOL.logits, err };
  }
  const lossErr = Math.abs(ref.loss - ours.loss) / Math.max(1, Math.abs(ours.loss));
  const gradErr = maxAbsDiff(ref.grad, ours.grad) / maxAbs(ours.grad);
  const r = { match: lossErr <= TOL.loss && gradErr <= TOL.grad, err: Math.max(lossErr, gradErr) };
  if (ref.grad64) {
    r.ours64 = maxAbsDiff(ref.grad64, ours.grad) / maxAbs(ref.grad64);
    r.ref64 = maxAbsDiff(ref.grad64, ref.grad) / maxAbs(ref.grad64);
  }
  return r;
}

// ================================================================ child: one thread count

async function child(o) {
  const threads = o.threads[0];
  const lib = await import("../dist/index.js");
  const info = await lib.init({ threads, ...(o.conv3x3 ? { conv3x3: o.conv3x3 } : {}), ...(o.conv5x5 ? { conv5x5: o.conv5x5 } : {}), ...(o.fuse ? {} : { fuse: false }) });
  const emit = (row) => process.stdout.write(JSON.stringify(row) + "\n");
  for (const listed of WORKLOADS.filter((x) => !o.only || o.only.includes(x.name))) {
    const w = listed.train ? listed : { ...listed, input: [1, 3, o.size, o.size] };
    const base = { bench: "models", workload: w.name, what: w.what, threads, input: w.input, build: info.build };
    const ours = oursRunner(lib, w);
    const oursOut = ours.check();
    const refs = [];
    const status = new Map();
    const makers = [
      ["pytorch", o.torch, () => torchRunner(w, ours, threads)],
      ["ort-wasm", o.ort, () => ortRunner(w, ours, threads)],
      ["tfjs-wasm", o.tfjs, () => tfjsRunner(w, ours, threads)],
    ];
    for (const [name, on, make] of makers) {
      if (!on) continue;
      try {
        refs.push(await make());
      } catch (e) {
        status.set(name, e instanceof Na ? `n/a: ${e.message}` : `error: ${e.message}`);
        if (!(e instanceof Na)) console.error(e);
      }
    }
    const matches = new Map();
    for (const r of refs.filter((r) => r.check))
      try {
        matches.set(r.name, compare(w.train, oursOut, await r.check()));
      } catch (e) {
        status.set(r.name, `error: ${e.message}`);
        r.failed = e;
      }
    // ours and the in-process references take turns, one call per sample
    const timed = [ours, ...refs.filter((r) => r.run && !r.failed)];
    const times = await timeInterleaved(timed, o, { maxReps: o.reps, minReps: o.reps, warmMs: 0, minWarmCalls: 1, minSampleMs: 0, settleMs: 25, budgetMs: Infinity });
    const oursMs = times[0];
    emit({ ...base, runtime: "simdnet", threads_used: info.threads, ms: oursMs, status: "ok" });
    timed.slice(1).forEach((r, i) => {
      const m = matches.get(r.name);
      const extra = r.version ? { version: r.version, threads_used: r.threads } : {};
      emit({ ...base, runtime: r.name, ms: times[i + 1], ratio: times[i + 1] / oursMs, match: m?.match ?? null, err: m?.err ?? null, ours64: m?.ours64 ?? null, ref64: m?.ref64 ?? null, status: r.failed ? `error: ${r.failed.message}` : "ok", ...extra });
    });
    for (const r of refs.filter((r) => r.own)) {
      const res = await r.own(o.reps);
      emit({ ...base, runtime: r.name, ms: res.msPerBatch, ratio: res.msPerBatch / oursMs, match: null, status: `ok; outputs n/a: ${r.noMatch}` });
    }
    for (const [name, s] of status) emit({ ...base, runtime: name, ms: null, status: s });
    if (o.profile) {
      const p = lib.profile(() => ours.run());
      console.error(`\nsn.profile of one ${w.what} (${w.input.join("x")}), ${info.threads} thread(s):\n${String(p)}`);
    }
    for (const r of refs) r.dispose?.();
    ours.dispose();
  }
  lib.dispose();
}

// ================================================================ parent: the table

const fmtMs = (v) => (v == null ? "" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const REFS = [["pytorch", "PyTorch"], ["ort-wasm", "ORT Web"], ["tfjs-wasm", "TF.js wasm"]];

function cell(r) {
  if (!r) return ["", "", ""];
  if (r.ms == null) return ["n/a", "", ""];
  let match = r.match === true ? `ok ${r.err.toExponential(0)}` : r.match === false ? `NO ${r.err.toExponential(1)}` : "n/a";
  if (r.ours64 != null) match += ` (f64: ${r.ours64.toExponential(0)} / ${r.ref64.toExponential(0)})`;
  return [fmtMs(r.ms), `${r.ratio.toFixed(2)}x`, match];
}

async function parent(o) {
  const self = fileURLToPath(import.meta.url);
  const rows = [];
  for (const t of o.threads) {
    const args = ["--child", "--threads", String(t), "--reps", String(o.reps)];
    for (const [k, on] of [["--quick", o.quick], ["--profile", o.profile], ["--no-torch", !o.torch], ["--no-tfjs", !o.tfjs], ["--no-ort", !o.ort]]) if (on) args.push(k);
    if (o.only) args.push("--only", o.only.join(","));
    args.push("--python", o.python, "--size", String(o.size), "--seed", String(o.seed));
    if (o.conv3x3) args.push("--conv3x3", o.conv3x3);
    if (o.conv5x5) args.push("--conv5x5", o.conv5x5);
    if (!o.fuse) args.push("--no-fuse");
    const code = await runChild(self, args, (line, r) => {
      if (o.json) console.log(line);
      rows.push(r);
    });
    if (code) console.error(`models.mjs: the ${t}-thread run exited with code ${code}`);
  }
  if (o.json) return;
  const ours = rows.filter((r) => r.runtime === "simdnet");
  const head = ["workload", "input", "thr", "simdnet ms", ...REFS.flatMap(([, n]) => [`${n} ms`, "ratio", "match"])];
  const body = ours.map((r) => {
    const of = (name) => rows.find((x) => x.workload === r.workload && x.threads === r.threads && x.runtime === name);
    return [r.what, r.input.join("x"), String(r.threads), fmtMs(r.ms), ...REFS.flatMap(([name]) => cell(of(name)))];
  });
  const wd = head.map((_, c) => Math.max(...[head, ...body].map((x) => x[c].length)));
  const line = (x) => "| " + x.map((v, c) => (c >= 2 && !/match/.test(head[c]) ? v.padStart(wd[c]) : v.padEnd(wd[c]))).join(" | ") + " |";
  console.log(`simdnet beside PyTorch, ONNX Runtime Web and TF.js: median ms of ${o.reps} call(s) after one to warm up; ratio = their ms / ours (> 1: we are faster)`);
  console.log(line(head));
  console.log("|" + wd.map((w) => "-".repeat(w + 2)).join("|") + "|");
  for (const b of body) console.log(line(b));
  const notes = new Map();
  for (const r of rows) if (r.runtime !== "simdnet" && r.status !== "ok") notes.set(`${r.runtime}: ${r.status}`, (notes.get(`${r.runtime}: ${r.status}`) ?? []).concat(`${r.workload}/${r.threads}`));
  const torch = rows.find((r) => r.runtime === "pytorch" && r.version);
  console.log(`\nmatch: ours and theirs from the same weights and input: "ok E" with E the largest difference relative to our scale (logits within ${TOL.logits} of max |logit|; training: the first step's loss within ${TOL.loss}, the first layer's weight gradient within ${TOL.grad} of its largest entry)`);
  if (rows.some((r) => r.ours64 != null))
    console.log(`(f64: A / B) on a training row: PyTorch ran the same first step in float64 too; A is our first-layer gradient's largest difference from it, B PyTorch's float32 one's (relative to its largest entry): how far each float32 step is from the exact one`);
  if (torch) console.log(`PyTorch ${torch.version} (${PYTHON}), torch.set_num_threads(thr); TF.js wasm runs one thread in Node; ORT Web the same thread count as ours`);
  for (const [n, where] of notes) console.log(`${n} (${where.join(", ")})`);
  const bad = rows.filter((r) => r.match === false || String(r.status).startsWith("error"));
  process.exit(bad.length ? 1 : 0);
}

await main(parseArgs(process.argv.slice(2)), child, parent);
