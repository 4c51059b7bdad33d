// Imported ONNX models on WebGPU (SwiftShader here): a net whose nodes all map onto the library's
// ops runs after model.to("webgpu") and gives PyTorch's output, and for training exports
// PyTorch's gradients, within the conformance tolerances (the same bar as on the CPU), LeNet-5's
// broadcast input normalisation included. The ops simdnet/onnx adds (onnx_binary, onnx_reduce,
// onnx_pad, onnx_gather, onnx_resize_linear_asymmetric) against their CPU kernels, forward and
// backward, on broadcast shapes, pads and resize sizes, and the same bits run to run.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import * as sn from "../dist/index.js";
import { loadOnnx, exportOnnx } from "../dist/onnx.js";
import { compare } from "./helpers.mjs";
import { initGpu, runAndExit } from "./gpu_helpers.mjs";

const dir = new URL("./fixtures/onnx/", import.meta.url);
const file = (name) => readFileSync(new URL(name, dir));
const RTOL = 1e-4, ATOL = 1e-5;

function expected(name) {
  const { tensors } = sn.parseSafetensors(file(`${name}.safetensors`), `${name}.safetensors`);
  return tensors;
}
const gpuTensor = (t) => sn.tensor(t.data, t.shape).to("webgpu");

test.before(async () => {
  await initGpu(sn);
});

// torch's LRN graph runs as LRN nodes
for (const net of ["lenet1", "alexnet_lrn", "vgg_bn", "inception", "resnet", "fcn", "unet"])
  test(`${net} on webgpu: PyTorch's eval output, and training-mode output and gradients`, async () => {
    const ev = await loadOnnx(file(`${net}.eval.op13.onnx`));
    ev.eval().to("webgpu");
    const want = expected(`${net}.eval`);
    const y = sn.noGrad(() => ev.call(gpuTensor(want.get("x"))));
    assert.is(y.device, "webgpu");
    compare(`${net} eval on webgpu`, await y.read(), want.get("y").data, RTOL, ATOL);
    ev.dispose();

    const tr = await loadOnnx(file(`${net}.train.op13.onnx`));
    tr.train();
    for (const [, layer] of tr.namedModules()) if (layer.type === "Dropout") layer.eval();
    tr.to("webgpu");
    const wt = expected(`${net}.train`);
    const yt = tr.call(gpuTensor(wt.get("x")));
    compare(`${net} train on webgpu`, await yt.read(), wt.get("y").data, RTOL, ATOL);
    yt.backward(gpuTensor(wt.get("dy")));
    for (const [n, p] of tr.namedParameters()) compare(`${net}: grad of ${n} on webgpu`, await p.grad.read(), wt.get(`grad.${n}`).data, RTOL, ATOL);
    tr.dispose();
  });

test("LeNet-5 (broadcast Sub and Div of its input normalisation) on webgpu: PyTorch's eval output", async () => {
  const m = await loadOnnx(file("lenet5.eval.op13.onnx"));
  m.eval().to("webgpu");
  const want = expected("lenet5.eval");
  const y = sn.noGrad(() => m.call(gpuTensor(want.get("x"))));
  assert.is(y.device, "webgpu");
  compare("lenet5 on webgpu", await y.read(), want.get("y").data, RTOL, ATOL);
  m.dispose();
});

// ---- the ops of simdnet/onnx: GPU kernels against the CPU ones, forward and backward ----

const gen = new sn.Generator(21);
const valuesOf = (shape, lo = -1, hi = 1) => gen.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1)), lo, hi);

/** op on CPU and GPU inputs with the same values: outputs and every input's gradient (for the
 *  same output gradient) within float32 rounding (the CPU adds in float64, the GPU in float32);
 *  the GPU run twice gives the same bits. */
async function gpuVsCpu(what, name, attrs, inputs) {
  const op = sn.opTable.get(name);
  const run = async (device) => {
    const xs = inputs.map((v) => {
      const t = sn.tensor(v.data, v.shape);
      return (device === "webgpu" ? t.to("webgpu") : t).requireGrad();
    });
    const y = op.apply(xs, attrs);
    const gy = sn.tensor(valuesOf(y.shape), y.shape);
    return { y, xs, gy };
  };
  const cpu = await run("cpu");
  const gyValues = Float32Array.from(cpu.gy.data);
  cpu.y.backward(cpu.gy);
  const results = [];
  for (let rep = 0; rep < 2; rep++) {
    const gpu = await run("webgpu");
    assert.is(gpu.y.device, "webgpu", `${what}: runs on webgpu`);
    gpu.y.backward(sn.tensor(gyValues, gpu.y.shape).to("webgpu"));
    results.push({ y: await gpu.y.read(), grads: await Promise.all(gpu.xs.map((x) => x.grad.read())) });
  }
  assert.is(results[0].y.length, cpu.y.size, `${what}: output size`);
  compare(`${what}: forward`, results[0].y, cpu.y.data, 1e-5, 1e-6);
  cpu.xs.forEach((x, i) => compare(`${what}: gradient of input ${i}`, results[0].grads[i], x.grad.data, 1e-5, 1e-6));
  assert.ok(Buffer.from(results[0].y.buffer).equals(Buffer.from(results[1].y.buffer)), `${what}: the same bits run to run`);
  results[0].grads.forEach((g, i) => assert.ok(Buffer.from(g.buffer).equals(Buffer.from(results[1].grads[i].buffer)), `${what}: gradient ${i}, the same bits run to run`));
}

