// Training on the GPU from the public API: fit() on webgpu follows the CPU run step for step
// (same seed: the same losses and accuracies within float tolerance), reads nothing back inside
// a step and creates no GPU buffer after the first steps; a checkpoint written on one device
// resumes on the other; evaluateAsync; device "auto" on a software adapter stays on the CPU.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as sn from "../dist/index.js";
import { initGpu, runAndExit } from "./gpu_helpers.mjs";

let digits;
test.before(async () => {
  await initGpu(sn);
  digits = await sn.loadMnistDigits();
});

const small = () => ({ train: digits.train.slice(0, 96), test: digits.test.slice(0, 64) });
const lenet = () => {
  sn.manualSeed(2);
  return sn.models.lenet({ classes: 10 });
};
const OPTS = { epochs: 2, batchSize: 32, lr: 0.05, momentum: 0.9, seed: 4, logEvery: 1 };

function close(a, b, what, rel = 1e-4) {
  assert.ok(Math.abs(a - b) <= rel * Math.max(1, Math.abs(a)), `${what}: ${b} on webgpu, ${a} on the CPU`);
}

test("fit on webgpu follows the CPU run: the same losses and accuracies per epoch, validation included", async () => {
  const { train, test: val } = small();
  const steps = { cpu: [], webgpu: [] };
  const run = async (device) =>
    sn.fit(lenet(), train, { ...OPTS, device, validation: val, callbacks: { onBatchEnd: (b) => steps[device].push(b.loss) } });
  const c = await run("cpu"), g = await run("webgpu");
  assert.is(g.device, "webgpu");
  assert.is(c.history.length, 2);
  c.history.forEach((rc, i) => {
    const rg = g.history[i];
    close(rc.loss, rg.loss, `epoch ${i + 1} loss`);
    close(rc.val_loss, rg.val_loss, `epoch ${i + 1} val_loss`);
    // accuracies count images: equal unless a score ties within float noise
    assert.ok(Math.abs(rc.top1 - rg.top1) <= 1 / train.length, `epoch ${i + 1} top1 ${rg.top1} vs ${rc.top1}`);
    assert.ok(Math.abs(rc.val_top1 - rg.val_top1) <= 1 / val.length, `epoch ${i + 1} val_top1 ${rg.val_top1} vs ${rc.val_top1}`);
  });
  // logEvery 1: the running mean after every step, as the CPU's
  assert.is(steps.webgpu.length, steps.cpu.length);
});

test("a fit step on webgpu reads nothing back and creates no GPU buffer after the first steps", async () => {
  const { train } = small();
  const g = sn.gpuEngine();
  const model = lenet();
  let at2 = null, atEnd = null;
  await sn.fit(model, train, {
    ...OPTS, epochs: 1, device: "webgpu", logEvery: 1000, metrics: ["loss"],
    callbacks: {
      onBatchEnd: (b) => {
        if (b.batch === 2) at2 = { ...g.stats };
        if (b.batch === 3) atEnd = { ...g.stats };
      },
    },
  });
  assert.ok(at2 && atEnd);
  assert.is(atEnd.buffersCreated - at2.buffersCreated, 0, "GPU buffers created in step 3");
  // the last batch of the epoch is read (batch 3 of 3): at most the metrics' 8 floats
  assert.ok(atEnd.bytesRead - at2.bytesRead <= 32, `read back ${atEnd.bytesRead - at2.bytesRead} bytes in a step`);
  const dispatches = atEnd.dispatches - at2.dispatches, submits = atEnd.submits - at2.submits;
  assert.ok(submits <= Math.ceil(dispatches / 16) + 2, `${submits} submits for ${dispatches} dispatches`);
});

test("a checkpoint written on webgpu resumes on the CPU, and one written on the CPU resumes on webgpu, with the same result", async () => {
  const { train } = small();
  const dir = mkdtempSync(join(tmpdir(), "simdnet-gpuckpt-"));
  try {
    // the reference: 2 epochs on the CPU in one go
    const ref = await sn.fit(lenet(), train, { ...OPTS });
    for (const [first, second] of [["webgpu", "cpu"], ["cpu", "webgpu"]]) {
      const ck = join(dir, `${first}.safetensors`);
      const m1 = lenet();
      await sn.fit(m1, train, { ...OPTS, epochs: 1, device: first, checkpoint: ck });
      const m2 = lenet();
      const r = await sn.fit(m2, train, { ...OPTS, device: second, checkpoint: ck, resume: true });
      assert.is(r.history.length, 2);
      close(ref.history[1].loss, r.history[1].loss, `${first} then ${second}: epoch 2 loss`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("evaluateAsync on webgpu gives the CPU's evaluate", async () => {
  const { test: val } = small();
  const m = lenet();
  const c = sn.evaluate(m, val);
  m.to("webgpu");
  const g = await sn.evaluateAsync(m, val);
  close(c.loss, g.loss, "loss");
  assert.is(g.n, c.n);
  assert.ok(Math.abs(c.top1 - g.top1) <= 1 / val.length);
  assert.throws(() => sn.evaluate(m, val), /webgpu|read/);
});

test("device 'auto' keeps a small net on the CPU and says why", async () => {
  const { train } = small();
  const p = sn.pickDevice(lenet(), [1, 28, 28]);
  assert.is(p.device, "cpu");
  assert.match(p.reason, /software|multiply-adds/);
  const r = await sn.fit(lenet(), train.slice(0, 32), { ...OPTS, epochs: 1, device: "auto" });
  assert.is(r.device, "cpu");
  assert.type(r.deviceReason, "string");
});

runAndExit(sn);
