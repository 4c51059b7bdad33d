#!/usr/bin/env node
// The demo page in a browser (chromium by default; firefox, webkit: test/browser/drivers.mjs),
// measured:
//  (a) LeNet training throughput in the page's worker, batch 64, 2 threads, against the same
//      training code (demo/trainer.js) on the same data in Node. As in bench/train_lenet.mjs a
//      step is forward, cross-entropy, backward and the SGD update, and the figure is the median
//      over timed steps after warm-up; "wall" adds what surrounds a step (assembling the batch,
//      and in the page posting the result and yielding to the worker's event loop). Browser and
//      Node rounds alternate, so load from other processes hits both alike.
//  (b) time from navigation to the first training step done (the page started with ?autostart):
//      fetching the page, the library and its .wasm, compiling, starting the worker and its
//      threads, fetching and preparing the digits, building LeNet, one step.
//  (c) download size of the library: gzip -9 of dist/index.js and of the .wasm the page fetched
//      (and, for reference, what a minified bundle would be).
// Targets (reported, not asserted): (a) within 15% of Node, (b) under 2 s, (c) under 150 KB.
//
// Node runs the build and thread count the page got. WebKitGTK has no SharedArrayBuffer: one
// thread there.
//
//   node bench/browser.mjs [--browser chromium|firefox|webkit|all] [--build auto|relaxed|simd|both]
//                          [--threads 2] [--steps 30] [--warmup 5] [--rounds 2] [--json]
// --browser all runs each installed browser in turn and prints one line each; with --build both,
// the relaxed and the SIMD build forced in turn (where the browser has relaxed SIMD).
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import * as sn from "../dist/index.js";
import { Trainer, digitsFromBytes } from "../demo/trainer.js";
import { startServer } from "../test/browser/launch.mjs";
import { launch } from "../test/browser/drivers.mjs";

const argv = process.argv.slice(2);
const str = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const opt = (name, def) => Number(str(name, def));
const steps = opt("steps", 30), warmup = opt("warmup", 5), rounds = opt("rounds", 2), THREADS = opt("threads", 2);
const BROWSER = str("browser", "chromium"), BUILD = str("build", "auto");
const WAIT = 120000;
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const summarise = (recs) => {
  const timed = recs.slice(warmup, warmup + steps);
  const ms = median(timed.map((r) => r.ms)), wall = median(timed.map((r) => r.wallMs));
  return { ms, wallMs: wall, imagesPerSec: (64 * 1000) / ms, wallImagesPerSec: (64 * 1000) / wall };
};

if (BROWSER === "all") await allBrowsers();

/** --browser all: each installed browser in turn (a child process each, --json), with --build
 *  both: the relaxed and the SIMD build forced in turn where the browser has both; then one table. */
async function allBrowsers() {
  const { spawnSync } = await import("node:child_process");
  const { missing } = await import("../test/browser/drivers.mjs");
  const rest = argv.filter((a, i) => !["--browser", "--build", "--json"].includes(a) && !["--browser", "--build"].includes(argv[i - 1]));
  const rows = [];
  for (const name of ["chromium", "firefox", "webkit"]) {
    if (missing(name)) {
      console.log(`${name}: skipped (${missing(name)})`);
      continue;
    }
    for (const build of BUILD === "both" ? ["relaxed", "simd"] : [BUILD]) {
      const r = spawnSync(process.execPath, [new URL(import.meta.url).pathname, "--browser", name, "--build", build, "--json", ...rest], { encoding: "utf8", timeout: 20 * 60000 });
      const line = (r.stdout || "").trim().split("\n").pop();
      let res = null;
      try {
        res = JSON.parse(line);
      } catch {
        const why = (r.stderr || r.stdout || "").trim().split("\n").slice(-1)[0];
        console.log(`${name}, ${build} build: ${/relaxed SIMD was asked for/.test(r.stderr) ? "no relaxed SIMD" : `failed: ${why}`}`);
        continue;
      }
      rows.push(res);
      console.log(`${res.browser}, ${res.build} build (${build}), ${res.threads} thread(s): ${res.browserMsPerStep.toFixed(1)} ms/step; Node ${res.nodeMsPerStep.toFixed(1)}; browser/Node ${res.browserVsNode.toFixed(2)}x`);
    }
  }
  if (argv.includes("--json")) console.log(JSON.stringify(rows));
  process.exit(0);
}

