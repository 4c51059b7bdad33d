// The demo page on WebGPU in a real browser (chromium with --enable-unsafe-webgpu: SwiftShader,
// a CPU implementation): the device selector appears where the browser has WebGPU, training on
// it lowers the loss, a drawn digit gets probabilities and maps from the GPU's weights, and
// moving back to the CPU keeps training. Without WebGPU the selector is off and says why.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { launchBrowser, watchedPage, startServer } from "./browser/launch.mjs";

const WAIT = { timeout: 240000 };
let server;

test.before(async () => {
  server = await startServer({ isolation: true });
});
test.after(async () => {
  await server?.close();
});

async function until(p, fn) {
  await p.waitForFunction(`window.demo?.errors?.length || (${fn.toString()})(window.demo)`, null, WAIT);
  const errors = await p.evaluate(() => window.demo.errors);
  assert.equal(errors, [], "the page reported errors");
}

test("demo on webgpu: trains with the loss falling, classifies a drawing with maps, and goes back to the CPU", async () => {
  const browser = await launchBrowser({ webgpu: true });
  try {
    const { page } = await watchedPage(browser);
    await page.goto(server.url + "demo/?threads=2&device=webgpu");
    await until(page, (d) => d.ready);
    const d0 = await page.evaluate(() => ({ info: window.demo.info, device: window.demo.device }));
    assert.ok(d0.info.webgpu?.available, `no WebGPU: ${d0.info.webgpu?.reason}`);
    assert.is(d0.device, "webgpu");
    assert.is(await page.locator("#device").isDisabled(), false);
    assert.match(await page.locator("#gpu-note").innerText(), /software adapter/);
    await page.click("#train");
    // steps on the GPU (read back every step on a slow adapter)
    await until(page, (d) => d.steps.filter((s) => s.device === "webgpu").length >= 4);
    const steps = await page.evaluate(() => window.demo.steps.filter((s) => s.device === "webgpu").map((s) => s.loss));
    assert.ok(steps.every(Number.isFinite), `losses ${steps}`);
    assert.ok(steps[steps.length - 1] < steps[0], `the loss did not fall on webgpu: ${steps.map((v) => v.toFixed(3))}`);
    // a drawn digit: probabilities and maps from the GPU's current weights, through a CPU copy
    const box = await page.locator("#pad").boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height * 0.2);
    await page.mouse.down();
    for (let i = 1; i <= 12; i++) await page.mouse.move(box.x + box.width / 2, box.y + box.height * (0.2 + i * 0.05));
    await page.mouse.up();
    const probs = await page.evaluate(() => window.demo.predict());
    assert.is(probs.length, 10);
    assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-4, `probabilities ${probs}`);
    await until(page, (d) => d.mapsShown > 0);
    // back to the CPU: training goes on there
    await page.selectOption("#device", "cpu");
    await until(page, (d) => d.device === "cpu");
    const n = await page.evaluate(() => window.demo.steps.length);
    await until(page, new Function("d", `return d.steps.filter((s) => s.device === "cpu").length >= 3 && d.steps.length > ${n}`));
    await page.click("#stop");
  } finally {
    await browser.close();
  }
});

test("demo without WebGPU: the device selector is off and the page says why; ?device=webgpu trains on the CPU", async () => {
  const browser = await launchBrowser();
  try {
    const { page } = await watchedPage(browser);
    await page.goto(server.url + "demo/?device=webgpu");
    await until(page, (d) => d.ready);
    assert.is(await page.locator("#device").isDisabled(), true);
    assert.match(await page.locator("#gpu-note").innerText(), /WebGPU/);
    assert.is(await page.evaluate(() => window.demo.device), "cpu");
  } finally {
    await browser.close();
  }
});

test.run();
