// The zoo on the GPU: for each model, the same weights on the CPU and on webgpu give the same
// forward output, and one SGD training step (train mode: batch statistics, dropout masks,
// auxiliary heads) gives the same loss, gradients and updated parameters. Small inputs, because
// the GPU here is SwiftShader (a CPU); the shapes still cross every kind of layer the zoo has.
//
// How close is close: batch norm over few values per channel (a 1x1 map at batch 2) is badly
// conditioned, so a whole net's gradient moves by up to tens of percent when the input moves by
// 1e-6 (measured on the CPU: ResNet-18 at 32x32, batch 2: 13%; at 64x64: 2e-5). The GPU sums in
// another order, which is a perturbation of that size. So each model's gradients must agree
// within max(1e-4, 10x the CPU's own change under such a perturbation of its input), measured in
// the same test, over the gradient's scale (a parameter's own, at least 1% of the model's).
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { uniformValues } from "./helpers.mjs";
import { initGpu, runAndExit } from "./gpu_helpers.mjs";

test.before(async () => {
  await initGpu(sn);
});

/** max |a - b| over max |a| (the logits' scale), as bench/resnet18.mjs compares logits */
function relErr(a, b) {
  let d = 0, s = 1e-30;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(a[i]));
  }
  return d / s;
}

const MODELS = [
  ["lenet", () => sn.models.lenet({ classes: 10 }), [2, 1, 28, 28], 10],
  ["lenet5 (partial connections, tanh, avg pool)", () => sn.models.lenet5(), [2, 1, 32, 32], 10],
  ["alexnet (LRN, overlapping pools, dropout)", () => sn.models.alexnet({ classes: 10, inputSize: 67 }), [1, 3, 67, 67], 10],
  ["vgg11_bn (batch norm)", () => sn.models.vgg11_bn({ classes: 10, inputSize: 64, poolSize: 1 }), [2, 3, 64, 64], 10],
  ["googlenet with aux heads", () => sn.models.googlenet({ classes: 10, inputSize: 96 }), [2, 3, 96, 96], 10],
  ["resnet18", () => sn.models.resnet18({ classes: 10, inputSize: 64 }), [2, 3, 64, 64], 10],
  ["resnet50 (bottlenecks, projections)", () => sn.models.resnet50({ classes: 10, inputSize: 64 }), [2, 3, 64, 64], 10],
  ["cifar resnet20", () => sn.models.resnet20({ classes: 10 }), [2, 3, 32, 32], 10],
  ["unet (transposed conv, cat)", () => sn.models.unet({ classes: 2, inChannels: 1, inputSize: 32, depth: 2, width: 8 }), [1, 1, 32, 32], 2],
  ["fcn8s (upsampling, skips)", () => sn.models.fcn8s({ classes: 3, inChannels: 3, inputSize: 32, config: "A", hidden: 64 }), [1, 3, 32, 32], 3],
];