const server = await startServer({ isolation: true });
const browser = await launch(BROWSER);
try {
  // The server turns the `mnist` package's JSON into bytes on the first request; do that now so
  // (b) measures the page, not the server's one-off work.
  const bytes = new Uint8Array(await (await fetch(server.url + "data/mnist-digits.bin", { signal: AbortSignal.timeout(60000) })).arrayBuffer());
  const { train, test } = digitsFromBytes(sn, bytes);

  async function browserRound() {
    const page = await browser.newPage();
    await page.goto(`${server.url}demo/?threads=${THREADS}&autostart${BUILD === "auto" ? "" : `&build=${BUILD}`}`);
    // On a timeout, say how far the page got rather than only that it timed out.
    const stuck = async (what, e) => {
      const state = await page.evaluate(() => ({ ready: window.demo?.ready, running: window.demo?.running, steps: window.demo?.steps.length, status: document.getElementById("status")?.textContent }));
      throw new Error(`${what}: ${e.message.split("\n")[0]}; the page: ${JSON.stringify(state)}`);
    };
    await page.waitFor((n) => window.demo?.steps.length >= n || window.demo?.errors.length, warmup + steps, WAIT).catch((e) => stuck("training", e));
    await page.evaluate(() => document.getElementById("stop").click());
    await page.waitFor(() => !window.demo.running, null, WAIT).catch((e) => stuck("stopping", e));
    const d = await page.evaluate(() => ({ steps: window.demo.steps, info: window.demo.info, firstStepAt: window.demo.firstStepAt, timing: window.demo.timing, errors: window.demo.errors }));
    await page.close();
    if (d.errors.length) throw new Error(`the page reported: ${d.errors.join("; ")}`);
    if (d.info.threads !== THREADS) console.log(`${BROWSER}: the page's worker runs ${d.info.threads} thread(s), not ${THREADS} (${d.info.fallback})`);
    // the .wasm the worker fetched: both builds of its kind where init() timed them
    const wasm = (d.info.relaxedSimd && BUILD === "auto" ? ["relaxed", "simd"] : [d.info.build]).map((b) => `/dist/simdnet.${b}${d.info.sharedMemory ? "" : ".single"}.wasm`);
    const t = d.timing;
    // page ms: app.js running, the worker's init done (engine and digits in parallel), first step
    const startup = { appStartAt: t.appStartAt, engineMs: t.engineMs, digitsMs: t.digitsMs, readyAt: t.readyAt, firstStepAt: d.firstStepAt };
    return { ...summarise(d.steps), loadToFirstStepMs: d.firstStepAt, startup, build: d.info.build, buildReason: d.info.buildReason, threads: d.info.threads, wasm };
  }

  // Node runs what the page got (its build, its threads)
  async function nodeRound({ build, threads }) {
    const info = await sn.init({ threads, build });
    const t = new Trainer(sn, train, test);
    t.newModel();
    const recs = [];
    let last = performance.now();
    for (let i = 0; i < warmup + steps; i++) {
      const r = t.step();
      const now = performance.now();
      recs.push({ ms: r.ms, wallMs: now - last });
      last = now;
    }
    t.disposeModel();
    sn.dispose();
    return { ...summarise(recs), build: info.build };
  }

  const b = [], n = [];
  for (let r = 0; r < rounds; r++) {
    b.push(await browserRound());
    n.push(await nodeRound(b[b.length - 1]));
  }
  const pick = (rs, k) => median(rs.map((r) => r[k]));
  const ours = { browser: { ms: pick(b, "ms"), wallMs: pick(b, "wallMs") }, node: { ms: pick(n, "ms"), wallMs: pick(n, "wallMs") } };
  const ratio = ours.node.ms / ours.browser.ms;

  // (c) sizes: the bundle and the .wasm the page really fetched
  const gz = (buf) => gzipSync(buf, { level: 9 }).length;
  const js = readFileSync(new URL("../dist/index.js", import.meta.url));
  const wasmFiles = b[0].wasm.map((p) => p.replace(/^\/dist\//, ""));
  const wasmGz = wasmFiles.reduce((sum, f) => sum + gz(readFileSync(new URL(`../dist/${f}`, import.meta.url))), 0);
  const wasmFile = wasmFiles.join(" + ");
  let minified = null;
  try {
    const { transform } = await import("esbuild");
    minified = gz(Buffer.from((await transform(js.toString("utf8"), { minify: true, format: "esm", target: "es2022" })).code));
  } catch {
    /* esbuild not installed: no reference figure */
  }
  const size = { js: gz(js), wasm: wasmGz, wasmFile, jsMinified: minified };
  size.total = size.js + size.wasm;

  const result = {
    bench: "browser",
    browser: browser.version,
    threads: b[0].threads,
    buildReason: b[0].buildReason,
    batch: 64,
    steps,
    warmup,
    rounds,
    build: b[0].build,
    browserMsPerStep: ours.browser.ms,
    nodeMsPerStep: ours.node.ms,
    browserImagesPerSec: (64 * 1000) / ours.browser.ms,
    nodeImagesPerSec: (64 * 1000) / ours.node.ms,
    browserWallImagesPerSec: (64 * 1000) / ours.browser.wallMs,
    nodeWallImagesPerSec: (64 * 1000) / ours.node.wallMs,
    browserVsNode: ratio,
    loadToFirstStepMs: b.map((r) => r.loadToFirstStepMs),
    gzipBytes: size,
    perRound: { browser: b.map(({ wasm, ...r }) => r), node: n },
  };
  if (argv.includes("--json")) console.log(JSON.stringify(result));
  else {
    const kb = (x) => `${(x / 1024).toFixed(1)} KB`;
    const f0 = (x) => x.toFixed(0);
    console.log(`${browser.version}: LeNet training, batch 64, ${result.threads} thread(s), ${result.build} build (${result.buildReason}): median of ${steps} steps after ${warmup}, ${rounds} round(s) each, alternating`);
    console.log(`  page's worker: ${ours.browser.ms.toFixed(1)} ms/step = ${f0(result.browserImagesPerSec)} images/s  (wall, with batch, messages, yield: ${f0(result.browserWallImagesPerSec)} images/s)`);
    console.log(`  Node:          ${ours.node.ms.toFixed(1)} ms/step = ${f0(result.nodeImagesPerSec)} images/s  (wall, with batch: ${f0(result.nodeWallImagesPerSec)} images/s)`);
    console.log(`  browser / Node: ${ratio.toFixed(2)}x  (target: within 15%, i.e. >= 0.85x) ${ratio >= 0.85 ? "ok" : "MISSED"}`);
    const first = Math.min(...result.loadToFirstStepMs);
    console.log(`Page load to first training step done: ${result.loadToFirstStepMs.map(f0).join(", ")} ms  (target < 2000 ms) ${first < 2000 ? "ok" : "MISSED"}`);
    for (const { startup: s } of b)
      console.log(`  app.js runs at ${f0(s.appStartAt)} ms; in the worker: engine ${f0(s.engineMs)} ms, digits ${f0(s.digitsMs)} ms (in parallel); ready at ${f0(s.readyAt)} ms; first step done at ${f0(s.firstStepAt)} ms`);
    console.log(`Download, gzip -9: dist/index.js ${kb(size.js)} + ${wasmFile} ${kb(size.wasm)} = ${kb(size.total)}  (target < 150 KB) ${size.total < 150 * 1024 ? "ok" : "MISSED"}`);
    if (minified) console.log(`  (a minified bundle would be ${kb(minified)} gzipped: ${kb(size.js - minified)} less)`);
  }
} finally {
  await browser.close();
  await server.close();
}
