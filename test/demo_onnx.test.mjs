// The demo page with ONNX files (chromium via playwright-core): a LeNet exported with exportOnnx
// and chosen in the file picker classifies the drawing exactly as Node computes it, and keeps
// doing so across an engine restart; a graph whose input is not one 1x28x28 image is a clear
// error that keeps the model; a file dropped on the page goes the same way.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import * as sn from "../dist/index.js";
import { exportOnnx } from "../dist/onnx.js";
import { launchBrowser, watchedPage, startServer } from "./browser/launch.mjs";

const WAIT = { timeout: 90000 };
// the page's normalisation for a model that does not say (demo/trainer.js NORMALIZE)
const MEAN = 0.1307, STD = 0.3081;
let browser, server, page;

test.before(async () => {
  browser = await launchBrowser();
  server = await startServer({ isolation: true });
  ({ page } = await watchedPage(browser));
  await page.setViewportSize({ width: 1280, height: 1000 });
  await page.goto(server.url + "demo/?threads=1");
  await page.waitForFunction(() => window.demo?.ready, null, WAIT);
  await sn.init({ threads: 1 });
});

test.after(async () => {
  await browser?.close();
  await server?.close();
});

const demo = () => page.evaluate(() => ({ ...window.demo, predict: undefined }));

/** A "7" drawn with the mouse (as test/demo.test.mjs draws it). */
async function drawSeven() {
  const box = await page.locator("#pad").boundingBox();
  const at = (x, y) => [box.x + (x * box.width) / 280, box.y + (y * box.height) / 280];
  await page.mouse.move(...at(70, 60));
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) await page.mouse.move(...at(70 + i * 14, 60));
  for (let i = 1; i <= 16; i++) await page.mouse.move(...at(210 - i * 6, 60 + i * 12.5));
  await page.mouse.up();
}

/** Node's class probabilities for the page's drawing. */
function nodeProbs(model, pixels) {
  const x = sn.tensor(Float32Array.from(pixels, (v) => (v - MEAN) / STD), [1, 1, 28, 28]);
  model.eval();
  const logits = sn.noGrad(() => model.call(x).toArray());
  const e = Array.from(logits, (v) => Math.exp(v - Math.max(...logits)));
  return e.map((v) => v / e.reduce((a, b) => a + b, 0));
}

const closeTo = (got, want, what) => want.forEach((p, k) => assert.ok(Math.abs(p - got[k]) < 1e-6, `${what}: class ${k}: Node ${p}, page ${got[k]}`));
const argmax = (ps) => ps.indexOf(Math.max(...ps));

let nodeModel;

test("demo: an exported LeNet .onnx chosen in the picker classifies the drawing as Node does", async () => {
  const before = (await demo()).mapsShown;
  await drawSeven();
  await page.waitForFunction((n) => window.demo.mapsShown > n && window.demo.probs, before, WAIT);
  sn.manualSeed(11);
  nodeModel = sn.models.lenet();
  const bytes = exportOnnx(nodeModel, [1, 1, 28, 28]);
  const pagePrior = await page.evaluate(() => window.demo.predict());
  const mapsBefore = (await demo()).mapsShown;
  await page.setInputFiles("#load", { name: "lenet.onnx", mimeType: "application/octet-stream", buffer: Buffer.from(bytes) });
  await page.waitForFunction(() => window.demo.loaded === 1 || window.demo.errors.length, null, WAIT);
  // the maps for the drawing come too (its occlusion map one image at a time: the exported
  // Flatten fixes the batch size)
  await page.waitForFunction((n) => window.demo.mapsShown > n || window.demo.errors.length, mapsBefore, WAIT);
  assert.equal((await demo()).errors, []);
  assert.match(await page.locator("#status").innerText(), /loaded lenet\.onnx \(an ONNX file says nothing about input normalisation: the drawing goes in as \(x - 0\.1307\) \/ 0\.3081/);
  const probs = await page.evaluate(() => window.demo.predict());
  assert.not.equal(probs, pagePrior, "the page's own model was replaced");
  const { pixels } = await demo();
  assert.ok(pixels.some((v) => v > 0.5), "a drawing is there");
  const want = nodeProbs(nodeModel, pixels);
  closeTo(probs, want, "lenet.onnx");
  assert.is(argmax(probs), argmax(want));
  // the bars show the prediction
  assert.is(await page.locator("#probs .bar.best .digit").innerText(), String(argmax(want)));
});

test("demo: the ONNX model survives an engine restart (thread selector)", async () => {
  const before = await page.evaluate(() => window.demo.predict());
  await page.selectOption("#threads", "2");
  await page.waitForFunction(() => window.demo.info?.threads === 2 || window.demo.errors.length, null, WAIT);
  assert.equal((await demo()).errors, []);
  assert.equal(await page.evaluate(() => window.demo.predict()), before);
});

test("demo: an .onnx whose input is not one 1x28x28 image is a clear error and the model stays", async () => {
  const before = await page.evaluate(() => window.demo.predict());
  const cases = [
    ["vgg_bn.eval.op17.onnx", /vgg_bn\.eval\.op17\.onnx: this model takes input \[2, 3, 16, 16\]; the demo classifies one 1x28x28 drawing at a time/],
    ["lenet1.eval.op17.onnx", /lenet1\.eval\.op17\.onnx: this model takes input \[2, 1, 28, 28\]/],
  ];
  for (const [name, re] of cases) {
    await page.setInputFiles("#load", { name, mimeType: "application/octet-stream", buffer: readFileSync(`test/fixtures/onnx/${name}`) });
    await page.waitForFunction(() => window.demo.errors.length > 0, null, WAIT);
    assert.match(await page.locator("#status").innerText(), re);
    await page.evaluate(() => (window.demo.errors = []));
  }
  assert.equal(await page.evaluate(() => window.demo.predict()), before);
  // exportOnnx keeps the batch free (its flatten is a Reshape to [0, -1]), so the imported graph
  // trains in the page at the demo's batch size
  const steps0 = await page.evaluate(() => window.demo.steps.length);
  await page.click("#train");
  await page.waitForFunction((n) => window.demo.steps.length >= n + 3 || window.demo.errors.length > 0, steps0, WAIT);
  await page.click("#stop");
  await page.waitForFunction(() => !window.demo.running, null, WAIT);
  assert.equal((await demo()).errors, []);
  assert.ok((await page.evaluate(() => window.demo.steps.slice(-3).map((s) => s.loss))).every(Number.isFinite));
  // saving a graph in the demo's format is refused with the reason
  await page.click("#save");
  await page.waitForFunction(() => window.demo.errors.length > 0, null, WAIT);
  assert.match(await page.locator("#status").innerText(), /the model came from lenet\.onnx, a graph that the demo's file format does not describe/);
  await page.evaluate(() => (window.demo.errors = []));
});

test("demo: a file dropped on the page is loaded as one from the picker", async () => {
  const bytes = [...readFileSync("test/fixtures/onnx/vgg_bn.eval.op17.onnx")];
  const transfer = await page.evaluateHandle((bytes) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], "dropped.onnx"));
    return dt;
  }, bytes);
  await page.dispatchEvent("#pad", "drop", { dataTransfer: transfer });
  await page.waitForFunction(() => window.demo.errors.length > 0, null, WAIT);
  assert.match(await page.locator("#status").innerText(), /dropped\.onnx: this model takes input \[2, 3, 16, 16\]/);
  await page.evaluate(() => (window.demo.errors = []));
});

test.run();
