// The demo page in a real browser (chromium via playwright-core): it starts with threads on an
// isolated page and one thread on a plain one, trains (the loss falls) and stops, predicts a
// digit drawn with the mouse, shows the visualisations, saves and loads its model, switches
// threads, and runs its benchmark tab. The page's state is read from window.demo; every wait
// is for a condition, with a timeout that fails the test instead of hanging it.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as sn from "../dist/index.js";
import { launchBrowser, watchedPage, startServer } from "./browser/launch.mjs";
import { decodePNG } from "./browser/png.mjs";

const WAIT = { timeout: 90000 };
let browser, isolated, plain, page, log;

test.before(async () => {
  browser = await launchBrowser();
  isolated = await startServer({ isolation: true });
  plain = await startServer({ isolation: false });
  ({ page, log } = await watchedPage(browser));
  await page.setViewportSize({ width: 1280, height: 1000 });
});

test.after(async () => {
  await browser?.close();
  await isolated?.close();
  await plain?.close();
});

/** Wait for window.demo to satisfy `fn` (a page function); fail early on a page error. */
async function until(p, fn, arg) {
  const h = await p.waitForFunction(([src, arg]) => window.demo?.errors?.length || new Function("d", "arg", `return (${src})(d, arg)`)(window.demo, arg), [fn.toString(), arg], WAIT);
  const errors = await p.evaluate(() => window.demo.errors);
  assert.equal(errors, [], "the page reported errors");
  return h.jsonValue();
}

const demo = (p) => p.evaluate(() => ({ ...window.demo, predict: undefined }));

/** A "7": a bar along the top and a stroke down to the bottom left, as mouse strokes. */
async function drawSeven(p) {
  const box = await p.locator("#pad").boundingBox();
  const at = (x, y) => [box.x + (x * box.width) / 280, box.y + (y * box.height) / 280];
  await p.mouse.move(...at(70, 60));
  await p.mouse.down();
  for (let i = 1; i <= 10; i++) await p.mouse.move(...at(70 + i * 14, 60));
  for (let i = 1; i <= 16; i++) await p.mouse.move(...at(210 - i * 6, 60 + i * 12.5));
  await p.mouse.up();
}

test("demo: loads with 2 threads on an isolated page, shows what init() got, fetches its variant's .wasm and no node: module", async () => {
  await page.goto(isolated.url + "demo/?threads=2");
  await until(page, (d) => d.ready);
  const d = await demo(page);
  assert.is(d.info.threads, 2);
  assert.ok(d.info.crossOriginIsolated && d.info.sharedMemory && d.info.simd);
  assert.is(d.info.env, "browser-worker");
  const badges = await page.locator("#engine").innerText();
  assert.match(badges, /2 threads/);
  // the threads badge's title: why this many (here asked for: ?threads=2)
  assert.is(await page.locator("#engine .badge").first().getAttribute("title"), "init({ threads: 2 }) asked for it");
  assert.match(badges, /cross-origin isolated: yes/);
  assert.ok(!log.requests.some((u) => u.startsWith("node:")), "a node: module was requested");
  // both builds where relaxed SIMD validates (init() times them: src/engine/buildchoice.ts), once each
  const wasm = log.requests.filter((u) => u.endsWith(".wasm")).map((u) => new URL(u).pathname).sort();
  assert.equal(wasm, (d.info.relaxedSimd ? ["relaxed", "simd"] : [d.info.build]).map((b) => `/dist/simdnet.${b}.wasm`));
  assert.equal(log.failed, []);
  assert.equal(log.errors, []);
});

