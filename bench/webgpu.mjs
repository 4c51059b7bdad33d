#!/usr/bin/env node
// The WebGPU engine beside TF.js's WebGPU backend (@tensorflow/tfjs-backend-webgpu, on the same
// adapter and shapes) and beside our CPU engine, in one process: SGEMM, conv (b)(c)(d) forward
// and both gradients, ResNet-18 inference, a ResNet-50 training step, LeNet training. For each:
// the median ms, GFLOP/s, the ratio to each reference, whether the outputs matched, and per call
// the dispatches, submits, GPU buffers created and bytes read back. See bench/README.md.
//
//   node bench/webgpu.mjs [--quick] [--json] [--suite gemm,conv,nets] [--no-tfjs] [--no-cpu]
//                         [--swiftshader]
//
//   --quick        small shapes and few samples (what a software adapter can run in minutes)
//   --swiftshader  use Chromium's SwiftShader Vulkan driver (no GPU needed; speed means nothing)
//
// On a software adapter (SwiftShader) the times mean little; use the counts and the checks.
import { existsSync } from "node:fs";
import { randn, timeInterleaved, maxAbsDiff, maxAbs } from "./harness.mjs";

const argv = process.argv.slice(2);
const has = (f) => argv.includes(f);
const val = (f, d) => {
  const i = argv.findIndex((a) => a === f || a.startsWith(f + "="));
  if (i < 0) return d;
  return argv[i].includes("=") ? argv[i].split("=")[1] : argv[i + 1];
};
const quick = has("--quick"), json = has("--json");
const suites = String(val("--suite", "gemm,conv,nets")).split(",");
const SWIFTSHADER = "/usr/lib/chromium/vk_swiftshader_icd.json";
if (has("--swiftshader")) {
  if (!existsSync(SWIFTSHADER)) throw new Error(`--swiftshader: ${SWIFTSHADER} not found (apt-get install chromium)`);
  process.env.VK_ICD_FILENAMES = SWIFTSHADER;
}

const sn = await import("../dist/index.js");
const info = await sn.init({ webgpu: true });
if (!info.webgpu?.available) {
  console.error(`no WebGPU: ${info.webgpu?.reason}${existsSync(SWIFTSHADER) ? " (try --swiftshader)" : ""}`);
  process.exit(1);
}
const gpu = sn.gpuEngine();
const soft = info.webgpu.isFallback;
const row = (r) => (json ? console.log(JSON.stringify(r)) : rows.push(r));
const rows = [];
if (!json) console.log(`adapter: ${info.webgpu.adapter}${soft ? " (software: times mean little)" : ""}; CPU engine: ${info.threads} threads, ${info.build} build`);

// ---- TF.js's WebGPU backend on a second Dawn instance of the same adapter ----
let tf = null;
if (!has("--no-tfjs")) {
  try {
    const { create, globals } = await import("webgpu");
    Object.assign(globalThis, globals);
    globalThis.navigator ??= {};
    if (!globalThis.navigator.gpu) Object.defineProperty(globalThis.navigator, "gpu", { value: create([]), configurable: true });
    tf = await import("@tensorflow/tfjs-core");
    await import("@tensorflow/tfjs-backend-webgpu");
    if (!(await tf.setBackend("webgpu"))) throw new Error("setBackend failed");
    await tf.ready();
  } catch (e) {
    console.error(`TF.js WebGPU unavailable: ${e.message}`);
    tf = null;
  }
}
/** TF.js: wait for the GPU (flush its queue, then onSubmittedWorkDone) */
async function tfSync() {
  const b = tf.backend();
  b.submitQueue?.();
  await b.device.queue.onSubmittedWorkDone();
}

/** per-call engine counts of one run of fn (after a warm-up call) */
async function countsOf(fn) {
  await fn();
  const s0 = { ...gpu.stats };
  await fn();
  const s = gpu.stats;
  return { dispatches: s.dispatches - s0.dispatches, submits: s.submits - s0.submits, buffers: s.buffersCreated - s0.buffersCreated, readBytes: s.bytesRead - s0.bytesRead };
}

