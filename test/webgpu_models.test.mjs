// The zoo on the GPU: for each model, the same weights on the CPU and on webgpu give the same
// forward output, and one SGD training step (train mode: batch statistics, dropout masks,
// auxiliary heads) gives the same loss and the same updated parameters. Small inputs, because
// the GPU here is SwiftShader (a CPU); the shapes still cross every kind of layer the zoo has.
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
  ["vgg11_bn (batch norm)", () => sn.models.vgg11_bn({ classes: 10, inputSize: 32, poolSize: 1 }), [2, 3, 32, 32], 10],
  ["googlenet with aux heads", () => sn.models.googlenet({ classes: 10, inputSize: 64 }), [2, 3, 64, 64], 10],
  ["resnet18", () => sn.models.resnet18({ classes: 10, inputSize: 32 }), [2, 3, 32, 32], 10],
  ["resnet50 (bottlenecks, projections)", () => sn.models.resnet50({ classes: 10, inputSize: 32 }), [2, 3, 32, 32], 10],
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
    // train: one step of SGD with momentum on the same targets
    cpu.train();
    gpu.train();
    const dense = yc.length / shape[0] === classes; // a score per class, else per-pixel maps
    const tShape = dense ? [shape[0]] : [shape[0], shape[2], shape[3]];
    const tv = Float32Array.from({ length: tShape.reduce((a, b) => a * b, 1) }, (_, i) => (i * 7) % classes);
    const oc = new sn.SGD(cpu.parameters(), { lr: 0.01, momentum: 0.9 }), og = new sn.SGD(gpu.parameters(), { lr: 0.01, momentum: 0.9 });
    const lossOf = (m, xx, t) => {
      const out = m.forward(xx);
      const l = sn.cross_entropy(out, t);
      const aux = m.auxLoss?.(t);
      return aux ? sn.add(l, aux) : l;
    };
    const lc = lossOf(cpu, x, sn.tensor(tv, tShape));
    lc.backward();
    const lg = lossOf(gpu, xg, sn.tensor(tv, tShape).to("webgpu"));
    lg.backward();
    const lcv = lc.item(), lgv = (await lg.read())[0];
    assert.ok(Math.abs(lcv - lgv) <= 1e-4 * Math.max(1, Math.abs(lcv)), `${name}: loss ${lgv} on webgpu, ${lcv} on the CPU`);
    const pc = cpu.parameters(), pg = gpu.parameters();
    // every parameter's gradient, relative to its own scale (a whole net's sums in another order)
    for (let i = 0; i < pc.length; i++) {
      if (!pc[i].grad) continue;
      const e = relErr(pc[i].grad.toArray(), await pg[i].grad.read());
      assert.ok(e < 1e-4, `${name}: gradient of parameter ${i} ${sn.shapeStr(pc[i].shape)} differs by ${e} of its scale`);
    }
    oc.step();
    og.step();
    for (let i = 0; i < pc.length; i++) {
      const e = relErr(pc[i].toArray(), await pg[i].read());
      assert.ok(e < 1e-5, `${name}: parameter ${i} ${sn.shapeStr(pc[i].shape)} after the step differs by ${e} of its scale`);
    }
    cpu.dispose();
    gpu.dispose();
  });

runAndExit(sn);
