// ONNX import (simdnet/onnx's loadOnnx) against PyTorch: eight small CNNs exported by
// torch.onnx.export (tools/fixtures/gen_onnx.py) in eval mode (batch norm folded, onnx:: names)
// and training mode (state_dict names, BatchNormalization and Dropout kept), at opsets 13 and 17:
// outputs within the conformance tolerances, and for training exports one forward/backward gives
// PyTorch's gradients and running statistics. Five handmade graphs cover the op forms torch does
// not emit. Then: fine-tuning with fit(), summary(), state dicts, the same bits on any thread
// count, and clear errors for what is not supported, before anything runs.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import * as sn from "../dist/index.js";
import { loadOnnx, OnnxError } from "../dist/onnx.js";
import { compare, sameBits } from "./helpers.mjs";
import { buildModel, smallModel } from "./onnx_build.mjs";

const dir = new URL("./fixtures/onnx/", import.meta.url);
const file = (name) => readFileSync(new URL(name, dir));
const NETS = ["lenet1", "lenet5", "alexnet_lrn", "vgg_bn", "inception", "resnet", "fcn", "unet"];
// the conformance suite's tolerances (tools/fixtures/common.py)
const RTOL = 1e-4, ATOL = 1e-5;

function expected(name) {
  const { tensors, metadata } = sn.parseSafetensors(file(`${name}.safetensors`), `${name}.safetensors`);
  return { get: (k) => tensors.get(k), has: (k) => tensors.has(k), keys: () => [...tensors.keys()], ops: metadata.ops.split(" ") };
}
const toTensor = (t) => sn.tensor(t.data, t.shape);

/** train() as PyTorch's reference ran: batch norm in training mode, dropout layers in eval. */
function trainWithoutDropout(m) {
  m.train();
  for (const [, layer] of m.namedModules()) if (layer.type === "Dropout") layer.eval();
}

/** Forward in the mode of the export, backward of sum(y * dy) for training exports; compares. */
async function checkAgainstTorch(onnxName, refName, mode, options) {
  const want = expected(refName);
  const m = await loadOnnx(file(onnxName), options);
  const x = toTensor(want.get("x"));
  if (mode === "eval") {
    m.eval();
    const y = sn.noGrad(() => m.call(x));
    assert.equal([...y.shape], want.get("y").shape, `${onnxName}: output shape`);
    compare(`${onnxName}: output`, y.data, want.get("y").data, RTOL, ATOL);
    return m;
  }
  trainWithoutDropout(m);
  const y = m.call(x);
  compare(`${onnxName}: output`, y.data, want.get("y").data, RTOL, ATOL);
  y.backward(toTensor(want.get("dy")));
  const params = m.namedParameters();
  const grads = want.keys().filter((k) => k.startsWith("grad."));
  assert.ok(grads.length > 0, "the fixture has gradients");
  // every PyTorch parameter is a parameter of the import, under the same name
  assert.equal(params.map(([n]) => n).sort(), grads.map((k) => k.slice(5)).sort(), `${onnxName}: parameter names`);
  for (const [n, p] of params) compare(`${onnxName}: grad of ${n}`, p.grad.data, want.get(`grad.${n}`).data, RTOL, ATOL);
  for (const [n, b] of m.namedBuffers()) compare(`${onnxName}: ${n} after the step`, b.data, want.get(`after.${n}`).data, RTOL, ATOL);
  return m;
}

test.before(async () => {
  await sn.init({ threads: 2 });
});

for (const net of NETS)
  for (const mode of ["eval", "train"])
    test(`${net}, ${mode}-mode export, opsets 13 and 17: PyTorch's output${mode === "train" ? ", gradients and running statistics" : ""}`, async () => {
      const ys = [];
      for (const opset of [13, 17]) {
        const m = await checkAgainstTorch(`${net}.${mode}.op${opset}.onnx`, `${net}.${mode}`, mode);
        m.eval();
        ys.push(sn.noGrad(() => m.call(toTensor(expected(`${net}.${mode}`).get("x")))).toArray());
        m.dispose();
      }
      sameBits(`${net}.${mode}: opset 13 and 17`, ys[0], ys[1]);
    });

