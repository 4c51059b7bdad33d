// The demo page's main thread: UI only. Everything simdnet does runs in demo/worker.js (a
// module worker): a page's main thread may not block, so it could only get one thread, and a
// training step there would freeze the page. This file sends commands and draws what comes back.
import { Pad, showDigit } from "./draw.js";
import { drawPlot } from "./plot.js";
import { setupBench } from "./bench.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const cores = Math.min(navigator.hardwareConcurrency || 1, 64);

// The page's state, readable by the tests and bench/browser.mjs (which do not change it).
const demo = (window.demo = { ready: false, running: false, info: null, steps: [], epochs: [], probs: null, mapsShown: 0, errors: [], firstStepAt: null, saved: 0, loaded: 0 });

function showError(message) {
  demo.errors.push(message);
  const el = $("status");
  el.textContent = message;
  el.className = "status error";
}
function showStatus(message) {
  const el = $("status");
  el.textContent = message;
  el.className = "status";
}

// ---- talking to the worker: one reply per command, errors as rejections ----
const appStartAt = performance.now();
const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
const pending = new Map();
let nextId = 1;
function request(cmd, args = {}, transfer = [], timeoutMs = 0) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, cmd });
    worker.postMessage({ id, cmd, ...args }, transfer);
    // the page must never wait forever (the engine's own start is bounded too)
    if (timeoutMs)
      setTimeout(() => {
        if (!pending.delete(id)) return;
        reject(new Error(`${cmd} did not answer within ${timeoutMs / 1000} s; reload the page`));
      }, timeoutMs);
  });
}
worker.onmessage = (e) => {
  const m = e.data;
  if (m.type === "reply") {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error) p?.reject(new Error(m.error));
    else p?.resolve(m);
  } else events[m.type]?.(m);
};
// A worker that fails to load or dies must not leave the page waiting: fail every request.
worker.onerror = (e) => {
  e.preventDefault?.();
  const msg = e.message ? `the worker failed: ${e.message}` : "the worker could not start (is dist/ built? `npm run demo` builds it)";
  showError(msg);
  for (const p of pending.values()) p.reject(new Error(msg));
  pending.clear();
};

// ---- engine info ----
function showInfo(info) {
  demo.info = info;
  const yes = (b) => (b ? "yes" : "no");
  $("engine").innerHTML = "";
  const items = [
    // (the title says why this many: asked for, or what init() measured of the reported cores)
    [`${info.threads} thread${info.threads > 1 ? "s" : ""}`, true, info.threadsReason],
    [`build: ${info.build === "relaxed" ? "relaxed SIMD" : "SIMD"}`, true, info.buildReason],
    [`SIMD: ${yes(info.simd)}`, info.simd],
    [`relaxed SIMD: ${yes(info.relaxedSimd)}`, info.relaxedSimd],
    [`cross-origin isolated: ${yes(info.crossOriginIsolated)}`, info.crossOriginIsolated],
  ];
  for (const [text, ok, title] of items) {
    const s = document.createElement("span");
    s.className = ok ? "badge" : "badge off";
    s.textContent = text;
    if (title) s.title = title;
    $("engine").append(s);
  }
  $("fallback").textContent = info.fallback ? `Fallback: ${info.fallback}.` : "";
  $("fallback").hidden = !info.fallback;
  $("threads").disabled = !threadsPossible();
  $("threads").title = threadsPossible() ? "" : `one thread: ${info.fallback ?? "no shared memory"}`;
  // the device selector: enabled where init found a WebGPU adapter, else it says why not
  const gpu = info.webgpu;
  $("device").disabled = !gpu?.available;
  $("device").title = gpu?.available ? `WebGPU adapter: ${gpu.adapter}` : `no WebGPU: ${gpu?.reason ?? "not started"}`;
  showGpuNote(gpu?.available ? (gpu.isFallback ? `WebGPU: ${gpu.adapter} is a software adapter (correct, but slower than the CPU engine).` : "") : `No WebGPU: ${gpu?.reason ?? "not started"}.`);
}

