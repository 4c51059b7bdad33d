// The PyTorch fixture cases (test/fixtures, the same files conformance.test.mjs runs on the CPU)
// on the WebGPU engine: every case of every op that has WebGPU kernels, output and every input
// gradient, with the case's own tolerances; inputs not written; the same bits run to run.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { compare, sameBits, loadFixtures } from "./helpers.mjs";
import { initGpu, runAndExit } from "./gpu_helpers.mjs";

const fixtures = loadFixtures(sn);

test.before(async () => {
  await initGpu(sn);
});

/** The case's inputs on the GPU; those with a reference gradient require grad. */
function gpuInputs(c, tensors) {
  return c.inputs.map((name, i) => {
    if (!name) return null;
    const st = tensors.get(name);
    const t = sn.tensor(st.data, st.shape).to("webgpu");
    if (c.grads[i]) t.requireGrad();
    return t;
  });
}

async function runGpu(c, tensors) {
  const inputs = gpuInputs(c, tensors);
  const y = sn.opTable.get(c.op).apply(inputs, c.attrs);
  assert.is(y.device, "webgpu", "output device");
  const res = { shape: [...y.shape], out: await y.read(), grads: [], after: [] };
  if (c.gout) {
    const g = tensors.get(c.gout);
    y.backward(sn.tensor(g.data, g.shape).to("webgpu"));
    for (let i = 0; i < inputs.length; i++) res.grads.push(c.grads[i] && inputs[i].grad ? await inputs[i].grad.read() : null);
  }
  for (const t of inputs) res.after.push(t ? await t.read() : null);
  return res;
}

let ran = 0;
const without = new Set();
for (const { tensors, cases } of fixtures)
  for (const c of cases) {
    const entry = sn.opTable.get(c.op);
    if (!entry?.webgpu) {
      without.add(c.op);
      continue;
    }
    ran++;
    test(`webgpu: ${c.name}`, async () => {
      const r = await runGpu(c, tensors);
      const want = tensors.get(c.out);
      assert.equal(r.shape, want.shape, "output shape");
      compare(`${c.op} out`, r.out, want.data, c.rtol, c.atol);
      c.inputs.forEach((name, i) => {
        if (!name) return;
        if (String(i) in c.after) compare(`${c.op} input ${i} after`, r.after[i], tensors.get(c.after[i]).data, c.rtol, c.atol);
        else sameBits(`${c.op}: input ${i} (${name}) was written by the op`, r.after[i], tensors.get(name).data);
      });
      if (c.gout)
        c.grads.forEach((name, i) => {
          if (!name) return;
          assert.ok(r.grads[i], `no gradient for input ${i}`);
          compare(`${c.op} d${c.inputs[i]}`, r.grads[i], tensors.get(name).data, c.grad_rtol, c.grad_atol);
        });
      // run to run: the same bits on one adapter
      const again = await runGpu(c, tensors);
      sameBits(`${c.op} out, second run`, again.out, r.out);
      again.grads.forEach((g, i) => g && sameBits(`${c.op} grad ${i}, second run`, g, r.grads[i]));
    });
  }

test("webgpu conformance covers the ops that have kernels (report)", () => {
  assert.ok(ran > 0, "no fixture case ran on webgpu");
  console.log(`  ${ran} fixture cases on webgpu; ops without WebGPU kernels yet: ${[...without].sort().join(", ") || "none"}`);
});

runAndExit(sn);
