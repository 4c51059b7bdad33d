// conv2d_fused (src/ops/fused.ts) and the automatic fusion of models in inference
// (src/nn/fusion.ts): the fused op gives the bits of conv2d -> batch_norm (eval) -> add -> relu
// on every conv path (im2col, Winograd F(2,3), F(4,3) and F(2,5), depthwise, 1x1, groups), on both
// kernel builds and on 1 and 2 threads; its backward is the unfused ops' gradient; the zoo's
// ResNets give the same bits with fusion on and off, and fuse only where nothing can tell
// (eval mode with running statistics, no gradient recorded, no forward hook, not while
// exportOnnx traces); errors name the op and the shapes. Training: batch_norm_fused (batch norm
// (+ shortcut) -> ReLU) and conv2d_fused with only its ReLU (conv -> ReLU) give the same loss,
// gradients, parameters and running statistics as the unfused layers. The GPU side:
// webgpu_fused.test.mjs.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { exportOnnx, loadOnnx } from "../dist/onnx.js";
import { compare, sameBits, uniformValues } from "./helpers.mjs";

let seed = 1;
const rand = (shape, lo = -1, hi = 1) => sn.tensor(uniformValues(shape.reduce((a, b) => a * b, 1), seed++, lo, hi), shape);

/** Batch norm parameters and statistics far from the identity. */
function bnParams(O) {
  return { rm: rand([O], -0.5, 0.5), rv: rand([O], 0.3, 3), g: rand([O], 0.5, 1.5), b: rand([O], -0.5, 0.5) };
}

// [name, input, weight, attrs, conv3x3 setting, the path the profiler should name]
const PATHS = [
  ["im2col 3x3 p1", [2, 8, 9, 11], [6, 8, 3, 3], { padding: 1 }, "im2col", "fused im2col"],
  ["Winograd F(4,3)", [1, 32, 14, 13], [33, 32, 3, 3], { padding: 1 }, "winograd4", "fused winograd F(4,3)"],
  ["Winograd F(2,3)", [2, 32, 10, 9], [35, 32, 3, 3], { padding: 1 }, "winograd2", "fused winograd F(2,3)"],
  ["1x1 stride 2", [2, 16, 9, 7], [20, 16, 1, 1], { stride: 2 }, "auto", "fused im2col"],
  ["1x1 stride 1", [1, 24, 7, 7], [13, 24, 1, 1], {}, "auto", "fused im2col"],
  ["depthwise 3x3", [2, 10, 9, 9], [10, 1, 3, 3], { padding: 1, groups: 10 }, "auto", "fused depthwise"],
  ["groups 2, 5x5 s2", [1, 6, 12, 11], [8, 3, 5, 5], { stride: 2, padding: 2, groups: 2 }, "auto", "fused im2col"],
  ["Winograd F(2,5) (5x5 on auto)", [2, 16, 9, 11], [17, 16, 5, 5], { padding: 2 }, "auto", "fused winograd F(2,5)"],
  // small maps (at most engine.smallMapPositions per image): images side by side, then the
  // epilogue as one pass of its own
  ["small map 3x3 p1 on 3x3", [3, 16, 3, 3], [20, 16, 3, 3], { padding: 1 }, "auto", "fused im2col, images side by side"],
  ["small map 1x1 on 2x2", [2, 24, 2, 2], [12, 24, 1, 1], {}, "auto", "fused im2col, images side by side"],
];

// which parts of the epilogue are there
const VARIANTS = [
  { bias: true, bn: true, residual: true, relu: true },
  { bias: false, bn: true, residual: false, relu: true },
  { bias: true, bn: true, residual: true, relu: false },
  { bias: false, bn: false, residual: true, relu: true },
  { bias: true, bn: false, residual: false, relu: false },
];

