// The WebGPU engine in a real browser (Debian's chromium with --enable-unsafe-webgpu: its
// SwiftShader adapter, a CPU implementation): the fixture cases of every op with WebGPU kernels
// within the PyTorch tolerances, from a module worker; and without WebGPU, init says why.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readdirSync } from "node:fs";
import { launchBrowser, startServer } from "./browser/launch.mjs";

const files = readdirSync(new URL("./fixtures/", import.meta.url)).filter((f) => f.endsWith(".safetensors") && !f.startsWith("model_"));
let server;

test.before(async () => {
  server = await startServer({ isolation: true });
});
test.after(async () => {
  await server?.close();
});

async function inWorker(browser, msg) {
  const page = await browser.newPage();
  await page.goto(server.url + "test/browser/runner.html");
  await page.waitForFunction(() => window.ready === true, null, { timeout: 20000 });
  const r = await page.evaluate((m) => window.inWorker(m), msg);
  await page.close();
  return r;
}

test("browser webgpu: fixture cases of every op with WebGPU kernels match PyTorch in a worker", async () => {
  const browser = await launchBrowser({ webgpu: true });
  try {
    const r = await inWorker(browser, { cmd: "gpucases", files });
    assert.ok(r.ok, r.error);
    assert.ok(r.info.webgpu.available, `no WebGPU in chromium: ${r.info.webgpu.reason}`);
    assert.ok(r.info.webgpu.isFallback, "SwiftShader is a fallback adapter");
    assert.ok(r.result.ran > 0, "no case ran");
    assert.equal(r.result.failures, [], r.result.failures.slice(0, 5).join("\n"));
  } finally {
    await browser.close();
  }
});

test("browser without WebGPU: init({ webgpu: true }) works on the CPU and says why there is no GPU", async () => {
  const browser = await launchBrowser();
  try {
    const r = await inWorker(browser, { cmd: "gpucases", files: [] });
    assert.ok(r.ok, r.error);
    assert.is(r.info.webgpu.available, false);
    assert.type(r.info.webgpu.reason, "string");
    assert.ok(r.info.threads >= 1);
  } finally {
    await browser.close();
  }
});

test.run();
