// The README's JavaScript examples run as written (docs that run): each ```js block is executed
// against the built package, with `pixels`/`weights` placeholders given values.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as sn from "../dist/index.js";
import { runAndExit } from "./gpu_helpers.mjs"; // WebGPU for the README's WebGPU example (SwiftShader without a GPU)

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);

test("the README has JavaScript examples", () => {
  assert.ok(blocks.length >= 2, `found ${blocks.length}`);
});

blocks.forEach((code, i) => {
  test(`README example ${i + 1} runs: ${code.split("\n").find((l) => l.trim() && !l.startsWith("import"))?.trim().slice(0, 60)}`, async () => {
    const out = mkdtempSync(join(tmpdir(), "simdnet-readme-"));
    const body = code
      .replace(/^import \* as sn from "simdnet";$/m, "")
      .replaceAll('"out/"', JSON.stringify(out + "/"));
    const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
    const pixels = new Float32Array(784).fill(0.5), weights = new Float32Array(20 * 25).fill(0.01);
    const logs = [];
    const console = { log: (...a) => logs.push(a.join(" ")) };
    await new AsyncFunction("sn", "pixels", "weights", "console", body)(sn, pixels, weights, console);
    // the WebGPU example has a CPU branch for users without WebGPU; the tests have WebGPU
    // (SwiftShader where .ci/run installs it), so taking that branch here is a failure
    if (code.includes("webgpu: true")) assert.equal(logs.filter((l) => l.startsWith("on the CPU:")), [], "the README's WebGPU example found no WebGPU");
  });
});

runAndExit(sn);