const HANDMADE = ["handmade_a", "handmade_b", "handmade_c", "handmade_d", "handmade_e"];
for (const name of HANDMADE)
  test(`${name} (${expected(name).ops.join(", ")}): PyTorch's output and gradients`, async () => {
    const want = expected(name);
    const m = await loadOnnx(file(`${name}.onnx`));
    m.train();
    const y = m.call(toTensor(want.get("x")));
    compare(`${name}: output`, y.data, want.get("y").data, RTOL, ATOL);
    const grads = want.keys().filter((k) => k.startsWith("grad."));
    if (!grads.length) return;
    y.backward(toTensor(want.get("dy")));
    for (const k of grads) {
      const p = m.namedParameters().find(([n]) => n === k.slice(5));
      assert.ok(p, `${k.slice(5)} is a parameter`);
      compare(`${name}: ${k}`, p[1].grad.data, want.get(k).data, RTOL, ATOL);
    }
  });

test("without the load-time rewrites (fuse: false) every node runs as written, with the same results: torch's LRN graph, Pad + AveragePool", async () => {
  for (const name of ["alexnet_lrn", "resnet", "lenet1"])
    for (const mode of ["eval", "train"]) {
      const m = await checkAgainstTorch(`${name}.${mode}.op13.onnx`, `${name}.${mode}`, mode, { fuse: false });
      const ops = sn.summary(m, expected(`${name}.${mode}`).get("x").shape).rows.map((r) => r.layer.replace(/\(.*/, ""));
      assert.ok(name === "alexnet_lrn" ? ops.includes("Pow") && !ops.includes("LRN") : ops.includes("Pad"), ops.join(" "));
      m.dispose();
    }
});

test("every op the fixtures use is covered: the torch exports and handmade graphs together use the issue's op list", () => {
  const used = new Set(NETS.flatMap((n) => [...expected(`${n}.eval`).ops, ...expected(`${n}.train`).ops]));
  for (const h of HANDMADE) for (const op of expected(h).ops) used.add(op);
  const issue = ["Conv", "ConvTranspose", "Gemm", "MatMul", "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Add", "Sub", "Mul", "Div", "Concat", "Flatten", "Reshape", "Pad", "Resize", "Upsample", "LRN", "Dropout", "Constant", "Shape", "Gather", "Slice", "Unsqueeze", "Cast"];
  assert.equal(issue.filter((op) => !used.has(op)), []);
});

test("the ops simdnet/onnx adds to the op table (onnx_binary, onnx_pad, onnx_resize_linear_asymmetric): a backward each, checked by finite differences", () => {
  const added = [...sn.opTable.keys()].filter((k) => k.startsWith("onnx_"));
  // onnx_reduce and onnx_gather (what exportOnnx writes for sums over axes and uneven nearest
  // upsampling) are checked in test/onnx_ops.test.mjs
  assert.equal(added.sort(), ["onnx_binary", "onnx_gather", "onnx_pad", "onnx_reduce", "onnx_resize_linear_asymmetric"]);
  for (const k of added) {
    const op = sn.opTable.get(k);
    assert.type(op.backward, "function", k);
    assert.ok(/test\/onnx_(import|ops)\.test\.mjs/.test(op.noFixture), k);
  }
  const g = new sn.Generator(3);
  const t = (shape, lo = -1, hi = 1) => sn.tensor(g.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1)), lo, hi), shape).requireGrad();
  const binary = sn.opTable.get("onnx_binary"), pad = sn.opTable.get("onnx_pad"), resize = sn.opTable.get("onnx_resize_linear_asymmetric");
  for (const kind of ["add", "sub", "mul", "div", "pow"]) {
    // broadcasting both ways: [2,3,1,4] with [3,5,1]; positive bases and divisors away from 0
    const a = kind === "pow" ? t([2, 3, 1, 4], 0.5, 2) : t([2, 3, 1, 4]), b = kind === "div" || kind === "pow" ? t([3, 5, 1], 0.5, 2) : t([3, 5, 1]);
    sn.gradcheck((x, y) => binary.apply([x, y], { kind }), [a, b], { throws: true });
  }
  sn.gradcheck((x) => pad.apply([x], { pads: [0, 1, -1, 2, 1, 0, 1, -1], value: 0.5 }), [t([2, 3, 4, 5])], { throws: true });
  sn.gradcheck((x) => resize.apply([x], { size: [7, 4], scales: [7 / 3, 0.8] }), [t([2, 2, 3, 5])], { throws: true });
});

