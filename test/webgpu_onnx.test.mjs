// Imported ONNX models on WebGPU (SwiftShader here): a net whose nodes all map onto the library's
// ops runs after model.to("webgpu") and gives PyTorch's output, and for training exports
// PyTorch's gradients, within the conformance tolerances (the same bar as on the CPU). A net that
// needs one of the CPU-only ops of simdnet/onnx (broadcast arithmetic: LeNet-5's input
// normalisation) fails with an error naming the node and saying to move to the CPU.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import * as sn from "../dist/index.js";
import { loadOnnx } from "../dist/onnx.js";
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

// every net without broadcast arithmetic (LeNet-5's input normalisation); torch's LRN graph runs
// as LRN nodes
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

test("a net that needs a CPU-only op (LeNet-5's broadcast Sub): an error naming the node and the way out", async () => {
  const m = await loadOnnx(file("lenet5.eval.op13.onnx"));
  m.eval().to("webgpu");
  const x = gpuTensor(expected("lenet5.eval").get("x"));
  assert.throws(() => sn.noGrad(() => m.call(x)), /node '\/Sub' \(Sub\).*onnx_binary: has no WebGPU kernel yet: move the inputs to the CPU/);
  await m.cpu();
  const y = sn.noGrad(() => m.call(sn.tensor(expected("lenet5.eval").get("x").data, [2, 1, 28, 28])));
  compare("lenet5 back on the CPU", y.data, expected("lenet5.eval").get("y").data, RTOL, ATOL);
  m.dispose();
});

runAndExit(sn);
