// The library in a real browser (Debian's chromium driven by playwright-core): the fixture cases
// give the same bits as in Node, with threads in a worker, and on a page without cross-origin
// isolation (single-thread fallback); a failing worker makes the call throw, not hang.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readdirSync, readFileSync } from "node:fs";
import * as sn from "../dist/index.js";
import { runCases } from "./browser/cases.mjs";
import { launchBrowser, startServer } from "./browser/launch.mjs";

const files = readdirSync(new URL("./fixtures/", import.meta.url)).filter((f) => f.endsWith(".safetensors") && !f.startsWith("model_"));

let browser, isolated, plain, nodeResult;

test.before(async () => {
  browser = await launchBrowser();
  isolated = await startServer({ isolation: true });
  plain = await startServer({ isolation: false });
  await sn.init({ threads: 2, minParallelWork: 0 });
  nodeResult = runCases(sn, files.map((name) => ({ name, bytes: readFileSync(new URL(`./fixtures/${name}`, import.meta.url)) })));
  sn.dispose();
});

test.after(async () => {
  await browser?.close();
  await isolated?.close();
  await plain?.close();
});

async function openRunner(server) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(server.url + "test/browser/runner.html");
  await page.waitForFunction(() => window.ready === true, null, { timeout: 20000 });
  return { page, errors };
}

function sameBits(where, got) {
  const keys = Object.keys(nodeResult);
  assert.ok(keys.length > 0, "no fixture cases");
  for (const k of keys) assert.equal(got[k], nodeResult[k], `${where}: ${k}: bits differ from Node`);
}

test("browser: fixture cases in a worker with 2 threads give the same bits as Node", async () => {
  const { page } = await openRunner(isolated);
  const r = await page.evaluate((files) => window.inWorker({ cmd: "cases", threads: 2, files }), files);
  assert.ok(r.ok, r.error);
  assert.is(r.info.threads, 2);
  assert.ok(r.info.sharedMemory, "shared memory in an isolated page's worker");
  sameBits("worker, 2 threads", r.result);
  await page.close();
});

test("browser: page without cross-origin isolation falls back to one thread with the same bits", async () => {
  const { page } = await openRunner(plain);
  const r = await page.evaluate((files) => window.onPage(files, 4), files);
  assert.is(r.crossOriginIsolated, false);
  assert.is(r.info.threads, 1);
  assert.ok(!r.info.sharedMemory);
  assert.match(r.info.fallback, /cross-origin isolated/);
  sameBits("no isolation, fallback", r.result);
  await page.close();
});

test("browser: on an isolated page's main thread the engine runs one thread and never blocks", async () => {
  const { page } = await openRunner(isolated);
  const r = await page.evaluate((files) => window.onPage(files, 2), files);
  assert.is(r.crossOriginIsolated, true);
  assert.is(r.info.threads, 1);
  assert.match(r.info.fallback, /main thread may not block/);
  sameBits("main thread", r.result);
  await page.close();
});

test("browser: a worker that traps or dies makes the call throw a clear error instead of hanging", async () => {
  const { page } = await openRunner(isolated);
  const r = await page.evaluate(() => window.inWorker({ cmd: "trap", threads: 2 }));
  assert.ok(r.ok, r.error);
  assert.match(r.message, /debug_trap_on failed on thread 1/);
  assert.match(r.deadMessage, /worker 1 died/);
  await page.close();
});

test.run();