for (const [name, make, shape, classes] of MODELS)
  test(`webgpu ${name}: forward and one training step agree with the CPU`, async () => {
    sn.manualSeed(5);
    const cpu = make();
    sn.manualSeed(5);
    const gpu = make().to("webgpu");
    const n = shape.reduce((a, b) => a * b, 1);
    const xv = uniformValues(n, 9);
    const x = sn.tensor(xv, shape), xg = x.to("webgpu");
    // eval: the forward outputs
    cpu.eval();
    gpu.eval();
    const yc = sn.noGrad(() => cpu.forward(x)).toArray();
    const yg = await sn.noGrad(() => gpu.forward(xg)).read();
    assert.ok(relErr(yc, yg) < 1e-4, `${name}: forward differs by ${relErr(yc, yg)} of the output's scale`);
    // train: the gradients of one step on the same targets, then the SGD step
    cpu.train();
    gpu.train();
    const dense = yc.length / shape[0] === classes; // a score per class, else per-pixel maps
    const tShape = dense ? [shape[0]] : [shape[0], shape[2], shape[3]];
    const tv = Float32Array.from({ length: tShape.reduce((a, b) => a * b, 1) }, (_, i) => (i * 7) % classes);
    const lossOf = (m, xx, t) => {
      const out = m.forward(xx);
      const l = sn.cross_entropy(out, t);
      const aux = m.auxLoss?.(t);
      return aux ? sn.add(l, aux) : l;
    };
    // the CPU's own sensitivity: the same step with every 7th input scaled by 1 + 1e-6
    sn.manualSeed(5);
    const twin = make();
    twin.train();
    const lt = lossOf(twin, sn.tensor(xv.map((v, i) => (i % 7 === 0 ? v * (1 + 1e-6) : v)), shape), sn.tensor(tv, tShape));
    lt.backward();
    const lc = lossOf(cpu, x, sn.tensor(tv, tShape));
    lc.backward();
    const lg = lossOf(gpu, xg, sn.tensor(tv, tShape).to("webgpu"));
    lg.backward();
    const pc = cpu.parameters(), pg = gpu.parameters(), pt = twin.parameters();
    const grads = { c: [], g: [], t: [] };
    for (let i = 0; i < pc.length; i++) {
      grads.c.push(pc[i].grad?.toArray() ?? null);
      grads.g.push(pg[i].grad ? await pg[i].grad.read() : null);
      grads.t.push(pt[i].grad?.toArray() ?? null);
    }
    const global = Math.max(...grads.c.map((g) => (g ? g.reduce((m, v) => Math.max(m, Math.abs(v)), 0) : 0)));
    const diff = (a, b) => {
      let d = 0, s = 0.01 * global;
      for (let i = 0; i < a.length; i++) {
        d = Math.max(d, Math.abs(a[i] - b[i]));
        s = Math.max(s, Math.abs(a[i]));
      }
      return d / s;
    };
    let self = 0;
    grads.c.forEach((g, i) => g && (self = Math.max(self, diff(g, grads.t[i]))));
    const tol = Math.max(1e-4, 10 * self);
    const lcv = lc.item(), lgv = (await lg.read())[0], ltv = lt.item();
    const lossTol = Math.max(1e-4 * Math.max(1, Math.abs(lcv)), 10 * Math.abs(lcv - ltv));
    assert.ok(Math.abs(lcv - lgv) <= lossTol, `${name}: loss ${lgv} on webgpu, ${lcv} on the CPU (tolerance ${lossTol})`);
    grads.c.forEach((g, i) => {
      if (!g) return assert.is(grads.g[i], null, `${name}: parameter ${i} has a gradient on webgpu only`);
      const e = diff(g, grads.g[i]);
      assert.ok(e <= tol, `${name}: gradient of parameter ${i} ${sn.shapeStr(pc[i].shape)} differs by ${e.toExponential(2)} of its scale (tolerance ${tol.toExponential(2)}: the CPU itself moves by ${self.toExponential(2)})`);
    });
    const oc = new sn.SGD(cpu.parameters(), { lr: 0.01, momentum: 0.9 }), og = new sn.SGD(gpu.parameters(), { lr: 0.01, momentum: 0.9 });
    const before = pc.map((p) => p.toArray());
    oc.step();
    og.step();
    // after the step each parameter is p - lr x gradient (a first SGD step): it may differ by lr
    // times the gradients' tolerance, plus the rounding of p + update (2 ulp of p)
    for (let i = 0; i < pc.length; i++) {
      if (!grads.c[i]) continue;
      const a = pc[i].toArray(), b = await pg[i].read();
      const gs = Math.max(grads.c[i].reduce((m, v) => Math.max(m, Math.abs(v)), 0), 0.01 * global);
      for (let j = 0; j < a.length; j++) {
        const allowed = 0.01 * tol * gs * 1.01 + 2 ** -22 * Math.abs(before[i][j]);
        if (!(Math.abs(a[j] - b[j]) <= allowed))
          assert.ok(false, `${name}: parameter ${i} ${sn.shapeStr(pc[i].shape)} element ${j} after the step: ${b[j]} on webgpu, ${a[j]} on the CPU (allowed ${allowed.toExponential(2)})`);
      }
    }
    twin.dispose();
    cpu.dispose();
    gpu.dispose();
  });

runAndExit(sn);
