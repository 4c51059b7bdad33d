// The WebGPU kernels' text is not in the library's bundles: tools/build.mjs writes it to
// dist/simdnet.wgsl.json, which init({ webgpu: true }) loads from beside the bundle (or from
// setWasmPath's folder), so a page that never asks for WebGPU does not download it. Here: the
// bundles hold only markers, the file holds every wgsl/ file, and a missing or wrong file makes
// init report WebGPU unavailable with the reason (the CPU engine unaffected), after which the
// right file gives a working GPU engine. The tests run in order in one process: the file is
// loaded once per process, so the failures come first.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import * as sn from "../dist/index.js";
import { initGpu, runAndExit } from "./gpu_helpers.mjs";

const root = new URL("..", import.meta.url).pathname;
const dist = join(root, "dist");
const folder = mkdtempSync(join(tmpdir(), "simdnet-wgsl-"));
for (const f of readdirSync(dist)) if (f.endsWith(".wasm")) copyFileSync(join(dist, f), join(folder, f));
test.after(() => rmSync(folder, { recursive: true, force: true }));

test("the library's bundles hold markers, not WGSL; dist/simdnet.wgsl.json holds every wgsl/ file", () => {
  for (const b of ["browser.js", "index.js", "cli.js"]) {
    const js = readFileSync(join(dist, b), "utf8");
    assert.not.match(js, /@compute|@workgroup_size/, `${b} holds WGSL`);
    assert.match(js, /#wgsl:conv\.wgsl#/, `${b}: the marker for conv.wgsl`);
  }
  const files = JSON.parse(readFileSync(join(dist, "simdnet.wgsl.json"), "utf8"));
  const sources = readdirSync(join(root, "wgsl")).filter((f) => f.endsWith(".wgsl")).sort();
  assert.equal(Object.keys(files).sort(), sources);
  for (const f of sources) {
    const entries = [...readFileSync(join(root, "wgsl", f), "utf8").matchAll(/@compute[^]*?fn (\w+)\s*\(/g)].map((m) => m[1]);
    for (const e of entries) assert.match(files[f], new RegExp(`fn ${e}\\(`), `${f}: entry point ${e}`);
    assert.not.match(files[f], /\/\/|\/\*/, `${f}: comments stripped`);
  }
});

test("no simdnet.wgsl.json where the .wasm are: WebGPU unavailable, the reason names the file; the CPU engine runs", async () => {
  sn.setWasmPath(folder);
  const info = await sn.init({ threads: 1, webgpu: true });
  assert.is(info.webgpu.available, false);
  assert.match(info.webgpu.reason, /could not read .*simdnet\.wgsl\.json/);
  assert.equal(sn.add(sn.tensor([1, 2]), sn.tensor([3, 4])).toArray(), new Float32Array([4, 6]));
  assert.throws(() => sn.tensor([1]).to("webgpu"), /init\(\{ webgpu: true \}\)/);
});

test("an HTML page or another JSON in its place: WebGPU unavailable, saying what the file is", async () => {
  writeFileSync(join(folder, "simdnet.wgsl.json"), "<!doctype html><title>dev server</title>");
  let info = await sn.init({ threads: 1, webgpu: true });
  assert.is(info.webgpu.available, false);
  assert.match(info.webgpu.reason, /is not simdnet's WebGPU kernels .*an HTML page/);
  writeFileSync(join(folder, "simdnet.wgsl.json"), JSON.stringify({ "conv.wgsl": "fn nothing() {}" }));
  info = await sn.init({ threads: 1, webgpu: true });
  assert.is(info.webgpu.available, false);
  assert.match(info.webgpu.reason, /simdnet\.wgsl\.json has no \w+\.wgsl|has no entry point/);
});

test("the right file: a working GPU engine, the same values as the CPU's", async () => {
  copyFileSync(join(dist, "simdnet.wgsl.json"), join(folder, "simdnet.wgsl.json"));
  await initGpu(sn, { threads: 1 });
  const x = sn.tensor([-1, 2, -3, 4, 5, 6], [1, 1, 2, 3]), w = sn.tensor([1, -1, 2, 0.5], [1, 1, 2, 2]);
  const cpu = sn.relu(sn.conv2d(x, w)).toArray();
  const gpu = await sn.relu(sn.conv2d(x.to("webgpu"), w.to("webgpu"))).read();
  assert.equal(Array.from(gpu), Array.from(cpu));
});

test("the command line on webgpu (dist/cli.js loads the file from beside itself): train on 64 images, then eval", () => {
  // a small IDX folder: 64 training and 32 test images of 28x28 with labels 0-9
  const dir = mkdtempSync(join(tmpdir(), "simdnet-wgsl-cli-"));
  try {
    const pixels = (n, seed) => Array.from({ length: n * 784 }, (_, i) => ((i * 2654435761 + seed * 97) >>> 0) % 256);
    for (const [prefix, n] of [["train", 64], ["t10k", 32]]) {
      writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), sn.data.writeIdx({ type: "u8", shape: [n, 28, 28], data: pixels(n, n) }));
      writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), sn.data.writeIdx({ type: "u8", shape: [n], data: Array.from({ length: n }, (_, i) => i % 10) }));
    }
    const cli = (args) => spawnSync(process.execPath, [join(dist, "cli.js"), ...args], { encoding: "utf8", timeout: 600000 });
    const out = join(dir, "out");
    let r = cli(["train", "--data", dir, "--epochs", "1", "--batch-size", "32", "--threads", "1", "--device", "webgpu", "--no-progress", "--out", out]);
    assert.is(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /on webgpu: /);
    assert.match(r.stdout, /epoch 1\/1 .*test loss [\d.]+ acc [\d.]+%/);
    r = cli(["eval", out, "--device", "webgpu", "--threads", "1"]);
    assert.is(r.status, 0, r.stderr + r.stdout);
    const cpu = cli(["eval", out, "--threads", "1"]);
    assert.is(cpu.status, 0, cpu.stderr + cpu.stdout);
    const parse = (t) => /loss (\d\.\d+), top-1 ([\d.]+)%/.exec(t)?.slice(1).map(Number);
    const [gl, gt] = parse(r.stdout) ?? [], [cl, ct] = parse(cpu.stdout) ?? [];
    // the same model and images on both devices: the loss as printed (4 digits) up to its last
    // digit's rounding, and the same top-1
    assert.ok(Math.abs(gl - cl) <= 2e-4 && gt === ct, `webgpu: ${r.stdout}\ncpu: ${cpu.stdout}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

runAndExit(sn);