test("demo: trains in the worker, the loss falls, Stop stops it", async () => {
  await page.click("#train");
  await until(page, (d) => d.steps.length >= 30);
  await page.click("#stop");
  await until(page, (d) => !d.running);
  const d = await demo(page);
  // The model, the data order and the kernels are deterministic, so this does not depend on timing.
  const mean = (a) => a.reduce((s, r) => s + r.loss, 0) / a.length;
  const first = mean(d.steps.slice(0, 5)), last = mean(d.steps.slice(-5));
  assert.ok(first > 2, `first losses ${first}`);
  assert.ok(last < first - 0.5, `loss did not fall: ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  assert.is(d.steps[0].threads, 2);
  assert.is(await page.locator("#stat-step").innerText(), String(d.steps.length));
  // Stopped means stopped: a round trip through the worker later, no new step has come.
  await page.evaluate(() => window.demo.predict());
  assert.is((await demo(page)).steps.length, d.steps.length);
  assert.is(await page.locator("#train").innerText(), "Continue");
});

test("demo: a digit drawn with the mouse gives 10 probabilities summing to 1, and its maps", async () => {
  const before = (await demo(page)).mapsShown;
  await drawSeven(page);
  await until(page, (d, n) => d.mapsShown > n && d.probs, before);
  const { probs } = await demo(page);
  assert.is(probs.length, 10);
  assert.ok(probs.every((p) => p >= 0 && p <= 1));
  assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-5, `sum ${probs.reduce((a, b) => a + b, 0)}`);
  assert.is(await page.locator("#probs .bar").count(), 10);
  // Each visualisation is a decoded image with more than one colour in it.
  const images = await page.evaluate(async () => {
    const out = {};
    for (const id of ["saliency", "occlusion", "filters", "activations"]) {
      const img = document.getElementById(`img-${id}`);
      await img.decode();
      const c = document.createElement("canvas");
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const ctx = c.getContext("2d");
      ctx.drawImage(img, 0, 0);
      const px = ctx.getImageData(0, 0, c.width, c.height).data;
      const colours = new Set();
      for (let i = 0; i < px.length; i += 4) colours.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
      out[id] = { width: img.naturalWidth, height: img.naturalHeight, colours: colours.size };
    }
    return out;
  });
  assert.equal([images.saliency.width, images.saliency.height], [112, 112]);
  assert.equal(images.filters.width, 10 * (5 * 6 + 1) + 1, "20 filters of 5x5, 10 a row, 6x enlarged");
  for (const [id, im] of Object.entries(images)) assert.ok(im.colours > 3, `${id}: ${im.colours} colours`);
});

test("demo: a screenshot of the page is not blank", async () => {
  const shot = decodePNG(await page.screenshot({ fullPage: true }));
  let s = 0, s2 = 0;
  const n = shot.width * shot.height, colours = new Set();
  for (let i = 0; i < n; i++) {
    const [r, g, b] = shot.data.subarray(i * 4, i * 4 + 3);
    const y = 0.299 * r + 0.587 * g + 0.114 * b;
    s += y;
    s2 += y * y;
    if (i % 7 === 0) colours.add((r << 16) | (g << 8) | b);
  }
  const std = Math.sqrt(s2 / n - (s / n) ** 2);
  assert.ok(shot.width >= 1000 && shot.height >= 800, `${shot.width}x${shot.height}`);
  assert.ok(std > 20, `luminance std ${std.toFixed(1)}`);
  assert.ok(colours.size > 200, `${colours.size} colours`);
});

test("demo: Save then Load gives the same predictions (and Node reads the file the same)", async () => {
  const p1 = await page.evaluate(() => window.demo.predict());
  const [download] = await Promise.all([page.waitForEvent("download", WAIT), page.click("#save")]);
  const name = download.suggestedFilename();
  assert.match(name, /\.safetensors$/);
  const chunks = [];
  for await (const c of await download.createReadStream()) chunks.push(c);
  const bytes = Buffer.concat(chunks);

  await page.click("#reset");
  await until(page, (d) => d.steps.length === 0);
  const p2 = await page.evaluate(() => window.demo.predict());
  assert.not.equal(p2, p1, "a reset model predicts differently");

  await page.setInputFiles("#load", { name, mimeType: "application/octet-stream", buffer: bytes });
  await until(page, (d) => d.loaded === 1);
  const p3 = await page.evaluate(() => window.demo.predict());
  assert.equal(p3, p1, "the loaded model predicts exactly what the saved one did");

  // The same file in Node: the weights under PyTorch's names, the config in the metadata, and
  // the same probabilities for the same 28x28 input.
  await sn.init({ threads: 1 });
  const file = sn.parseSafetensors(new Uint8Array(bytes), name);
  assert.ok(file.tensors.has("features.0.weight") && file.tensors.has("classifier.2.bias"));
  const cfg = JSON.parse(file.metadata.simdnet);
  const model = sn.modelFromConfig(cfg, name);
  sn.loadWeights(model, new Uint8Array(bytes), { what: name });
  const { pixels } = await demo(page);
  const { mean, std } = cfg.meta.normalize;
  const x = sn.tensor(Float32Array.from(pixels, (v) => (v - mean[0]) / std[0]), [1, 1, 28, 28]);
  const logits = sn.noGrad(() => model.forward(x).toArray());
  const e = Array.from(logits, (v) => Math.exp(v - Math.max(...logits)));
  const inNode = e.map((v) => v / e.reduce((a, b) => a + b, 0));
  inNode.forEach((p, k) => assert.ok(Math.abs(p - p1[k]) < 1e-6, `class ${k}: Node ${p}, page ${p1[k]}`));
  sn.dispose();
});

test("demo: loads the .json + .safetensors pair that saveModel (the CLI) writes", async () => {
  const dir = mkdtempSync(join(tmpdir(), "simdnet-demo-"));
  try {
    await sn.init({ threads: 1 });
    sn.manualSeed(7);
    const model = sn.models.lenet();
    const normalize = { mean: [0.2], std: [0.3] };
    const { weights, config } = await sn.saveModel(model, dir, { meta: { zoo: "lenet", normalize } });
    const { pixels } = await demo(page);
    const x = sn.tensor(Float32Array.from(pixels, (v) => (v - 0.2) / 0.3), [1, 1, 28, 28]);
    const logits = sn.noGrad(() => model.forward(x).toArray());
    sn.dispose();
    const loaded = (await demo(page)).loaded;
    await page.setInputFiles("#load", [config, weights]);
    await until(page, (d, n) => d.loaded === n + 1, loaded);
    const probs = await page.evaluate(() => window.demo.predict());
    const e = Array.from(logits, (v) => Math.exp(v - Math.max(...logits)));
    e.forEach((v, k) => assert.ok(Math.abs(v / e.reduce((a, b) => a + b, 0) - probs[k]) < 1e-6, `class ${k}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("demo: loading a file that is not a model shows a clear error and keeps the model", async () => {
  const before = await page.evaluate(() => window.demo.predict());
  await page.setInputFiles("#load", { name: "notes.safetensors", mimeType: "application/octet-stream", buffer: Buffer.from("not a model at all") });
  await page.waitForFunction(() => window.demo.errors.length > 0, null, WAIT);
  const status = await page.locator("#status").innerText();
  assert.match(status, /notes\.safetensors/);
  await page.evaluate(() => (window.demo.errors = []));
  assert.equal(await page.evaluate(() => window.demo.predict()), before);
});

test("demo: the thread selector restarts the engine and training goes on from the same step", async () => {
  const steps = (await demo(page)).steps.length;
  await page.selectOption("#threads", "1");
  await until(page, (d) => d.info.threads === 1);
  assert.match(await page.locator("#engine").innerText(), /1 thread\b/);
  await page.click("#train");
  await until(page, (d, n) => d.steps.length >= n + 3, steps);
  await page.click("#stop");
  await until(page, (d) => !d.running);
  const d = await demo(page);
  assert.is(d.steps[steps].step, steps + 1);
  assert.is(d.steps[steps].threads, 1);
  await page.selectOption("#threads", "2");
  await until(page, (d) => d.info.threads === 2);
});

test("demo: the benchmark tab measures simdnet (1 and 2 threads) and TF.js's wasm backend", async () => {
  await page.click('nav button[data-tab="bench"]');
  assert.ok(await page.locator("#bench-table").isVisible());
  await page.click("#bench-run");
  await until(page, (d) => d.bench.done || d.bench.error);
  const { bench } = await demo(page);
  assert.is(bench.error, null);
  const ours = bench.rows.filter((r) => r.runtime === "simdnet");
  assert.is(ours.length, 2 * 6);
  assert.ok(ours.every((r) => r.ms > 0 && r.threads === r.asked), JSON.stringify(ours));
  if (existsSync(new URL("../node_modules/@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js", import.meta.url))) {
    assert.is(bench.tfjsError, undefined);
    const tf = bench.rows.filter((r) => r.runtime === "tfjs" && r.ms !== null && r.threads === r.asked);
    assert.is(tf.length, 2 * 4, JSON.stringify(bench.rows.filter((r) => r.runtime === "tfjs")));
    assert.is(await page.locator("#bench-table .ratio").count(), 2 * 4, "our cells say how we compare with TF.js");
  }
  const cell = await page.locator("#bench-table tbody tr").first().locator("td").first().innerText();
  assert.match(cell, /^[\d.]+ GFLOP\/s\s+[\d.]+ ms/);
});

test("demo: a page without cross-origin isolation runs one thread, says why, and still trains", async () => {
  const { page: p, log: l } = await watchedPage(browser);
  await p.goto(plain.url + "demo/");
  await until(p, (d) => d.ready);
  const d = await demo(p);
  assert.is(d.info.threads, 1);
  assert.is(d.info.crossOriginIsolated, false);
  assert.match(await p.locator("#fallback").innerText(), /not cross-origin isolated/);
  assert.ok(await p.locator("#threads").isDisabled());
  const wasm = l.requests.filter((u) => u.endsWith(".wasm")).map((u) => new URL(u).pathname).sort();
  assert.equal(wasm, (d.info.relaxedSimd ? ["relaxed", "simd"] : [d.info.build]).map((b) => `/dist/simdnet.${b}.single.wasm`));
  await p.click("#train");
  await until(p, (d) => d.steps.length >= 3);
  await p.click("#stop");
  await until(p, (d) => !d.running);
  assert.equal(l.errors, []);
  await p.close();
});

test.run();