/** The fused op and the unfused ops on the same inputs: the same bits. */
function checkPath([name, xs, ws, attrs, conv3x3], v, label) {
  sn.engine().conv3x3 = conv3x3;
  sn.tidy(() => {
    const O = ws[0];
    const x = rand(xs), w = rand(ws), b = v.bias ? rand([O]) : null;
    const { rm, rv, g, b: beta } = bnParams(O);
    let y = sn.conv2d(x, w, b, attrs);
    if (v.bn) y = sn.batch_norm(y, rm, rv, g, beta, { eps: 1e-3 });
    const r = v.residual ? rand(y.shape) : null;
    if (r) y = sn.add(y, r);
    if (v.relu) y = sn.relu(y);
    const p = v.bn ? sn.batchNormEvalParams(rm, rv, g, beta, 1e-3) : { scale: null, shift: null };
    const f = sn.conv2d_fused(x, w, b, p.scale, p.shift, r, { ...attrs, relu: v.relu });
    sameBits(`${label}: ${name} ${JSON.stringify(v)}`, f.toArray(), y.toArray());
  });
}

for (const build of ["simd", "relaxed"])
  for (const threads of [1, 2])
    test(`conv2d_fused: the same bits as conv2d -> batch_norm -> add -> relu on every path (${build} build, ${threads} thread${threads > 1 ? "s" : ""})`, async () => {
      await sn.init({ build, threads, minParallelWork: 0, warmUp: false });
      assert.is(sn.engine().info.build, build);
      for (const p of PATHS) for (const v of VARIANTS) checkPath(p, v, `${build}, ${threads} threads`);
    });

test("conv2d_fused: the profiler names the fused path of each conv path", async () => {
  await sn.init({ threads: 2 });
  for (const [name, xs, ws, attrs, conv3x3, path] of PATHS) {
    sn.engine().conv3x3 = conv3x3;
    const { rm, rv, g, b } = bnParams(ws[0]);
    const x = rand(xs), w = rand(ws);
    const { scale, shift } = sn.batchNormEvalParams(rm, rv, g, b, 1e-5);
    const prof = sn.profile(() => sn.tidy(() => void sn.conv2d_fused(x, w, null, scale, shift, null, { ...attrs, relu: true })), { peak: false });
    const row = prof.ops.find((o) => o.op === "conv2d_fused");
    assert.ok(row, `${name}: a conv2d_fused row`);
    assert.is(row.path, path, name);
  }
  sn.engine().conv3x3 = "auto";
});

test("conv2d_fused: backward is the unfused ops' gradient (every input), and passes gradcheck", async () => {
  await sn.init({ threads: 2 });
  for (const relu of [false, true]) {
    const O = 5;
    const mk = () => [rand([2, 4, 7, 6]), rand([O, 4, 3, 3]), rand([O]), rand([O], 0.5, 1.5), rand([O]), rand([2, O, 7, 6])];
    const ins = mk();
    for (const t of ins) t.requireGrad();
    const attrs = { padding: 1 };
    const fused = sn.conv2d_fused(...ins, { ...attrs, relu });
    const gout = rand(fused.shape);
    fused.backward(gout);
    const got = ins.map((t) => t.grad.toArray());
    // the same function from unfused ops (scale and shift as a per-channel mul and add via
    // batch_norm with mean 0 and var 1 - eps: the reference's own gradient)
    const ref = ins.map((t) => sn.tensor(t.toArray(), t.shape).requireGrad());
    const [x, w, b, s, t, r] = ref;
    const eps = 1e-5;
    const z = sn.batch_norm(sn.conv2d(x, w, b, attrs), sn.zeros([O]), sn.full([O], 1 - eps), s, t, { eps });
    let y = sn.add(z, r);
    if (relu) y = sn.relu(y);
    compare(`relu ${relu}: output`, fused.toArray(), y.toArray(), 1e-5, 1e-5);
    y.backward(gout);
    ["input", "weight", "bias", "scale", "shift", "residual"].forEach((n, i) =>
      compare(`relu ${relu}: gradient of ${n}`, got[i], ref[i].grad.toArray(), 1e-4, 1e-4));
  }
  // finite differences (no relu: no kink)
  const ins = [rand([1, 3, 5, 6]), rand([4, 3, 3, 3]), rand([4]), rand([4], 0.5, 1.5), rand([4]), rand([1, 4, 5, 6])];
  const report = sn.gradcheck((...a) => sn.conv2d_fused(...a, { padding: 1 }), ins.map((t) => t.requireGrad()));
  assert.ok(report.ok, JSON.stringify(report.worst));
});