/** times ours (GPU), TF.js and our CPU path; out() of each gives values to compare */
async function compareCase(name, flops, runners) {
  const live = runners.filter(Boolean);
  const ms = await timeInterleaved(live, { quick }, quick ? { maxReps: 3, budgetMs: 3000, warmMs: 50, minSampleMs: 1 } : {});
  const ours = live[0];
  const want = await ours.out();
  const r = { name, flops, ours_ms: ms[0], gflops: flops / ms[0] / 1e6, ...(await countsOf(ours.run)) };
  for (let i = 1; i < live.length; i++) {
    const o = live[i];
    r[`${o.name}_ms`] = ms[i];
    r[`${o.name}_ratio`] = ms[i] / ms[0];
    const got = await o.out();
    r[`${o.name}_match`] = maxAbsDiff(got, want) <= 1e-3 * Math.max(1, maxAbs(want));
  }
  row(r);
}

const t = (v, s) => sn.tensor(v, s);
const onGpu = (v, s) => t(v, s).to("webgpu");

// ---- SGEMM ----
if (suites.includes("gemm"))
  for (const n of quick ? [256, 512] : [1024, 2048, 4096]) {
    const av = randn(n * n, 1), bv = randn(n * n, 2);
    const a = onGpu(av, [n, n]), b = onGpu(bv, [n, n]);
    let c = null;
    const ours = { name: "ours", run: async () => { c?.dispose(); c = sn.matmul(a, b); await gpu.sync(); }, out: () => c.read() };
    let tc = null;
    const ta = tf?.tensor(av, [n, n]), tb = tf?.tensor(bv, [n, n]);
    const tfr = tf && { name: "tfjs", run: async () => { tc?.dispose(); tc = tf.matMul(ta, tb); await tfSync(); }, out: () => tc.data() };
    const ac = t(av, [n, n]), bc = t(bv, [n, n]);
    let cc = null;
    const cpu = !has("--no-cpu") && n <= 1024 && { name: "cpu", run: () => { cc?.dispose(); cc = sn.matmul(ac, bc); }, out: () => cc.toArray() };
    await compareCase(`sgemm ${n}^3`, 2 * n ** 3, [ours, tfr, cpu]);
  }

// ---- conv (b)(c)(d): forward, input gradient, weight gradient ----
const CONVS = [
  { id: "b", what: "VGG 3x3", N: 1, C: 64, H: 56, W: 56, O: 64, k: 3, stride: 1, pad: 1 },
  { id: "c", what: "ResNet 3x3", N: 8, C: 128, H: 28, W: 28, O: 128, k: 3, stride: 1, pad: 1 },
  { id: "d", what: "AlexNet conv1", N: 1, C: 3, H: 224, W: 224, O: 96, k: 11, stride: 4, pad: 0 },
];
if (suites.includes("conv"))
  for (const s0 of CONVS) {
    const s = quick ? { ...s0, N: 1, H: Math.min(s0.H, 28), W: Math.min(s0.W, 28), C: Math.min(s0.C, 32), O: Math.min(s0.O, 32) } : s0;
    const { N, C, H, W, O, k, stride, pad } = s;
    const OH = Math.floor((H + 2 * pad - k) / stride) + 1, OW = Math.floor((W + 2 * pad - k) / stride) + 1;
    const flops = 2 * N * O * OH * OW * C * k * k;
    const xv = randn(N * C * H * W, 3), wv = randn(O * C * k * k, 4).map((v) => v * 0.1), gv = randn(N * O * OH * OW, 5);
    const opts = { stride, padding: pad };
    const label = `conv ${s.id} ${N}x${C}x${H}x${W} ${O}x${k}x${k} s${stride}`;
    for (const pass of ["fwd", "dx", "dw"]) {
      const mk = (dev) => {
        const put = (v, sh) => (dev === "gpu" ? onGpu(v, sh) : t(v, sh));
        const x = put(xv, [N, C, H, W]), w = put(wv, [O, C, k, k]), g = put(gv, [N, O, OH, OW]);
        let y = null;
        const run = () => {
          y?.dispose();
          y = pass === "fwd" ? sn.conv2d(x, w, null, opts) : pass === "dx" ? sn.conv2d_input([N, C, H, W], w, g, opts) : sn.conv2d_weight(x, [O, C, k, k], g, opts);
        };
        return dev === "gpu"
          ? { name: "ours", run: async () => { run(); await gpu.sync(); }, out: () => y.read() }
          : { name: "cpu", run, out: () => y.toArray() };
      };
      let tfr = null;
      if (tf) {
        // TF.js is NHWC with HWIO filters; outputs are transposed back to NCHW/OIHW to compare
        const x = tf.tensor(xv, [N, C, H, W]).transpose([0, 2, 3, 1]);
        const w = tf.tensor(wv, [O, C, k, k]).transpose([2, 3, 1, 0]);
        const g = tf.tensor(gv, [N, O, OH, OW]).transpose([0, 2, 3, 1]);
        const tfPad = pad === 0 ? "valid" : [[0, 0], [pad, pad], [pad, pad], [0, 0]];
        let y = null;
        tfr = {
          name: "tfjs",
          run: async () => {
            y?.dispose();
            y = pass === "fwd" ? tf.conv2d(x, w, stride, tfPad) : pass === "dx" ? tf.conv2dTranspose(g, w, [N, H, W, C], stride, tfPad) : tf.conv2dBackpropFilter?.(x, g, [k, k, C, O], stride, tfPad) ?? tf.grads((xx, ww) => tf.conv2d(xx, ww, stride, tfPad).mul(g).sum())([x, w])[1];
            await tfSync();
          },
          out: async () => (pass === "dw" ? y.transpose([3, 2, 0, 1]) : y.transpose([0, 3, 1, 2])).data(),
        };
      }
      await compareCase(`${label} ${pass}`, flops, [mk("gpu"), tfr, !has("--no-cpu") && mk("cpu")]);
    }
  }

