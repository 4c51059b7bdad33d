// The command line with ONNX files, in a child process: convert (a chain-of-layers graph becomes
// model.json + model.safetensors that give PyTorch's outputs; other graphs are refused naming the
// node), eval of an .onnx file (the same numbers as the saved model it was exported from; the
// input checked against the data), summary of an .onnx file; errors are one line, exit code 1.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as sn from "../dist/index.js";
import { exportOnnx, encodeModel, f32 } from "../dist/onnx.js";
import { compare } from "./helpers.mjs";

const cli = (args) => {
  const r = spawnSync(process.execPath, ["dist/cli.js", ...args], { encoding: "utf8", timeout: 300000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const fixture = (name) => `test/fixtures/onnx/${name}`;
// the conformance suite's tolerances (tools/fixtures/common.py)
const RTOL = 1e-4, ATOL = 1e-5;

const dir = mkdtempSync(join(tmpdir(), "cli-onnx-"));
const NORMALIZE = { mean: [0.1307], std: [0.3081] };

test.before(async () => {
  await sn.init({ threads: 1 });
  // a model saved as train saves it, and the same model exported with batch 1 (its Flatten is a
  // Reshape to [1, 2450]: eval must run the graph one image at a time)
  sn.manualSeed(3);
  const model = sn.createModel("lenet");
  await sn.saveModel(model, join(dir, "saved"), { meta: { zoo: "lenet", options: { classes: 10, inChannels: 1, inputSize: 28 }, data: "mnist", normalize: NORMALIZE } });
  writeFileSync(join(dir, "lenet.onnx"), exportOnnx(model, [1, 1, 28, 28]));
  model.dispose();
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** PyTorch's input and eval-mode output for a fixture net. */
function torchReference(name) {
  const { tensors } = sn.parseSafetensors(readFileSync(fixture(`${name}.safetensors`)), name);
  return { x: tensors.get("x"), y: tensors.get("y") };
}

for (const [onnx, ref] of [["lenet1.eval.op17", "lenet1.eval"], ["lenet1.train.op13", "lenet1.eval"], ["vgg_bn.eval.op17", "vgg_bn.eval"]]) {
  test(`convert ${onnx}.onnx: a Sequential that loadModel reads and that gives PyTorch's outputs`, async () => {
    const out = join(dir, `conv-${onnx}`);
    const r = cli(["convert", fixture(`${onnx}.onnx`), out]);
    assert.is(r.code, 0, r.err);
    assert.match(r.out, /the same outputs as .* on a test input/);
    const { model, meta } = await sn.loadModel(out);
    assert.is(model.type, "Sequential");
    assert.is(meta.source, fixture(`${onnx}.onnx`));
    model.eval();
    const want = torchReference(ref);
    const y = sn.noGrad(() => model.call(sn.tensor(want.x.data, want.x.shape)));
    assert.equal([...y.shape], want.y.shape);
    compare(`${onnx} converted`, y.data, want.y.data, RTOL, ATOL);
    model.dispose();
  });
}

test("convert vgg_bn.train.op17.onnx: batch norm and dropout layers that train as PyTorch's (batch statistics, running-statistics update)", async () => {
  const out = join(dir, "conv-vgg_bn.train");
  const r = cli(["convert", fixture("vgg_bn.train.op17.onnx"), out]);
  assert.is(r.code, 0, r.err);
  const { model } = await sn.loadModel(out);
  const types = model.modules().map((m) => m.type);
  assert.ok(types.includes("Dropout") && types.includes("Flatten"), types.join(", "));
  // PyTorch's reference ran in training mode with its dropout off
  model.train();
  for (const m of model.modules()) if (m.type === "Dropout") m.eval();
  const { tensors } = sn.parseSafetensors(readFileSync(fixture("vgg_bn.train.safetensors")), "vgg_bn.train");
  const x = tensors.get("x");
  const y = sn.noGrad(() => model.call(sn.tensor(x.data, x.shape)));
  compare("vgg_bn.train converted, training mode", y.data, tensors.get("y").data, RTOL, ATOL);
  // the four BatchNorm2d layers are PyTorch's features.1, 4, 8 and 12, in order
  const norms = model.modules().filter((m) => m.type === "BatchNorm2d");
  assert.is(norms.length, 4);
  norms.forEach((bn, i) => {
    const name = `features.${[1, 4, 8, 12][i]}`;
    compare(`${name}.running_mean`, bn.runningMean.data, tensors.get(`after.${name}.running_mean`).data, RTOL, ATOL);
    compare(`${name}.running_var`, bn.runningVar.data, tensors.get(`after.${name}.running_var`).data, RTOL, ATOL);
  });
  model.dispose();
});

test("convert: Gemm with B stored [in, out] (transB 0) and a symbolic batch; checked against x B + c computed here", async () => {
  // Flatten -> Gemm(transB 0) -> LeakyRelu(0.2) on [N, 2, 3, 3] inputs
  const K = 18, N = 4;
  const B = Float32Array.from({ length: K * N }, (_, i) => Math.sin(i * 0.7));
  const C = Float32Array.from({ length: N }, (_, i) => i / 10 - 0.2);
  const bytes = encodeModel({
    nodes: [
      { op: "Flatten", name: "flat", inputs: ["x"], outputs: ["f"], attrs: { axis: 1 } },
      { op: "Gemm", name: "fc", inputs: ["f", "B", "C"], outputs: ["g"], attrs: { transB: 0 } },
      { op: "LeakyRelu", name: "act", inputs: ["g"], outputs: ["y"], attrs: { alpha: f32(0.2) } },
    ],
    inputs: [{ name: "x", dims: ["batch", 2, 3, 3] }],
    outputs: [{ name: "y", dims: ["batch", N] }],
    initializers: [{ name: "B", dims: [K, N], data: B }, { name: "C", dims: [N], data: C }],
    opset: 17,
  });
  writeFileSync(join(dir, "gemm.onnx"), bytes);
  const out = join(dir, "conv-gemm");
  const r = cli(["convert", join(dir, "gemm.onnx"), out, "--normalize", "none"]);
  assert.is(r.code, 0, r.err);
  const { model, meta } = await sn.loadModel(out);
  assert.is(meta.normalize, undefined);
  const x = Float32Array.from({ length: 3 * K }, (_, i) => Math.cos(i * 1.3));
  const y = sn.noGrad(() => model.call(sn.tensor(x, [3, 2, 3, 3])));
  const want = new Float32Array(3 * N);
  for (let b = 0; b < 3; b++)
    for (let n = 0; n < N; n++) {
      let acc = C[n];
      for (let k = 0; k < K; k++) acc += x[b * K + k] * B[k * N + n];
      want[b * N + n] = acc > 0 ? acc : 0.2 * acc;
    }
  compare("Gemm transB 0 converted", y.data, want, RTOL, ATOL);
  model.dispose();
});

test("convert: a layer's own argument check names the node (an LRN of size 0)", () => {
  const bytes = encodeModel({
    nodes: [{ op: "LRN", name: "norm", inputs: ["x"], outputs: ["y"], attrs: { size: 0 } }],
    inputs: [{ name: "x", dims: [1, 3, 4, 4] }],
    outputs: [{ name: "y", dims: [1, 3, 4, 4] }],
    opset: 17,
  });
  writeFileSync(join(dir, "lrn0.onnx"), bytes);
  const r = cli(["convert", join(dir, "lrn0.onnx"), join(dir, "conv-lrn0")]);
  assert.is(r.code, 1);
  assert.match(r.err, /simdnet: convert: .*lrn0\.onnx: node 'norm' \(LRN\): LocalResponseNorm: size must be a positive integer, got 0$/m);
  assert.is(r.err.trim().split("\n").length, 1, r.err);
  assert.not.ok(existsSync(join(dir, "conv-lrn0")));
});

test("convert refuses a graph that is not a chain of layers, naming the first node that does not map, and writes nothing", () => {
  const cases = [
    ["resnet.eval.op17", /node '\/layer1\/Add' \(Add\) does not map onto a layer/],
    ["inception.eval.op17", /node '[^']+' \(Conv\) reads '[^']+', not the previous layer's output/],
    ["lenet5.eval.op17", /node '\/Sub' \(Sub\) does not map onto a layer/],
    ["handmade_b", /node 'c' \(Conv\) has pads \[1, 0, 2, 1\]/],
  ];
  for (const [name, re] of cases) {
    const out = join(dir, `refused-${name}`);
    const r = cli(["convert", fixture(`${name}.onnx`), out]);
    assert.is(r.code, 1, name);
    assert.match(r.err, re, name);
    assert.match(r.err, /runs as it is \(loadOnnx, simdnet eval/, name);
    assert.is(r.err.trim().split("\n").length, 1, name);
    assert.not.ok(existsSync(out), `${name}: nothing written`);
  }
});

test("eval net.onnx gives the numbers of the saved model it was exported from", () => {
  const saved = cli(["eval", join(dir, "saved"), "--threads", "1"]);
  assert.is(saved.code, 0, saved.err);
  const onnx = cli(["eval", join(dir, "lenet.onnx"), "--normalize", "0.1307,0.3081", "--threads", "1"]);
  assert.is(onnx.code, 0, onnx.err);
  const numbers = (s) => s.slice(s.indexOf(":"));
  assert.match(onnx.out, /2000 test images of MNIST digits/);
  assert.is(numbers(onnx.out), numbers(saved.out));
  // --model FILE.onnx is the same as the argument
  const viaOption = cli(["eval", "--model", join(dir, "lenet.onnx"), "--normalize", "0.1307,0.3081", "--threads", "1"]);
  assert.is(numbers(viaOption.out), numbers(saved.out));
});

test("eval: the default normalisation is the training images' statistics; none leaves pixels in [0, 1]", () => {
  const withDefault = cli(["eval", join(dir, "lenet.onnx"), "--threads", "1"]);
  const none = cli(["eval", join(dir, "lenet.onnx"), "--normalize", "none", "--threads", "1"]);
  assert.is(withDefault.code, 0, withDefault.err);
  assert.is(none.code, 0, none.err);
  assert.is.not(withDefault.out.slice(withDefault.out.indexOf(":")), none.out.slice(none.out.indexOf(":")));
});

test("convert then eval DIR: the meta keeps --data and --normalize, and the numbers are the graph's", () => {
  const out = join(dir, "conv-lenet");
  const c = cli(["convert", join(dir, "lenet.onnx"), out, "--normalize", "0.1307,0.3081"]);
  assert.is(c.code, 0, c.err);
  const meta = JSON.parse(readFileSync(join(out, "model.json"), "utf8")).meta;
  assert.equal(meta.normalize, NORMALIZE);
  assert.is(meta.data, "mnist");
  assert.equal(meta.options, { inChannels: 1, inputSize: 28 });
  const converted = cli(["eval", out, "--threads", "1"]);
  const onnx = cli(["eval", join(dir, "lenet.onnx"), "--normalize", "0.1307,0.3081", "--threads", "1"]);
  assert.is(converted.code, 0, converted.err);
  assert.is(converted.out.slice(converted.out.indexOf(":")), onnx.out.slice(onnx.out.indexOf(":")));
});

test("summary net.onnx: one row per node, the input from the graph, or --input", () => {
  const r = cli(["summary", join(dir, "lenet.onnx")]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^Input 1x28x28$/m);
  assert.match(r.out, /Conv\(kernel_shape=\[5,5\].*20x28x28\s+520\s+392,000/);
  assert.match(r.out, /Parameters: 1,256,080/);
  const vgg = cli(["summary", fixture("vgg_bn.eval.op17.onnx")]);
  assert.is(vgg.code, 0, vgg.err);
  assert.match(vgg.out, /^Input 3x16x16$/m);
  const other = cli(["summary", fixture("vgg_bn.eval.op17.onnx"), "--input", "3,16,16"]);
  assert.is(other.code, 0, other.err);
});

test("ONNX errors are one line with exit code 1", () => {
  const cases = [
    [["eval", fixture("vgg_bn.eval.op17.onnx")], /eval: .*vgg_bn\.eval\.op17\.onnx takes input \[3, 16, 16\] \(C, H, W\) but the MNIST digits .* images are \[1, 28, 28\]; give the --data it was trained on/],
    [["eval", join(dir, "lenet.onnx"), "--normalize", "1,2,3"], /--normalize takes 1 mean then 1 std > 0 \(e\.g\. 0\.1307,0\.3081\), or none; got '1,2,3'/],
    [["eval", join(dir, "lenet.onnx"), "--normalize", "0.1,0"], /--normalize takes 1 mean then 1 std > 0/],
    [["eval", join(dir, "saved"), "--normalize", "0.1,0.3"], /eval: --normalize is for an ONNX file; .* keeps its normalisation in model\.json/],
    [["eval", join(dir, "missing.onnx")], /missing\.onnx: cannot read it \(ENOENT\)/],
    [["convert", join(dir, "lenet.onnx")], /convert: give the ONNX file and the folder to write/],
    [["convert", join(dir, "saved"), join(dir, "x")], /convert: .* is not an \.onnx file/],
    [["convert", join(dir, "lenet.onnx"), join(dir, "x"), "--input", "1,28,28"], /convert: unknown option --input/],
    [["summary", join(dir, "missing.onnx")], /missing\.onnx: cannot read it/],
  ];
  writeFileSync(join(dir, "garbage.onnx"), new Uint8Array([1, 2, 3, 4, 5]));
  cases.push([["eval", join(dir, "garbage.onnx")], /garbage\.onnx: /]);
  cases.push([["convert", join(dir, "garbage.onnx"), join(dir, "g")], /convert: .*garbage\.onnx: /]);
  for (const [args, re] of cases) {
    const r = cli(args);
    assert.is(r.code, 1, `${args.join(" ")}: ${r.out}`);
    assert.match(r.err, re, args.join(" "));
    assert.is(r.err.trim().split("\n").length, 1, `${args.join(" ")}: one line: ${r.err}`);
  }
});

test.run();
