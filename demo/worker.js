// The demo's module worker: all simdnet work happens here, off the page's main thread (which
// may not block, so only a worker gets threads). The page sends commands ({id, cmd, ...}) and
// gets one reply per command ({type: "reply", id, ...} or with `error`), plus events while
// training runs ("state", "step", "epoch", "digit").
import * as sn from "../dist/index.js";
import { Trainer, digitsFromBytes } from "./trainer.js";
import { predict, inspect } from "./inspect.js";
import { modelFileBytes, modelFromFiles, modelFromOnnx } from "./modelfile.js";

let trainer = null;
let info = null;
let running = false;
let loopDone = Promise.resolve();
/** The last drawn digit, so its predictions can follow the training. */
let digit = null;
/** The .onnx file the model came from ({name, bytes}), to rebuild it after an engine restart. */
let onnxFile = null;

const post = (msg, transfer = []) => self.postMessage(msg, transfer);

// Yield to the event loop between steps so that 'stop' (and drawing) get in. A MessageChannel
// message is not clamped like a nested setTimeout(0) (4 ms each after a few levels).
const channel = new MessageChannel();
const waiting = [];
channel.port1.onmessage = () => waiting.shift()?.();
const tick = () => new Promise((resolve) => (waiting.push(resolve), channel.port2.postMessage(0)));

async function loadDigits() {
  const url = new URL("../data/mnist-digits.bin", import.meta.url);
  const r = await fetch(url);
  if (!r.ok) throw new Error(`could not load the digits from ${url.pathname}: HTTP ${r.status} (is this page served by demo/server.mjs?)`);
  return digitsFromBytes(sn, new Uint8Array(await r.arrayBuffer()));
}

async function evaluateEpoch(record) {
  let loss = 0, correct = 0, n = 0;
  for (let i = 0; i < trainer.test.length; i += 500) {
    const c = await trainer.evaluateChunkAsync(i, 500);
    loss += c.loss;
    correct += c.correct;
    n += c.n;
    await tick();
  }
  post({ type: "epoch", ...record, testLoss: loss / n, testAcc: correct / n });
}

/** Probabilities (and maps) of the drawn digit, from the model on the CPU (on webgpu: a CPU
 *  copy of the GPU's current weights). */
async function digitResult(withMaps) {
  const model = await trainer.cpuModel();
  const probs = predict(sn, model, digit.pixels, trainer.normalize);
  if (!withMaps) return { probs };
  const cls = probs.indexOf(Math.max(...probs));
  const maps = inspect(sn, model, digit.pixels, trainer.normalize, cls, trainer.meta.batch);
  return { probs, cls, maps, transfer: Object.values(maps).map((b) => b.buffer) };
}

async function loop() {
  post({ type: "state", running: true });
  let sumLoss = 0, sumCorrect = 0, seen = 0, last = performance.now();
  try {
    while (running) {
      let r;
      if (trainer.device === "webgpu") {
        try {
          r = await trainer.stepGpu();
        } catch (e) {
          if (!/WebGPU|device was lost|webgpu engine/i.test(e.message)) throw e;
          // a lost device: go on on the CPU from the last weights the GPU gave, and say why
          await fallBackToCpu(e.message);
          continue;
        }
        if (!r) {
          await tick();
          continue;
        }
      } else r = trainer.step();
      const now = performance.now();
      sumLoss += r.loss * r.size;
      sumCorrect += r.acc * r.size;
      seen += r.size;
      // wallMs: from the end of the previous step, so batch assembly, messages and the yield count
      if (!r.noRead) post({ type: "step", step: r.step, epoch: r.epoch, loss: r.loss, acc: r.acc, ms: r.ms, wallMs: now - last, size: r.size, threads: info.threads, device: trainer.device });
      if (r.epochDone) {
        await evaluateEpoch({ epoch: trainer.epoch, trainLoss: sumLoss / seen, trainAcc: sumCorrect / seen });
        sumLoss = sumCorrect = seen = 0;
      }
      if (digit && r.step % 20 === 0) {
        const d = await digitResult(true);
        post({ type: "digit", probs: d.probs, cls: d.cls, maps: d.maps }, d.transfer);
      }
      await tick();
      last = performance.now();
    }
  } catch (e) {
    post({ type: "error", message: e.message });
  }
  running = false;
  post({ type: "state", running: false });
}

/** After a lost GPU device: the model from the CPU twin (or a fresh one), training on the CPU. */
async function fallBackToCpu(reason) {
  const twin = trainer.twin;
  trainer.twin = null;
  if (twin) trainer.adopt(twin, trainer.meta);
  else trainer.newModel();
  post({ type: "device", device: "cpu", reason: `WebGPU failed (${reason}); training goes on on the CPU${twin ? " from the last weights read from the GPU" : " with a fresh model"}` });
}

function startLoop() {
  if (running) return;
  running = true;
  loopDone = loop();
}

async function stopLoop() {
  running = false;
  await loopDone;
}

