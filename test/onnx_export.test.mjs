// exportOnnx: every zoo model and compositions of every layer, exported and run by ONNX Runtime
// (onnxruntime-web's wasm backend, in Node) on the same input as our forward, outputs compared
// element by element; python3-onnx's checker (with shape inference) on every file written; the
// refusals (layer named, shapes given) and the validation of the arguments.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import * as sn from "../dist/index.js";
import { exportOnnx, OnnxError, OPSET_MIN, OPSET_MAX } from "../dist/onnx.js";
import { compare } from "./helpers.mjs";
import { values, perturbNorms, ZOO, SAME_LAYERS_AS, Custom, LAYERS } from "./onnx_cases.mjs";
const { nn } = sn;

let ort;
const dir = mkdtempSync(join(tmpdir(), "onnx-export-"));
/** files for the python checker: [path, what] */
const written = [];

test.before(async () => {
  await sn.init({ threads: 2 });
  ort = await import("onnxruntime-web");
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = new URL("../node_modules/onnxruntime-web/dist/", import.meta.url).href;
  ort.env.logLevel = "error";
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Exports, runs ONNX Runtime and our forward on one input, and compares: shapes exactly,
 *  values within float32 rounding of a different summation order (1e-5 of each value plus 1e-5
 *  of the output's largest magnitude; the zoo's worst is ~2e-6 of it, ResNet-50). Returns the
 *  bytes. */
async function roundTrip(what, model, shape, options = {}) {
  model.eval();
  const bytes = exportOnnx(model, shape, options);
  const file = join(dir, `${what.replace(/[^\w.-]+/g, "_")}.onnx`);
  writeFileSync(file, bytes);
  written.push([file, what]);
  const x = values(shape.reduce((a, b) => a * b, 1), 12345);
  const ours = sn.noGrad(() => sn.tidy(() => {
    const y = model.forward(sn.tensor(x, shape));
    return { shape: [...y.shape], data: Float32Array.from(y.data) };
  }));
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  const out = (await session.run({ input: new ort.Tensor("float32", x, shape) })).output;
  await session.release();
  assert.equal([...out.dims], ours.shape, `${what}: ONNX Runtime's output shape`);
  const scale = ours.data.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-6);
  compare(`${what}: ONNX Runtime vs ours`, out.data, ours.data, 1e-5, 1e-5 * scale);
  return bytes;
}

test("every zoo model is exported here, or has the layers of one that is (a new zoo model needs a line in ZOO)", () => {
  const exported = new Set(ZOO.map(([name]) => name));
  for (const name of Object.keys(sn.models.modelFactories)) {
    assert.ok(exported.has(name) || exported.has(SAME_LAYERS_AS[name]), `zoo model ${name} is not exported by this test`);
  }
});

for (const [name, opts, shape] of ZOO) {
  const what = `${name}${Object.keys(opts).length ? JSON.stringify(opts) : ""}`;
  test(`zoo ${what} at ${shape.join("x")}: ONNX Runtime runs the export with our outputs`, async () => {
    sn.manualSeed(3);
    const model = sn.createModel(name, opts);
    perturbNorms(model);
    await roundTrip(what, model, shape);
    model.dispose();
  });
}

for (const [what, make, shape] of LAYERS) {
  test(`${what}: ONNX Runtime runs the export with our outputs`, async () => {
    sn.manualSeed(5);
    const model = make();
    perturbNorms(model);
    await roundTrip(what, model, shape);
  });
}

test(`every opset from ${OPSET_MIN} to ${OPSET_MAX} gives files ONNX Runtime runs (ReduceSum, and ReduceMean whose axes moved to an input in 18)`, async () => {
  for (let opset = OPSET_MIN; opset <= OPSET_MAX; opset++) {
    sn.manualSeed(5);
    for (const what of ["custom forward: full sum and mean", "batch norms without running statistics (the batch's, also in eval mode)"]) {
      const [, make, shape] = LAYERS.find(([w]) => w === what);
      await roundTrip(`opset ${opset}: ${what}`, make(), shape, { opset });
    }
  }
});

test("initializers carry the state dict under its names; nothing else of the model's state is written", () => {
  sn.manualSeed(1);
  const model = sn.createModel("lenet", { batchNorm: true });
  const bytes = Buffer.from(exportOnnx(model, [1, 1, 28, 28]));
  for (const [name] of model.stateDict()) {
    // num_batches_tracked is training bookkeeping: no node reads it
    const present = bytes.includes(Buffer.from(name));
    assert.is(present, !name.endsWith("num_batches_tracked"), `${name} ${present ? "written" : "missing"}`);
  }
  // the weights' bytes themselves, not just their names
  const w = model.stateDict().get("features.0.weight");
  assert.ok(bytes.includes(Buffer.from(Float32Array.from(w.data).buffer)), "conv weight values in the file");
});

test("exporting leaves the model and the op table as they were (modes, running statistics, apply) and gives the same bytes each time", () => {
  sn.manualSeed(1);
  const model = sn.createModel("lenet", { batchNorm: true });
  model.train();
  const applies = [...sn.opTable.values()].map((e) => e.apply);
  const call = nn.Module.prototype.call;
  const before = [...model.stateDict()].map(([k, t]) => [k, Float32Array.from(t.data)]);
  const a = exportOnnx(model, [1, 1, 28, 28]);
  const b = exportOnnx(model, [1, 1, 28, 28]);
  assert.ok(Buffer.from(a).equals(Buffer.from(b)), "same bytes");
  assert.ok(model.modules().every((m) => m.training), "still in training mode");
  for (const [k, v] of before) assert.equal([...model.stateDict().get(k).data], [...v], k);
  assert.ok([...sn.opTable.values()].every((e, i) => e.apply === applies[i]) && nn.Module.prototype.call === call, "apply and Module.call restored");
  // and after a refusal too
  throwsLike(() => exportOnnx(nn.sequential(new nn.LocalResponseNorm(4)), [1, 4, 2, 2]), /even size 4/);
  assert.ok([...sn.opTable.values()].every((e, i) => e.apply === applies[i]) && nn.Module.prototype.call === call, "restored after an error");
});

// ---- refusals and bad arguments: errors before any work, naming what and where ----

const throwsLike = (fn, re) => {
  let err;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected an error matching ${re}`);
  assert.instance(err, OnnxError);
  assert.match(err.message, re);
};

test("bad arguments and options: OnnxError naming the argument, unknown options with a did-you-mean", () => {
  const model = nn.sequential(new nn.ReLU());
  throwsLike(() => exportOnnx(model, [1, 3], { opst: 13 }), /^exportOnnx: unknown option 'opst' \(did you mean 'opset'\?\); exportOnnx takes opset$/);
  throwsLike(() => exportOnnx(model, [1, 3], { opset: 12 }), /^exportOnnx: opset must be an integer from 13 to 18, got number 12$/);
  throwsLike(() => exportOnnx(model, [1, 3], { opset: 19 }), /opset must be an integer from 13 to 18/);
  throwsLike(() => exportOnnx(model, [1, 3], { opset: 17.5 }), /opset must be an integer/);
  throwsLike(() => exportOnnx(model, [1, 3], "17"), /^exportOnnx: the options must be an object/);
  throwsLike(() => exportOnnx({}, [1, 3]), /^exportOnnx: the model must be a Module .*got a Object/);
  throwsLike(() => exportOnnx(model, [1, 0, 3]), /^exportOnnx: inputShape must be an array of positive integers .*got \[1,0,3\]/);
  throwsLike(() => exportOnnx(model, "1,3"), /inputShape must be an array/);
  throwsLike(() => exportOnnx(model, []), /inputShape must be an array/);
});

test("an input that does not fit the model: the layer and the shapes", () => {
  throwsLike(() => exportOnnx(nn.sequential(new nn.Conv2d(3, 4, 3)), [1, 2, 8, 8]), /^exportOnnx: Conv2d\(3, 4, kernel_size=3.*\) at '0', input \[1,2,8,8\]: .*3 input channels/);
});

test("what ONNX cannot express as we compute it is refused naming the layer: a local response norm of even size", () => {
  throwsLike(() => exportOnnx(nn.sequential(new nn.Conv2d(3, 4, 1), new nn.LocalResponseNorm(4)), [1, 3, 5, 5]), /^exportOnnx: LocalResponseNorm\(4.*\) at '1', input \[1,4,5,5\]: local_response_norm of even size 4 centres its channel window differently/);
});

test("a loss, a tensor from outside the model, and a training-mode op in a custom forward are refused by name", () => {
  const target = sn.tensor([1], [1]);
  throwsLike(() => exportOnnx(new Custom(function (x) { return sn.cross_entropy(sn.flatten(this.conv.call(x)), target); }), [1, 3, 2, 2]), /^exportOnnx: Custom at '', input \[1,3,2,2\]|cross_entropy is a loss/);
  const stray = sn.keep(sn.tensor(values(4, 1), [4]));
  throwsLike(() => exportOnnx(new Custom(function (x) { return sn.bias_add(this.conv.call(x), stray); }), [1, 3, 2, 2]), /input 1 of bias_add \(\[4\]\) is neither the model's input, a parameter or buffer of the model, nor made by an op/);
  throwsLike(() => exportOnnx(new Custom(function (x) { return sn.dropout(this.conv.call(x), { p: 0.5, training: true }); }), [1, 3, 2, 2]), /dropout in training mode/);
});

test("python3-onnx's checker (full check, with shape inference) passes every file written above", () => {
  const probe = spawnSync("/usr/bin/python3", ["-c", "import onnx"], { encoding: "utf8" });
  if (probe.status !== 0) {
    if (process.env.CI) assert.unreachable(`python3-onnx is missing in CI: ${probe.stderr || probe.error}`);
    console.log(`  skipped: /usr/bin/python3 cannot import onnx (${(probe.stderr || String(probe.error)).trim().split("\n").pop()}); install python3-onnx`);
    return;
  }
  assert.ok(written.length >= ZOO.length + LAYERS.length, `only ${written.length} files were written`);
  const script = [
    "import sys, onnx",
    "bad = 0",
    "for path in sys.argv[1:]:",
    "    opset = onnx.load(path, load_external_data=False).opset_import[0].version",
    "    if opset > onnx.defs.onnx_opset_version():",
    "        print(f'  skipped {path}: opset {opset} is newer than this onnx ({onnx.__version__}) knows')",
    "        continue",
    "    try:",
    "        onnx.checker.check_model(path, full_check=True)",
    "    except Exception as e:",
    "        bad += 1",
    "        print(path, str(e).splitlines()[0][:300])",
    "sys.exit(1 if bad else 0)",
  ].join("\n");
  const r = spawnSync("/usr/bin/python3", ["-c", script, ...written.map(([f]) => f)], { encoding: "utf8" });
  if (r.stdout && r.status === 0) console.log(r.stdout.trimEnd());
  assert.is(r.status, 0, `onnx.checker failed:\n${r.stdout}${r.stderr}`);
});

test.run();