const input = (shape, lo, hi) => ({ shape, data: valuesOf(shape, lo, hi) });

test("onnx_binary on webgpu: every kind on broadcast shapes (both ways, scalars, equal shapes) matches the CPU, forward and backward", async () => {
  const pairs = [[[2, 3, 1, 4], [3, 5, 1]], [[1, 3, 1, 1], [2, 3, 4, 5]], [[2, 3], []], [[4, 5], [4, 5]], [[3, 1, 2, 1, 2, 1, 2], [2, 1, 2, 1, 2]]];
  for (const kind of ["add", "sub", "mul", "div", "pow"])
    for (const [sa, sb] of pairs) {
      // pow: positive bases; div and pow: divisors and exponents away from 0
      const a = kind === "pow" ? input(sa, 0.5, 2) : input(sa), b = kind === "div" || kind === "pow" ? input(sb, 0.5, 2) : input(sb);
      await gpuVsCpu(`onnx_binary ${kind} [${sa}] [${sb}]`, "onnx_binary", { kind }, [a, b]);
    }
  // more than 6 dimensions that cannot be merged: an error naming the op and the way out
  const a = sn.tensor(valuesOf([2, 1, 2, 1, 2, 1, 2, 1]), [2, 1, 2, 1, 2, 1, 2, 1]).to("webgpu"), b = sn.tensor(valuesOf([1, 2, 1, 2, 1, 2, 1, 2]), [1, 2, 1, 2, 1, 2, 1, 2]).to("webgpu");
  assert.throws(() => sn.opTable.get("onnx_binary").apply([a, b], { kind: "add" }), /onnx_binary \(add\): on webgpu at most 6 dimensions after merging, got \[2, 2, 2, 2, 2, 2, 2, 2\] \(8\); move the inputs to the CPU/);
  // negative bases with integer exponents (torch's LRN graph squares with Pow 2)
  await gpuVsCpu("onnx_binary pow, negative bases, exponents 2 and 3", "onnx_binary", { kind: "pow" }, [input([2, 6]), { shape: [2, 1], data: Float32Array.of(2, 3) }]);
});

test("onnx_pad on webgpu: pads, crops and a pad value, ranks 1 to 5, match the CPU forward and backward", async () => {
  const cases = [
    [[5], [2, 1]],
    [[2, 3, 4, 5], [0, 1, -1, 2, 1, 0, 1, -1]],
    [[1, 2, 3, 3], [0, 0, 1, 1, 0, 0, 1, 1]],
    [[2, 1, 3, 2, 2], [0, 0, 0, 0, 0, 1, 0, 2, 0, 0]],
  ];
  for (const [shape, pads] of cases) await gpuVsCpu(`onnx_pad [${shape}] pads ${pads}`, "onnx_pad", { pads, value: 0.5 }, [input(shape)]);
});

test("onnx_resize_linear_asymmetric on webgpu: up, down and uneven sizes match the CPU forward and backward", async () => {
  const cases = [[[2, 2, 3, 5], [7, 4], [7 / 3, 0.8]], [[1, 3, 4, 4], [8, 8], [2, 2]], [[1, 1, 5, 3], [2, 9], [0.4, 3]]];
  for (const [shape, size, scales] of cases) await gpuVsCpu(`onnx_resize_linear_asymmetric [${shape}] to ${size}`, "onnx_resize_linear_asymmetric", { size, scales }, [input(shape)]);
});

test("onnx_reduce and onnx_gather on webgpu: match the CPU forward and backward", async () => {
  for (const mean of [false, true])
    for (const axes of [[0, 2, 3], [1], [3], [0, 1, 2, 3]]) await gpuVsCpu(`onnx_reduce axes ${axes} mean ${mean}`, "onnx_reduce", { axes, mean }, [input([2, 3, 4, 5])]);
  for (const axis of [0, 1, 3]) await gpuVsCpu(`onnx_gather axis ${axis}`, "onnx_gather", { axis, indices: [1, 0, 1, 1] }, [input([2, 3, 4, 2])]);
});

test("exported models that need the ops of simdnet/onnx, loaded back, on webgpu: batch norm without running statistics (ReduceMean, Sub, Sqrt, Div), nearest upsampling at uneven scales (Gather)", async () => {
  const { nn } = sn;
  const cases = [
    [() => nn.sequential(new nn.Conv2d(2, 3, 3), new nn.BatchNorm2d(3, { trackRunningStats: false })), [2, 2, 6, 6]],
    [() => new nn.Upsample({ scaleFactor: [1.5, 2.5] }), [1, 2, 5, 6]],
  ];
  for (const [make, shape] of cases) {
    sn.manualSeed(4);
    const model = make().eval();
    const x = valuesOf(shape);
    const want = sn.noGrad(() => Float32Array.from(model.call(sn.tensor(x, shape)).data));
    const m = await loadOnnx(exportOnnx(model, shape));
    m.eval().to("webgpu");
    const y = sn.noGrad(() => m.call(sn.tensor(x, shape).to("webgpu")));
    assert.is(y.device, "webgpu");
    compare(`${model.constructor.name} exported, loaded, on webgpu`, await y.read(), want, RTOL, ATOL);
    m.dispose();
  }
});

runAndExit(sn);