// ---- whole nets ----
async function trainStep(model, N, C, S, classes, steps) {
  const x = onGpu(randn(N * C * S * S, 7), [N, C, S, S]);
  const y = onGpu(Float32Array.from({ length: N }, (_, i) => i % classes), [N]);
  const opt = new sn.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const step = async () => {
    sn.tidy(() => {
      opt.zeroGrad(true);
      const loss = sn.cross_entropy(model.forward(x), y);
      loss.backward();
      opt.step();
    });
    await gpu.sync();
  };
  return step;
}

if (suites.includes("nets")) {
  // ResNet-18 inference
  for (const N of [1, 16]) {
    const S = quick ? 64 : 224, n = quick ? Math.min(N, 2) : N;
    const model = sn.models.resnet18().to("webgpu");
    model.eval();
    const x = onGpu(randn(n * 3 * S * S, 8), [n, 3, S, S]);
    let y = null;
    const ours = { name: "ours", run: async () => { y?.dispose(); y = sn.noGrad(() => model.forward(x)); await gpu.sync(); }, out: () => y.read() };
    const flops = 2 * sn.summary(model, [n, 3, S, S]).totalMacs;
    await compareCase(`resnet18 inference b${n} ${S}x${S}`, flops, [ours]);
    model.dispose();
  }
  // ResNet-50 training step
  {
    const S = quick ? 64 : 224, N = quick ? 2 : 32;
    const model = sn.models.resnet50().to("webgpu");
    const step = await trainStep(model, N, 3, S, 1000);
    const flops = 3 * 2 * sn.summary(model, [N, 3, S, S]).totalMacs;
    await compareCase(`resnet50 training step b${N} ${S}x${S}`, flops, [{ name: "ours", run: step, out: async () => new Float32Array(0) }]);
    model.dispose();
  }
  // LeNet training step, batch 64
  {
    const model = sn.models.lenet({ classes: 10 }).to("webgpu");
    const step = await trainStep(model, 64, 1, 28, 10);
    const flops = 3 * 2 * sn.summary(model, [64, 1, 28, 28]).totalMacs;
    await compareCase("lenet training step b64", flops, [{ name: "ours", run: step, out: async () => new Float32Array(0) }]);
    model.dispose();
  }
}

if (!json) {
  const f = (v, d = 2) => (v == null ? "" : v.toFixed(d));
  console.log(["case", "ours ms", "GFLOP/s", "tfjs ms", "x", "ok", "cpu ms", "x", "ok", "disp", "subm", "bufs", "read B"].join("\t"));
  for (const r of rows)
    console.log([r.name, f(r.ours_ms), f(r.gflops, 1), f(r.tfjs_ms), f(r.tfjs_ratio), r.tfjs_match ?? "", f(r.cpu_ms), f(r.cpu_ratio), r.cpu_match ?? "", r.dispatches, r.submits, r.buffers, r.readBytes].join("\t"));
}
sn.dispose();
process.exit(0);
