// conv2d_fused on WebGPU (the epilogue in wgsl/conv.wgsl's conv_fwd and conv_dw_fwd) against the
// CPU op on the same inputs, forward and backward, on the implicit-GEMM and the depthwise paths;
// and a ResNet block in eval mode on the GPU: the same outputs as the CPU, fewer dispatches with
// fusion on than off. Shapes are small: SwiftShader runs the GPU on the CPU.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { compare, uniformValues } from "./helpers.mjs";
import { initGpu, runAndExit } from "./gpu_helpers.mjs";

test.before(async () => {
  await initGpu(sn);
});

let seed = 11;
const vals = (shape, lo = -1, hi = 1) => uniformValues(shape.reduce((a, b) => a * b, 1), seed++, lo, hi);

const CASES = [
  ["GEMM 3x3 p1, everything", [2, 5, 7, 6], [7, 5, 3, 3], { padding: 1 }, { bias: true, bn: true, residual: true, relu: true }],
  ["GEMM 1x1 s2, scale and shift", [1, 6, 9, 7], [4, 6, 1, 1], { stride: 2 }, { bias: false, bn: true, residual: false, relu: false }],
  ["depthwise 3x3, everything", [1, 6, 8, 8], [6, 1, 3, 3], { padding: 1, groups: 6 }, { bias: true, bn: true, residual: true, relu: true }],
];

for (const [name, xs, ws, attrs, v] of CASES)
  test(`webgpu conv2d_fused: ${name}: output and every gradient agree with the CPU`, async () => {
    const O = ws[0];
    const HO = Math.floor((xs[2] + 2 * (attrs.padding ?? 0) - ws[2]) / (attrs.stride ?? 1)) + 1;
    const WO = Math.floor((xs[3] + 2 * (attrs.padding ?? 0) - ws[3]) / (attrs.stride ?? 1)) + 1;
    const shapes = [xs, ws, [O], [O], [O], [xs[0], O, HO, WO]];
    const present = [true, true, v.bias, v.bn, v.bn, v.residual];
    const values = shapes.map((s, i) => (present[i] ? vals(s, i === 3 ? 0.5 : -1, i === 3 ? 1.5 : 1) : null));
    const gout = vals([xs[0], O, HO, WO]);
    const results = {};
    for (const device of ["cpu", "webgpu"]) {
      const ins = values.map((x, i) => (x ? sn.tensor(x, shapes[i]) : null)).map((t) => (t && device === "webgpu" ? t.to("webgpu") : t));
      for (const t of ins) t?.requireGrad();
      const y = sn.conv2d_fused(...ins, { ...attrs, relu: v.relu });
      const read = (t) => (device === "webgpu" ? t.read() : t.toArray());
      const out = await read(y);
      y.backward(sn.tensor(gout, y.shape).to(device));
      results[device] = { out, grads: await Promise.all(ins.map((t) => (t ? read(t.grad) : null))) };
    }
    const K = (ws[1] * ws[2] * ws[3]);
    compare(`${name}: output`, results.webgpu.out, results.cpu.out, 1e-4, 1e-5 + 1e-6 * K);
    ["input", "weight", "bias", "scale", "shift", "residual"].forEach((n, i) => {
      if (!present[i]) return;
      compare(`${name}: gradient of ${n}`, results.webgpu.grads[i], results.cpu.grads[i], 1e-4, 1e-4);
    });
  });

test("webgpu automatic fusion: CIFAR ResNet-20 in eval mode agrees with the CPU and takes fewer dispatches fused", async () => {
  sn.manualSeed(3);
  const make = () => sn.models.resnet20({ classes: 10 });
  const cpu = make();
  for (const m of cpu.modules())
    if (m instanceof sn.nn.BatchNorm2d) {
      m.runningMean.data.set(vals([m.numFeatures], -0.5, 0.5));
      m.runningVar.data.set(vals([m.numFeatures], 0.3, 3));
      m.weight.data.set(vals([m.numFeatures], 0.5, 1.5));
      m.bias.data.set(vals([m.numFeatures], -0.5, 0.5));
    }
  cpu.eval();
  const gpu = make();
  gpu.loadStateDict(cpu.stateDict());
  gpu.to("webgpu").eval();
  const x = sn.tensor(vals([1, 3, 32, 32], 0, 1), [1, 3, 32, 32]);
  const xg = x.to("webgpu");
  const want = sn.noGrad(() => cpu.forward(x)).toArray();
  const stats = sn.gpuEngine().stats;
  const run = async (fuse) => {
    sn.engine().fuse = fuse;
    const before = stats.dispatches;
    const y = sn.noGrad(() => gpu.forward(xg));
    const n = stats.dispatches - before;
    const out = await y.read();
    y.dispose();
    return { out, n };
  };
  const off = await run(false), on = await run(true);
  sn.engine().fuse = true;
  const scale = want.reduce((m, a) => Math.max(m, Math.abs(a)), 0);
  compare("fused on the GPU vs the CPU", on.out, want, 0, 1e-4 * scale);
  compare("unfused on the GPU vs the CPU", off.out, want, 0, 1e-4 * scale);
  // ResNet-20: 19 conv -> bn (-> add) -> relu groups; each fused group saves at least the
  // batch norm's two dispatches (invstd, normalise) less one for its scale and shift, and the
  // relu's (and the add's) one
  assert.ok(on.n + 2 * 19 <= off.n, `dispatches: ${on.n} fused, ${off.n} unfused`);
  console.log(`  ResNet-20 forward on webgpu: ${off.n} dispatches unfused, ${on.n} fused`);
});

runAndExit(sn);