function showGpuNote(text) {
  $("gpu-note").textContent = text;
  $("gpu-note").hidden = !text;
}

$("device").onchange = async () => {
  const want = $("device").value;
  $("device").disabled = true;
  try {
    const r = await request("device", { device: want });
    $("device").value = r.device;
    demo.device = r.device;
  } catch (e) {
    $("device").value = demo.device ?? "cpu";
    showError(e.message);
  } finally {
    $("device").disabled = !demo.info?.webgpu?.available;
  }
};

// "all": no count, so init() times the browser's reported count and keeps what adds speed
// (Safari reports 4 on two cores); the threads badge's title says what it found
function threadsWanted() {
  const v = $("threads").value;
  return v === "all" ? undefined : Number(v);
}

$("threads").querySelector('option[value="all"]').textContent = `all useful cores (of ${cores} reported)`;
if (params.get("threads")) $("threads").value = params.get("threads");
// Threads need shared memory: off until init() says whether the worker has it (a cross-origin
// isolated page may still have no SharedArrayBuffer: WebKitGTK)
const threadsPossible = () => !!demo.info?.sharedMemory;
$("threads").disabled = true;
$("threads").onchange = async () => {
  $("threads").disabled = true;
  try {
    const r = await request("threads", { threads: threadsWanted() });
    showInfo(r.info);
    $("device").value = demo.device = r.device;
  } catch (e) {
    showError(e.message);
  } finally {
    $("threads").disabled = !threadsPossible();
  }
};

// ---- training: plots and numbers ----
let smooth = null;
let drawQueued = false;
function redraw() {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => {
    drawQueued = false;
    const s = demo.steps, ep = demo.epochs;
    const per = ep.length ? s.length / ep.length : 1;
    const atStep = (r) => r.epoch * (demo.stepsPerEpoch || per);
    // the loss axis: at least 2.5 (ln 10 = 2.3 is where an untrained 10-class model starts), in halves
    const top = Math.max(2.5, Math.ceil(2 * Math.max(...s.slice(0, 5).map((r) => r.loss))) / 2);
    drawPlot($("plot-loss"), [
      { label: "per step", color: "#b9c4d4", width: 1, points: s.map((r) => [r.step, r.loss]) },
      { label: "smoothed", color: "#2f6fd0", width: 2, points: s.map((r) => [r.step, r.smooth]) },
      { label: "train, per epoch", color: "#2a9d5c", width: 1.5, dots: true, points: ep.map((r) => [atStep(r), r.trainLoss]) },
      { label: "test, per epoch", color: "#d2552a", width: 1.5, dots: true, points: ep.map((r) => [atStep(r), r.testLoss]) },
    ], { title: "loss", yMax: top, ticks: top <= 5 ? Math.round(top * 2) : 5 });
    drawPlot($("plot-acc"), [
      { label: "batch, smoothed", color: "#2f6fd0", width: 2, points: s.map((r) => [r.step, r.smoothAcc]) },
      { label: "train, per epoch", color: "#2a9d5c", width: 1.5, dots: true, points: ep.map((r) => [atStep(r), r.trainAcc]) },
      { label: "test, per epoch", color: "#d2552a", width: 1.5, dots: true, points: ep.map((r) => [atStep(r), r.testAcc]) },
    ], { title: "accuracy", yMin: 0, yMax: 1, yFormat: (v) => `${Math.round(v * 100)}%` });
  });
}

function setStat(id, text) {
  $(id).textContent = text;
}