test("conv2d_fused: errors name the op and the shapes", async () => {
  await sn.init({ threads: 2 });
  const x = rand([1, 3, 6, 6]), w = rand([4, 3, 3, 3]);
  const op = (...a) => () => sn.conv2d_fused(...a);
  assert.throws(op(x, w, null, rand([5])), /conv2d_fused: scale \[5\] must be \[4\] \(one per output channel; weight \[4, ?3, ?3, ?3\]\)/);
  assert.throws(op(x, w, null, null, rand([4, 1])), /conv2d_fused: shift \[4, ?1\] must be \[4\]/);
  assert.throws(op(x, w, rand([3])), /conv2d_fused: bias \[3\] must be \[4\]/);
  assert.throws(op(x, w, null, null, null, rand([1, 4, 6, 6])), /conv2d_fused: residual \[1, ?4, ?6, ?6\] must have the output's shape \[1, ?4, ?4, ?4\] \(input \[1, ?3, ?6, ?6\], weight \[4, ?3, ?3, ?3\]\)/);
  assert.throws(op(x, w, null, null, null, null, { relu: 1 }), /conv2d_fused: relu must be true or false, got 1/);
  assert.throws(op(x, w, null, null, null, null, { rellu: true }), /conv2d_fused: unknown attribute 'rellu' \(did you mean 'relu'\?\)/);
  assert.throws(op(x, rand([4, 2, 3, 3])), /conv2d_fused: input has 3 channels but weight expects 2/);
});

// ---- automatic fusion ----

/** Random running statistics and affine parameters in every batch norm: fusion must fold them. */
function randomizeNorms(model) {
  for (const m of model.modules())
    if (m instanceof sn.nn.BatchNorm2d) {
      const C = m.numFeatures;
      m.runningMean?.data.set(uniformValues(C, seed++, -0.5, 0.5));
      m.runningVar?.data.set(uniformValues(C, seed++, 0.3, 3));
      m.weight.data.set(uniformValues(C, seed++, 0.5, 1.5));
      m.bias.data.set(uniformValues(C, seed++, -0.5, 0.5));
    }
  return model;
}

/** Runs fn counting the applications of each op (at the top level, as a model calls them). */
function countOps(fn) {
  const counts = {};
  const entries = [...sn.opTable.values()];
  const applies = entries.map((e) => e.apply);
  entries.forEach((e, i) => (e.apply = (inputs, attrs) => ((counts[e.name] = (counts[e.name] ?? 0) + 1), applies[i].call(e, inputs, attrs))));
  try {
    return { value: fn(), counts };
  } finally {
    entries.forEach((e, i) => (e.apply = applies[i]));
  }
}

const infer = (model, x) => sn.noGrad(() => sn.tidy(() => model.forward(x).toArray()));

const ZOO = [
  // [model, options, input, fused ops expected: conv->bn(->relu) pairs and block endings]
  ["resnet18", {}, [1, 3, 64, 64], 20],
  ["resnet50", {}, [1, 3, 64, 64], 53],
  ["resnet20", {}, [2, 3, 32, 32], 19],
  // 32x32 inputs end in 2x2 and 1x1 maps: the small-map path and its epilogue pass
  ["resnet18", { classes: 10, inputSize: 32 }, [2, 3, 32, 32], 20],
];

for (const [name, opts, xs, nFused] of ZOO)
  test(`automatic fusion: ${name}${Object.keys(opts).length ? ` ${JSON.stringify(opts)}` : ""} in eval mode gives the same bits with fusion on and off, with ${nFused} fused ops and no batch_norm, add or relu`, async () => {
    await sn.init({ threads: 2 });
    sn.manualSeed(3);
    const model = randomizeNorms(sn.createModel(name, opts));
    model.eval();
    const x = rand(xs, 0, 1);
    sn.engine().fuse = false;
    const off = countOps(() => infer(model, x));
    sn.engine().fuse = true;
    const on = countOps(() => infer(model, x));
    sameBits(name, on.value, off.value);
    assert.is(off.counts.conv2d_fused, undefined, "fusion off: no fused op");
    assert.is(on.counts.conv2d_fused, nFused, "fused ops");
    assert.is(on.counts.batch_norm, undefined, "no batch_norm left");
    assert.is(on.counts.relu, undefined, "no relu left");
    assert.is(on.counts.add, undefined, "no add left");
    assert.ok(off.counts.batch_norm >= nFused);
  });

test("automatic fusion: also on 1 thread and with Winograd forced, the same bits (cifar ResNet-20, batch 3)", async () => {
  for (const [threads, conv3x3] of [[1, "winograd"], [2, "im2col"]]) {
    await sn.init({ threads, conv3x3, minParallelWork: 0 });
    sn.manualSeed(4);
    const model = randomizeNorms(sn.createModel("resnet20")).eval();
    const x = rand([3, 3, 32, 32], 0, 1);
    sn.engine().fuse = false;
    const off = infer(model, x);
    sn.engine().fuse = true;
    sameBits(`${threads} threads, ${conv3x3}`, infer(model, x), off);
  }
  await sn.init({ threads: 2 });
});

test("automatic fusion: never in training mode, never where a gradient is recorded, never under a forward hook", async () => {
  await sn.init({ threads: 2 });
  sn.manualSeed(5);
  const model = randomizeNorms(sn.createModel("resnet20"));
  const x = rand([2, 3, 32, 32], 0, 1);
  // training mode: batch statistics, running ones updated: no fusion
  const train = countOps(() => sn.noGrad(() => sn.tidy(() => void model.forward(x))));
  assert.is(train.counts.conv2d_fused, undefined, "training");
  model.eval();
  // eval with gradients recorded (parameters require grad): the unfused ops, same output
  const want = infer(model, x);
  const grad = countOps(() => sn.tidy(() => model.forward(x).toArray()));
  assert.is(grad.counts.conv2d_fused, undefined, "recording gradients");
  sameBits("eval with gradients", grad.value, want);
  // frozen parameters and an input without grad: nothing to record, so it fuses
  model.requiresGrad_?.(false) ?? model.parameters().forEach((p) => (p.requiresGrad = false));
  const frozen = countOps(() => sn.tidy(() => model.forward(x).toArray()));
  assert.ok(frozen.counts.conv2d_fused > 0, "frozen model fuses");
  sameBits("frozen", frozen.value, want);
  // a forward hook sees every layer, batch norms included
  const seen = [];
  const hooked = countOps(() => sn.nn.withForwardHook((m) => seen.push(m.type), () => infer(model, x)));
  assert.is(hooked.counts.conv2d_fused, undefined, "hooked");
  assert.ok(seen.includes("BatchNorm2d"));
  sameBits("hooked", hooked.value, want);
});

test("automatic fusion: a Sequential's conv -> bn -> relu and conv -> bn fuse, a batch norm without running statistics does not (its bn -> relu runs as batch_norm_fused)", async () => {
  await sn.init({ threads: 2 });
  sn.manualSeed(6);
  const { nn } = sn;
  const model = randomizeNorms(new nn.Sequential(
    new nn.Conv2d(3, 8, 3, { padding: 1, bias: false }), new nn.BatchNorm2d(8), new nn.ReLU(),
    new nn.Conv2d(8, 6, 3, { stride: 2 }), new nn.BatchNorm2d(6, { eps: 1e-3 }),
    new nn.Conv2d(6, 4, 1), new nn.BatchNorm2d(4, { trackRunningStats: false }), new nn.ReLU(),
  )).eval();
  const x = rand([2, 3, 11, 10]);
  sn.engine().fuse = false;
  const off = countOps(() => infer(model, x));
  sn.engine().fuse = true;
  const on = countOps(() => infer(model, x));
  sameBits("sequential", on.value, off.value);
  assert.is(on.counts.conv2d_fused, 2);
  assert.is(on.counts.batch_norm, undefined, "the batch norm without running statistics is not the conv's");
  assert.is(on.counts.batch_norm_fused, 1, "its batch norm -> relu is one op");
  assert.is(on.counts.relu, undefined);
});

// ---- training: batch_norm_fused (batch norm (+ shortcut) -> ReLU in one op) ----

/** One SGD step of a model on x (cross-entropy to fixed labels): the loss, every gradient, every
 *  parameter and buffer after the step. */
function trainStep(model, x, labels) {
  const params = model.parameters();
  const opt = sn.createOptimizer("sgd", params, { lr: 0.1, momentum: 0.9 });
  return sn.tidy(() => {
    opt.zeroGrad(true);
    const loss = sn.cross_entropy(model.forward(x), labels);
    loss.backward();
    const grads = params.map((p) => Float32Array.from(p.grad.data));
    opt.step();
    const state = [...model.stateDict()].map(([k, t]) => [k, Float32Array.from(t.data)]);
    return { loss: loss.item(), grads, state };
  });
}

function sameStep(what, a, b) {
  assert.is(a.loss, b.loss, `${what}: loss`);
  a.grads.forEach((g, i) => sameBits(`${what}: gradient ${i}`, g, b.grads[i]));
  a.state.forEach(([k, v], i) => sameBits(`${what}: ${k} after the step`, v, b.state[i][1]));
}

for (const [name, opts, xs, nFused] of [
  ["resnet20", {}, [4, 3, 32, 32], 19], // 9 blocks: bn1 -> relu1 and the ending each, and the stem
  ["resnet18", { classes: 10, inputSize: 32 }, [2, 3, 32, 32], 17],
  ["lenet", { batchNorm: true }, [4, 1, 28, 28], 3],
])
  test(`training fusion: ${name} steps give the same bits with fusion on and off (loss, gradients, parameters, running statistics), with ${nFused} batch_norm_fused and no relu or add`, async () => {
    for (const threads of [1, 2]) {
      await sn.init({ threads });
      const run = (fuse) => {
        sn.engine().fuse = fuse;
        sn.manualSeed(7);
        const model = sn.createModel(name, opts);
        model.train();
        const x = rand(xs, 0, 1), labels = sn.tensor(Array.from({ length: xs[0] }, (_, i) => i % 10), [xs[0]]);
        seed -= 1; // the same input for both runs
        return countOps(() => [trainStep(model, x, labels), trainStep(model, x, labels)]);
      };
      const off = run(false), on = run(true);
      seed += 1;
      sameStep(`${name}, ${threads} threads, step 1`, on.value[0], off.value[0]);
      sameStep(`${name}, ${threads} threads, step 2`, on.value[1], off.value[1]);
      assert.is(off.counts.batch_norm_fused, undefined, "fusion off");
      assert.is(on.counts.batch_norm_fused, 2 * nFused, "fused ops in two steps");
      assert.is(on.counts.relu, undefined, "no relu left");
      assert.is(on.counts.add, undefined, "no add left");
    }
    sn.engine().fuse = true;
    await sn.init({ threads: 2 });
  });

test("training fusion: conv -> relu without batch norm (LeNet) runs as conv2d_fused with its ReLU, same bits in training (loss, gradients, parameters) and inference", async () => {
  for (const threads of [1, 2]) {
    await sn.init({ threads });
    const run = (fuse) => {
      sn.engine().fuse = fuse;
      sn.manualSeed(9);
      const model = sn.createModel("lenet").train();
      const x = rand([4, 1, 28, 28], 0, 1), labels = sn.tensor([1, 7, 3, 0], [4]);
      seed -= 1;
      return countOps(() => [trainStep(model, x, labels), trainStep(model, x, labels), sn.noGrad(() => sn.tidy(() => model.eval().forward(x).toArray()))]);
    };
    const off = run(false), on = run(true);
    seed += 1;
    sameStep(`lenet, ${threads} threads, step 1`, on.value[0], off.value[0]);
    sameStep(`lenet, ${threads} threads, step 2`, on.value[1], off.value[1]);
    sameBits(`lenet, ${threads} threads, eval`, on.value[2], off.value[2]);
    assert.is(on.counts.conv2d_fused, 6, "both convs with their ReLUs, in 2 steps and 1 inference");
    assert.is(on.counts.conv2d, undefined);
    assert.is(on.counts.relu, 3, "the classifier's Linear -> ReLU stays");
    assert.is(off.counts.conv2d_fused, undefined);
  }
  sn.engine().fuse = true;
  await sn.init({ threads: 2 });
});

test("training fusion: never under a forward hook, never for a subclassed layer or off the CPU's fuse switch; the profiler times it as the batch norm layer", async () => {
  await sn.init({ threads: 2 });
  const { nn } = sn;
  sn.manualSeed(8);
  const make = () => new nn.Sequential(new nn.Conv2d(3, 4, 3, { padding: 1 }), new nn.BatchNorm2d(4), new nn.ReLU(), new nn.Flatten(), new nn.Linear(4 * 25, 3));
  const model = make().train();
  const x = rand([2, 3, 5, 5]);
  const seen = [];
  const hooked = countOps(() => sn.nn.withForwardHook((m) => seen.push(m.type), () => sn.tidy(() => void model.forward(x))));
  assert.is(hooked.counts.batch_norm_fused, undefined, "hooked");
  assert.ok(seen.includes("BatchNorm2d") && seen.includes("ReLU"));
  // a ReLU whose forward is patched is not the library's: no fusion
  const patched = make().train();
  const relu = [...patched.children()][2];
  relu.forward = (t) => sn.relu(t);
  assert.is(countOps(() => sn.tidy(() => void patched.forward(x))).counts.batch_norm_fused, undefined, "patched ReLU");
  const plain = countOps(() => sn.tidy(() => void model.forward(x)));
  assert.is(plain.counts.batch_norm_fused, 1, "fuses");
  const p = sn.profile(() => sn.tidy(() => sn.sum(model.forward(x)).backward()), { peak: false });
  const bnRow = p.layers.find((l) => l.name === "1"), reluRow = p.layers.find((l) => l.name === "2");
  assert.ok(bnRow && bnRow.forwardMs > 0 && bnRow.backwardMs > 0, "timed as the batch norm layer, forward and backward");
  assert.is(reluRow, undefined, "the ReLU has no row of its own");
  assert.ok(p.ops.some((r) => r.op === "batch_norm_fused" && r.phase === "backward"));
});

test("the switch: init({ fuse }) takes a boolean, engine.fuse is settable, unknown keys are refused", async () => {
  const initFails = async (opts, re) => {
    let err = null;
    await sn.init(opts).catch((e) => (err = e));
    assert.ok(err, `init(${JSON.stringify(opts)}) must fail`);
    assert.match(err.message, re);
  };
  await initFails({ fuse: "yes" }, /init: fuse must be true or false, got "yes"/);
  await initFails({ fuze: false }, /fuze.*did you mean 'fuse'/);
  const info = await sn.init({ threads: 1, fuse: false });
  assert.is(sn.engine().fuse, false);
  await sn.init({ threads: 2 });
  assert.is(sn.engine().fuse, true, "on by default");
  void info;
});

test("exportOnnx never sees the fused op: a ResNet in eval mode exports Conv, BatchNormalization, Add and Relu", async () => {
  await sn.init({ threads: 2 });
  sn.manualSeed(7);
  const model = sn.createModel("resnet20").eval();
  const onnx = exportOnnx(model, [1, 3, 32, 32]);
  const bytes = onnx instanceof Uint8Array ? onnx : onnx.bytes ?? onnx;
  const text = new TextDecoder("latin1").decode(bytes);
  for (const op of ["Conv", "BatchNormalization", "Add", "Relu"]) assert.ok(text.includes(op), op);
  // and fusion is back on afterwards
  const x = rand([1, 3, 32, 32], 0, 1);
  assert.ok(countOps(() => infer(model, x)).counts.conv2d_fused > 0);
});

test("exportOnnx of a model that calls conv2d_fused itself: Conv, Mul, Add, Add, Relu, and loadOnnx gives its outputs", async () => {
  await sn.init({ threads: 2 });
  class FusedBlock extends sn.nn.Module {
    type = "FusedBlock";
    constructor() {
      super();
      this.w = this.registerParameter("w", rand([6, 6, 3, 3]));
      this.scale = this.registerBuffer("scale", rand([6], 0.5, 1.5));
      this.shift = this.registerBuffer("shift", rand([6]));
    }
    outputShape(i) {
      return i;
    }
    forward(x) {
      return sn.conv2d_fused(x, this.w, null, this.scale, this.shift, x, { padding: 1, relu: true });
    }
  }
  const model = new FusedBlock().eval();
  const loaded = await loadOnnx(exportOnnx(model, [1, 6, 7, 5]));
  const x = rand([1, 6, 7, 5]);
  const want = infer(model, x), got = infer(loaded.eval(), x);
  compare("loaded vs conv2d_fused", got, want, 1e-5, 1e-5);
});

test("exportOnnx of a model that calls batch_norm_fused itself: BatchNormalization, Add, Relu, and loadOnnx gives its outputs", async () => {
  await sn.init({ threads: 2 });
  class NormBlock extends sn.nn.Module {
    type = "NormBlock";
    constructor() {
      super();
      this.g = this.registerParameter("g", rand([6], 0.5, 1.5));
      this.b = this.registerParameter("b", rand([6]));
      this.rm = this.registerBuffer("rm", rand([6], -0.5, 0.5));
      this.rv = this.registerBuffer("rv", rand([6], 0.3, 3));
    }
    outputShape(i) {
      return i;
    }
    forward(x) {
      return sn.batch_norm_fused(x, this.rm, this.rv, this.g, this.b, x, { relu: true });
    }
  }
  const model = new NormBlock().eval();
  const bytes = exportOnnx(model, [2, 6, 7, 5]);
  const text = Buffer.from(bytes).toString("latin1");
  for (const op of ["BatchNormalization", "Add", "Relu"]) assert.ok(text.includes(op), `${op} in the graph`);
  const loaded = await loadOnnx(bytes);
  const x = rand([2, 6, 7, 5]);
  const want = infer(model, x), got = infer(loaded.eval(), x);
  compare("loaded vs batch_norm_fused", got, want, 1e-5, 1e-5);
});

test("summary() of a ResNet is unchanged by fusion (it reads the layers, not the ops)", async () => {
  await sn.init({ threads: 2 });
  const model = sn.createModel("resnet20").eval();
  sn.engine().fuse = false;
  const off = String(sn.summary(model, [1, 3, 32, 32]));
  sn.engine().fuse = true;
  assert.is(String(sn.summary(model, [1, 3, 32, 32])), off);
});

test("profile of a fused ResNet: the fused ops are timed in the convolutions' layers, path 'fused ...'", async () => {
  await sn.init({ threads: 2 });
  const model = sn.createModel("resnet20").eval();
  const x = rand([1, 3, 32, 32], 0, 1);
  const prof = sn.profile(() => infer(model, x), { peak: false });
  const fused = prof.ops.filter((o) => o.op === "conv2d_fused");
  assert.ok(fused.length > 0);
  for (const o of fused) assert.match(o.path, /^fused /);
  const names = prof.layers.map((l) => l.name);
  assert.ok(names.some((n) => /conv1$/.test(n)), names.join(", "));
});

test.run();
