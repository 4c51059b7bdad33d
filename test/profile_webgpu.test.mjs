// profile() on WebGPU tensors: the rows say "webgpu", count the calls and FLOPs as on the CPU,
// and give no GFLOP/s (the clock sees the time to encode and queue the work, not GPU time), as
// the table says.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { initGpu, runAndExit, gpu } from "./gpu_helpers.mjs";

test.before(async () => {
  await initGpu(sn);
});

const fill = (n, seed = 1) => Float32Array.from({ length: n }, (_, i) => (((i * 7919 + seed * 104729) % 1000) / 500 - 1));

test("a conv, a ReLU and their gradients on webgpu: rows per device, FLOPs from the shapes, no GFLOP/s", () => {
  const x = gpu(sn.tensor(fill(2 * 3 * 8 * 8), [2, 3, 8, 8]));
  const w = gpu(sn.tensor(fill(4 * 3 * 9, 2), [4, 3, 3, 3]).requireGrad());
  const p = sn.profile(() => sn.tidy(() => sn.sum(sn.relu(sn.conv2d(x, w, null, { padding: 1 }))).backward()), { peak: 50 });
  const rows = p.ops.map((r) => `${r.op} ${r.phase} ${r.device} ${r.calls}`).sort();
  assert.equal(rows, ["conv2d backward webgpu 1", "conv2d forward webgpu 1", "relu backward webgpu 1", "relu forward webgpu 1", "sum backward webgpu 1", "sum forward webgpu 1"]);
  const conv = p.ops.find((r) => r.op === "conv2d" && r.phase === "forward");
  assert.is(conv.flops, 2 * 2 * 4 * 8 * 8 * 3 * 3 * 3);
  // the paths derived from the shapes are the CPU drivers'; a GPU kernel would name its own
  assert.is(conv.path, "");
  for (const r of p.ops) {
    assert.is(r.gflops, null, `${r.op} ${r.phase}`);
    assert.is(r.ofPeak, null);
  }
  assert.match(String(p), /webgpu rows: the time to encode and queue the work, not GPU time/);
});

runAndExit(sn);