const commands = {
  async init({ threads, build }) {
    // The digits download while the kernels compile and the threads start.
    const t0 = performance.now(), since = (p) => p.then((v) => [v, performance.now() - t0]);
    // WebGPU is started too where the browser has it (info.webgpu says what it found); the
    // model starts on the CPU and moves when the page asks (device command)
    const [[got, engineMs], [digits, digitsMs]] = await Promise.all([since(sn.init({ threads, build, webgpu: true })), since(trainer ? Promise.resolve(null) : loadDigits())]);
    info = got;
    if (digits) {
      trainer = new Trainer(sn, digits.train, digits.test);
      trainer.newModel();
    }
    const timing = { engineMs, digitsMs, totalMs: performance.now() - t0 };
    return { info, timing, train: trainer.train.length, test: trainer.test.length, params: trainer.model.numParameters(), batchSize: trainer.batchSize };
  },
  /** Restart the engine with another thread count; the model and optimiser carry over. */
  async threads({ threads }) {
    const was = running;
    await stopLoop();
    // init() starts both engines again: the model comes to the CPU first, and goes back after
    const device = trainer.device;
    await trainer.toDevice("cpu");
    const snap = trainer.snapshot();
    info = await sn.init({ threads, build: info.build, webgpu: true });
    if (trainer.meta.onnx) {
      // a graph has no model.json to rebuild it from: load the file again, then its trained state
      const { model, meta } = await modelFromOnnx(sn, onnxFile);
      trainer.adopt(model, meta);
      sn.unpackCheckpoint(snap, { model, optimizer: trainer.opt }, "snapshot");
    } else trainer.restore(snap);
    if (device === "webgpu" && info.webgpu?.available) await trainer.toDevice("webgpu");
    if (was) startLoop();
    return { info, device: trainer.device };
  },
  /** Train on "cpu" or "webgpu" from here on (the model and the optimiser's state move). */
  async device({ device }) {
    if (device === "webgpu" && !info.webgpu?.available) throw new Error(`no WebGPU here: ${info.webgpu?.reason ?? "not started"}`);
    const was = running;
    await stopLoop();
    await trainer.toDevice(device);
    if (was) startLoop();
    return { device: trainer.device };
  },
  train() {
    if (trainer.meta.batch === 1)
      throw new Error(`${trainer.meta.onnx} runs one image at a time (its graph fixes the batch size in a Reshape): it classifies drawings here but cannot train; export it with a dynamic batch dimension`);
    startLoop();
    return {};
  },
  async stop() {
    await stopLoop();
    return { step: trainer.steps };
  },
  async reset() {
    // the loop may be waiting for the GPU in the middle of a step: stop it first
    const was = running, device = trainer.device;
    await stopLoop();
    trainer.reset();
    if (device === "webgpu") await trainer.toDevice("webgpu");
    if (was) startLoop();
    return { params: trainer.model.numParameters() };
  },
  /** pixels: 28x28 values in [0, 1]; maps: also the saliency / occlusion / filter images. */
  async predict({ pixels, maps }) {
    digit = { pixels: Float32Array.from(pixels) };
    return await digitResult(!!maps);
  },
  forget() {
    digit = null;
    return {};
  },
  async save() {
    if (trainer.meta.onnx) throw new Error(`the model came from ${trainer.meta.onnx}, a graph that the demo's file format does not describe; save it from the program that made it`);
    const bytes = modelFileBytes(sn, await trainer.cpuModel(), { ...trainer.meta, normalize: trainer.normalize, steps: trainer.steps });
    return { bytes, name: "simdnet-lenet.safetensors", transfer: [bytes.buffer] };
  },
  /** files: [{name, bytes}]: one .safetensors saved by the demo, the .json + .safetensors
   *  pair that saveModel (the CLI) writes, or one .onnx file. */
  async load({ files }) {
    const onnx = files.filter((f) => /\.onnx$/i.test(f.name));
    if (onnx.length && files.length > 1) throw new Error(`choose one .onnx file alone (got ${files.map((f) => f.name).join(", ")})`);
    const { model, meta } = onnx.length ? await modelFromOnnx(sn, onnx[0]) : modelFromFiles(sn, files);
    if (onnx.length) onnxFile = { name: onnx[0].name, bytes: onnx[0].bytes.slice() };
    const was = running, device = trainer.device;
    await stopLoop();
    trainer.adopt(model, meta);
    if (device === "webgpu") await trainer.toDevice("webgpu");
    if (was) startLoop();
    return { params: model.numParameters(), meta };
  },
};

// One command at a time, in order; training steps run in between.
let queue = Promise.resolve();
self.onmessage = (e) => {
  const { id, cmd, ...args } = e.data;
  queue = queue.then(async () => {
    try {
      if (!commands[cmd]) throw new Error(`unknown command ${cmd}`);
      if (cmd !== "init" && !trainer) throw new Error("the worker is not initialised yet");
      const { transfer = [], ...r } = (await commands[cmd](args)) ?? {};
      post({ type: "reply", id, ...r }, transfer);
    } catch (err) {
      post({ type: "reply", id, error: err?.message ?? String(err) });
    }
  });
};
self.onunhandledrejection = (e) => post({ type: "error", message: String(e.reason?.message ?? e.reason) });