const events = {
  state(m) {
    demo.running = m.running;
    $("train").disabled = m.running;
    $("stop").disabled = !m.running;
    $("train").textContent = demo.steps.length ? "Continue" : "Train";
    showStatus(m.running ? "training…" : demo.steps.length ? "stopped" : "ready");
  },
  step(m) {
    if (demo.firstStepAt === null) demo.firstStepAt = performance.now();
    smooth = smooth ? { loss: 0.9 * smooth.loss + 0.1 * m.loss, acc: 0.9 * smooth.acc + 0.1 * m.acc, ips: 0.9 * smooth.ips + (0.1 * m.size * 1000) / m.wallMs } : { loss: m.loss, acc: m.acc, ips: (m.size * 1000) / m.wallMs };
    demo.steps.push({ ...m, smooth: smooth.loss, smoothAcc: smooth.acc });
    setStat("stat-step", String(m.step));
    setStat("stat-epoch", m.epoch.toFixed(2));
    setStat("stat-loss", smooth.loss.toFixed(3));
    setStat("stat-acc", `${(smooth.acc * 100).toFixed(1)}%`);
    setStat("stat-ips", `${Math.round(smooth.ips)}`);
    $("stat-ips").title = `step alone (forward, backward, update): ${Math.round((m.size * 1000) / m.ms)} images/s on ${m.threads} thread(s)`;
    redraw();
  },
  epoch(m) {
    demo.epochs.push(m);
    setStat("stat-test", `${(m.testAcc * 100).toFixed(1)}% (loss ${m.testLoss.toFixed(3)})`);
    redraw();
  },
  digit(m) {
    showProbs(m.probs);
    if (m.maps) showMaps(m.maps);
  },
  error(m) {
    showError(m.message);
  },
  /** the worker moved training to another device by itself (a lost GPU device) */
  device(m) {
    demo.device = m.device;
    $("device").value = m.device;
    showGpuNote(m.reason);
  },
};

$("train").onclick = () => request("train").catch((e) => showError(e.message));
$("stop").onclick = () => request("stop").catch((e) => showError(e.message));
$("reset").onclick = async () => {
  try {
    await request("reset");
    demo.steps = [];
    demo.epochs = [];
    smooth = null;
    for (const id of ["stat-step", "stat-epoch", "stat-loss", "stat-acc", "stat-ips", "stat-test"]) setStat(id, "–");
    $("train").textContent = "Train";
    redraw();
    showStatus("a new, untrained model");
    sendDigit(true);
  } catch (e) {
    showError(e.message);
  }
};

// ---- save and load ----
$("save").onclick = async () => {
  try {
    const r = await request("save");
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([r.bytes], { type: "application/octet-stream" }));
    a.download = r.name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    demo.saved++;
    showStatus(`saved ${r.name} (${(r.bytes.length / 1e6).toFixed(1)} MB)`);
  } catch (e) {
    showError(e.message);
  }
};
/** A model from the file picker or dropped on the page: the demo's .safetensors, saveModel's
 *  .json + .safetensors, or an .onnx image classifier. */
async function loadFiles(list) {
  if (!list.length) return;
  try {
    const files = await Promise.all(list.map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })));
    const r = await request("load", { files }, files.map((f) => f.bytes.buffer));
    demo.loaded++;
    const n = r.meta.normalize;
    showStatus(`loaded ${list.map((f) => f.name).join(" + ")}` + (r.meta.onnx ? ` (an ONNX file says nothing about input normalisation: the drawing goes in as (x - ${n.mean[0]}) / ${n.std[0]}, as this page trains)` : ""));
    await sendDigit(true);
  } catch (e) {
    showError(e.message);
  }
}
$("load").onchange = () => {
  const list = [...$("load").files];
  $("load").value = "";
  return loadFiles(list);
};
// drop a model file anywhere on the page
document.addEventListener("dragover", (e) => {
  if (e.dataTransfer?.types.includes("Files")) e.preventDefault();
});
document.addEventListener("drop", (e) => {
  if (!e.dataTransfer?.files.length) return;
  e.preventDefault();
  loadFiles([...e.dataTransfer.files]);
});

// ---- drawing: probabilities as you draw, the maps when a stroke ends ----
const bars = [];
for (let k = 0; k < 10; k++) {
  const row = document.createElement("div");
  row.className = "bar";
  row.innerHTML = `<span class="digit">${k}</span><span class="track"><span class="fill"></span></span><span class="val"></span>`;
  $("probs").append(row);
  bars.push(row);
}
function showProbs(probs) {
  demo.probs = probs;
  const best = probs ? probs.indexOf(Math.max(...probs)) : -1;
  bars.forEach((row, k) => {
    const p = probs ? probs[k] : 0;
    row.querySelector(".fill").style.width = `${(p * 100).toFixed(1)}%`;
    row.querySelector(".val").textContent = probs ? `${(p * 100).toFixed(1)}%` : "";
    row.classList.toggle("best", k === best);
  });
  $("guess").textContent = probs ? `${best}` : "?";
}