test("names: a training export keeps PyTorch's state_dict names; an eval export has the exporter's onnx:: names and no batch norm", async () => {
  const train = await loadOnnx(file("resnet.train.op13.onnx"));
  const keys = [...train.stateDict().keys()];
  for (const k of ["conv1.weight", "bn1.running_mean", "layer2.downsample.0.weight", "layer2.downsample.1.running_var", "fc.bias"]) assert.ok(keys.includes(k), k);
  assert.ok(train.namedBuffers().every(([n]) => /running_(mean|var)$/.test(n)), "batch-norm statistics are buffers");
  const evalm = await loadOnnx(file("resnet.eval.op13.onnx"));
  const names = evalm.namedParameters().map(([n]) => n);
  assert.ok(names.some((n) => n.startsWith("onnx::Conv_")), names.join(" "));
  assert.is(evalm.namedBuffers().length, 0);
  train.dispose();
  evalm.dispose();
});

test("dropout follows train()/eval(); batch norm uses batch statistics in training and running ones in eval", async () => {
  const m = await loadOnnx(file("alexnet_lrn.train.op13.onnx"));
  const drops = m.namedModules().filter(([, l]) => l.type === "Dropout");
  assert.is(drops.length, 2);
  assert.ok(drops.every(([, l]) => l.p === 0.5));
  const x = toTensor(expected("alexnet_lrn.train").get("x"));
  m.eval();
  const a = sn.noGrad(() => m.call(x)).toArray(), b = sn.noGrad(() => m.call(x)).toArray();
  sameBits("eval is deterministic", a, b);
  m.train();
  const c = sn.noGrad(() => m.call(x)).toArray();
  assert.ok(c.some((v, i) => v !== a[i]), "training mode drops units");
  const bn = await loadOnnx(file("vgg_bn.train.op13.onnx"));
  const stat = () => bn.stateDict().get("features.1.running_mean").toArray();
  const before = stat(), xb = toTensor(expected("vgg_bn.train").get("x"));
  const e1 = sn.noGrad(() => bn.eval().call(xb)).toArray();
  sameBits("eval leaves the running statistics", stat(), before);
  const t1 = sn.noGrad(() => bn.train().call(xb)).toArray();
  assert.ok(stat().some((v, i) => v !== before[i]), "training updates them");
  assert.ok(t1.some((v, i) => v !== e1[i]), "training normalises with the batch's statistics");
  m.dispose();
  bn.dispose();
});

test("fine-tuning: fit() trains an imported LeNet (loss falls), and the state dict round-trips", async () => {
  const m = await loadOnnx(file("lenet1.train.op13.onnx"));
  const n = 16, g = new sn.Generator(5);
  const x = new Float32Array(n * 28 * 28), y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 2;
    for (let j = 0; j < 28 * 28; j++) x[i * 784 + j] = (j % 28 < 14) === (y[i] === 0) ? 1 : g.random() * 0.2;
  }
  const ds = new sn.Dataset(x, [n, 1, 28, 28], y, 10);
  const first = await sn.evaluate(m, ds, { batchSize: 8 });
  await sn.fit(m, ds, { epochs: 6, batchSize: 4, lr: 0.05, momentum: 0.9, shuffle: false });
  const after = await sn.evaluate(m, ds, { batchSize: 8 });
  assert.ok(after.loss < first.loss * 0.5, `loss ${first.loss} -> ${after.loss}`);
  const again = await loadOnnx(file("lenet1.train.op13.onnx"));
  again.loadStateDict(m.stateDict());
  const t = toTensor(expected("lenet1.train").get("x"));
  sameBits("reloaded state dict", sn.noGrad(() => again.eval().call(t)).data, sn.noGrad(() => m.eval().call(t)).data);
  m.dispose();
  again.dispose();
});