const MAPS = ["saliency", "occlusion", "filters", "activations"];
function showMaps(maps) {
  for (const k of MAPS) {
    const img = $(`img-${k}`);
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    if (maps?.[k]) img.src = URL.createObjectURL(new Blob([maps[k]], { type: "image/png" }));
    else img.removeAttribute("src");
  }
  demo.mapsShown++;
}

let inflight = false, queued = null;
async function sendDigit(withMaps) {
  if (inflight) {
    queued = queued || withMaps;
    return;
  }
  const pixels = pad.digit();
  showDigit($("seen"), pixels);
  demo.pixels = pixels && Array.from(pixels);
  if (!pixels) return;
  inflight = true;
  try {
    const r = await request("predict", { pixels, maps: withMaps });
    showProbs(r.probs);
    if (r.maps) showMaps(r.maps);
  } catch (e) {
    showError(e.message);
  } finally {
    inflight = false;
    if (queued !== null) {
      const m = queued;
      queued = null;
      sendDigit(m);
    }
  }
}
const pad = new Pad($("pad"), (done) => sendDigit(done));
/** For tests: the probabilities of the drawn digit from the model as it is now. */
demo.predict = async () => {
  while (inflight) await new Promise((r) => setTimeout(r, 10));
  await sendDigit(true);
  return demo.probs;
};
$("clear").onclick = () => {
  pad.clear();
  showDigit($("seen"), null);
  showProbs(null);
  showMaps(null);
  request("forget").catch((e) => showError(e.message));
};
showProbs(null);

// ---- tabs ----
for (const b of document.querySelectorAll("nav button")) {
  b.onclick = () => {
    for (const o of document.querySelectorAll("nav button")) o.setAttribute("aria-selected", String(o === b));
    for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== `tab-${b.dataset.tab}`;
    if (b.dataset.tab === "play") redraw();
  };
}
setupBench({ stopTraining: () => (demo.running ? request("stop") : null), showError });

// ---- start ----
try {
  showStatus("loading the kernels and the digits…");
  // Ask for the threads chosen even where the page is not isolated: init() then falls back to
  // one thread and says why, which the page shows.
  // ?build=simd or ?build=relaxed forces a kernel build (bench/browser.mjs compares them)
  const r = await request("init", { threads: threadsWanted(), build: params.get("build") ?? undefined }, [], 60000);
  // where the time to the first step goes (bench/browser.mjs reports it)
  demo.timing = { ...r.timing, appStartAt, readyAt: performance.now() };
  showInfo(r.info);
  // (one thread because threads cannot run here; not when "all useful cores" measured one)
  if (r.info.threads === 1 && r.info.fallback) $("threads").value = "1";
  demo.stepsPerEpoch = Math.floor(r.train / r.batchSize);
  $("data-note").textContent = `${r.train.toLocaleString("en")} training and ${r.test.toLocaleString("en")} test digits; LeNet with ${r.params.toLocaleString("en")} parameters; batch ${r.batchSize}, SGD (lr 0.05, momentum 0.9).`;
  demo.device = "cpu";
  if (params.get("device") === "webgpu") {
    if (r.info.webgpu?.available) {
      $("device").value = "webgpu";
      demo.device = (await request("device", { device: "webgpu" })).device;
    } else showGpuNote(`?device=webgpu asked for, but there is no WebGPU here (${r.info.webgpu?.reason}): training on the CPU.`);
  }
  $("train").disabled = false;
  demo.ready = true;
  showStatus("ready: press Train, and draw a digit");
  redraw();
  if (params.has("autostart")) request("train").catch((e) => showError(e.message));
} catch (e) {
  showError(`could not start: ${e.message}`);
}