test("summary() on an imported model: one row per node that runs, shapes, parameters and multiply-adds; a zero Pad is the next pool's padding, torch's LRN graph one LRN node", async () => {
  const m = await loadOnnx(file("lenet1.train.op13.onnx"));
  const s = sn.summary(m, [1, 28, 28]);
  assert.equal(s.outputShape, [1, 10]);
  assert.is(s.totalParams, 4 * 25 + 4 + 6 * 4 * 25 + 6 + 96 * 10 + 10);
  assert.is(s.rows.reduce((a, r) => a + r.params, 0), s.totalParams);
  const conv = s.rows.filter((r) => r.layer.startsWith("Conv"));
  assert.equal(conv.map((r) => r.outputShape), [[1, 4, 24, 24], [1, 6, 8, 8]]);
  assert.is(s.totalMacs, 4 * 24 * 24 * 25 + 6 * 8 * 8 * 100 + 96 * 10);
  assert.ok(String(s).includes("Gemm"));
  m.dispose();
  // torch's AvgPool2d(3, 2, padding=1) is Pad + AveragePool in the file: one pool that pads itself
  const r = await loadOnnx(file("resnet.eval.op13.onnx"));
  const layers = sn.summary(r, [3, 12, 12]).rows.map((row) => row.layer);
  assert.ok(!layers.some((l) => l.startsWith("Pad")), layers.join(" "));
  assert.ok(layers.includes("AveragePool(kernel_shape=[3,3], pads=[1,1,1,1], strides=[2,2])"), layers.join(" "));
  r.dispose();
  // torch's LocalResponseNorm graph (Mul, Pad, 3-d AveragePool, Pow, Div and the shape arithmetic
  // around them) runs as one LRN node each (the outputs above are PyTorch's)
  for (const mode of ["eval", "train"]) {
    const a = await loadOnnx(file(`alexnet_lrn.${mode}.op17.onnx`));
    const ops = sn.summary(a, [3, 32, 32]).rows.map((row) => row.layer.replace(/\(.*/, ""));
    assert.equal(ops.filter((op) => op !== "Dropout"), ["Conv", "Relu", "LRN", "MaxPool", "Conv", "Relu", "LRN", "MaxPool", "Conv", "Relu", "Flatten", "Gemm", "Relu", "Gemm", "Softmax"]);
    a.dispose();
  }
});

test("the same bits on 1 and 3 threads (forward and gradients of the LRN AlexNet and the U-Net)", async () => {
  // a fresh engine per thread count, every kernel split across the threads, guard bytes checked
  const run = async (name, threads) => {
    await sn.init({ threads, minParallelWork: 0, sentinels: true });
    try {
      const want = expected(`${name}.train`);
      const m = await loadOnnx(file(`${name}.train.op13.onnx`));
      trainWithoutDropout(m);
      const y = m.call(toTensor(want.get("x")));
      y.backward(toTensor(want.get("dy")));
      const out = [y.toArray(), ...m.parameters().map((p) => p.grad.toArray())];
      sn.engine().arena.checkSentinels();
      return out;
    } finally {
      sn.dispose();
    }
  };
  try {
    for (const name of ["alexnet_lrn", "unet"]) {
      const one = await run(name, 1), three = await run(name, 3);
      one.forEach((v, i) => sameBits(`${name} tensor ${i}`, three[i], v));
    }
  } finally {
    await sn.init({ threads: 2 });
  }
});

/** loadOnnx must reject with an OnnxError matching re, and leave no tensor behind. */
async function rejectsOnnx(bytes, re, options) {
  const before = sn.engine().memoryStats().live;
  let err = null;
  try {
    await loadOnnx(bytes, options);
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected an error matching ${re}`);
  assert.ok(re.test(err.message), `error "${err.message}" does not match ${re}`);
  assert.is(sn.engine().memoryStats().live, before, "nothing left allocated");
  return err;
}

test("unsupported ops and attributes: an error naming the node, its op type or attribute and what is supported, at load", async () => {
  const relu = (op, attrs) => ({ op, inputs: ["r0"], outputs: ["y"], name: "the_node", attrs });
  const base = (n, extra = []) => buildModel({ opset: 13, input: ["x", [1, 2, 4, 4]], output: "y", nodes: [{ op: "Relu", inputs: ["x"], outputs: ["r0"] }, ...extra, n] });
  let e = await rejectsOnnx(base(relu("Erf")), /node 'the_node' \(Erf\): op type 'Erf' is not supported; supported: .*Conv.*Resize/);
  assert.instance(e, OnnxError);
  await rejectsOnnx(base(relu("LeakyRelu", { alpha: { f: 0.1 }, beta: 2 })), /node 'the_node' \(LeakyRelu\): attribute 'beta' is not supported; LeakyRelu takes alpha/);
  await rejectsOnnx(base(relu("Pad", { mode: "reflect" })), /node 'the_node' \(Pad\): attribute mode = "reflect" is not supported; supported: "constant"/);
  await rejectsOnnx(base(relu("Resize", { mode: "cubic" })), /\(Resize\): attribute mode = "cubic" is not supported; supported: "nearest", "linear"/);
  await rejectsOnnx(base(relu("Resize", { mode: "linear", coordinate_transformation_mode: "tf_crop_and_resize" })), /coordinate_transformation_mode = "tf_crop_and_resize" is not supported; supported: "half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric" with mode linear/);
  await rejectsOnnx(base({ ...relu("Relu"), domain: "com.microsoft" }), /node 'the_node' \(Relu\) is in domain 'com.microsoft'/);
  await rejectsOnnx(base({ op: "Relu", inputs: ["nowhere"], outputs: ["y"], name: "n2" }), /node 'n2' \(Relu\) uses 'nowhere', which no graph input, initializer or earlier node defines/);
  await rejectsOnnx(base({ op: "MaxPool", inputs: ["r0"], outputs: ["p", "y"], name: "mp", attrs: { kernel_shape: [2, 2] } }), /node 'mp' \(MaxPool\): output 1 \('y'\) is used/);
  await rejectsOnnx(buildModel({ opset: 5, input: ["x", [1]], output: "y", nodes: [relu("Relu")] }), /opset 5 is not supported \(7 to 18/);
});

test("options: an unknown key is an error with a did-you-mean; a non-byte argument is named", async () => {
  let err = null;
  try {
    await loadOnnx(smallModel(), { fuze: false });
  } catch (e) {
    err = e;
  }
  assert.ok(err && /loadOnnx/.test(err.message) && /fuze/.test(err.message) && /did you mean 'fuse'/i.test(err.message), err?.message);
  err = null;
  try {
    await loadOnnx("model.onnx");
  } catch (e) {
    err = e;
  }
  assert.ok(err && /expects the bytes of an \.onnx file \(Uint8Array or ArrayBuffer\), got string/.test(err.message), err?.message);
});

test("a valid handmade model runs, and inputs of another shape than exported are rejected naming both", async () => {
  const m = await loadOnnx(smallModel());
  const x = sn.tensor(Float32Array.from({ length: 32 }, (_, i) => (i % 7) / 7 - 0.5), [1, 2, 4, 4]);
  const y = sn.noGrad(() => m.call(x));
  assert.equal([...y.shape], [1, 3]);
  // reference by hand: conv 3x3 pad 1 -> relu -> 2x2 max pool -> fc
  const w = Array.from({ length: 72 }, (_, i) => Math.fround(Math.sin(i) * 0.3)), cb = [0.1, -0.2, 0.3, 0];
  const xv = x.toArray(), conv = new Float64Array(4 * 16);
  for (let o = 0; o < 4; o++)
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 4; j++) {
        let s = Math.fround(cb[o]);
        for (let c = 0; c < 2; c++)
          for (let u = 0; u < 3; u++)
            for (let v = 0; v < 3; v++) {
              const a = i + u - 1, b = j + v - 1;
              if (a >= 0 && a < 4 && b >= 0 && b < 4) s += xv[c * 16 + a * 4 + b] * w[((o * 2 + c) * 3 + u) * 3 + v];
            }
        conv[o * 16 + i * 4 + j] = Math.max(0, s);
      }
  const pooled = [];
  for (let o = 0; o < 4; o++)
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 2; j++) pooled.push(Math.max(...[0, 1].flatMap((u) => [0, 1].map((v) => conv[o * 16 + (2 * i + u) * 4 + 2 * j + v]))));
  const fc = Array.from({ length: 48 }, (_, i) => Math.fround(Math.cos(i) * 0.2)), fb = [0, 0.5, -0.5];
  const want = [0, 1, 2].map((k) => fb[k] + pooled.reduce((a, p, i) => a + p * fc[k * 16 + i], 0));
  compare("small model", y.data, want, RTOL, ATOL);
  // the same file as an ArrayBuffer, and as a view at an odd offset (raw_data then unaligned)
  const bytes = smallModel(), padded = new Uint8Array(bytes.length + 3);
  padded.set(bytes, 3);
  for (const src of [bytes.slice().buffer, padded.subarray(3)]) {
    const again = await loadOnnx(src);
    sameBits("loaded again", sn.noGrad(() => again.call(x)).data, y.data);
    again.dispose();
  }
  let err = null;
  try {
    m.call(sn.zeros([1, 3, 4, 4]));
  } catch (e) {
    err = e;
  }
  assert.ok(err && /input 'x' must have shape \[N, 2, 4, 4\] \(as exported\), got \[1, 3, 4, 4\]/.test(err.message), err?.message);
  m.dispose();
});

test.run();
