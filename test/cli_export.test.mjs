// simdnet export DIR OUT.onnx in a child process: a model saved as train saves it (model.json,
// model.safetensors, its meta) becomes an ONNX file that ONNX Runtime runs with the saved
// model's outputs; --input, --batch, --opset; errors are one line with exit code 1.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as sn from "../dist/index.js";
import { compare } from "./helpers.mjs";

const cli = (args) => {
  const r = spawnSync(process.execPath, ["dist/cli.js", ...args], { encoding: "utf8", timeout: 120000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

const dir = mkdtempSync(join(tmpdir(), "cli-export-"));
let ort, model;

test.before(async () => {
  await sn.init({ threads: 1 });
  ort = await import("onnxruntime-web");
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = new URL("../node_modules/onnxruntime-web/dist/", import.meta.url).href;
  ort.env.logLevel = "error";
  // what train saves: the zoo model, its options and the normalisation in the meta
  sn.manualSeed(2);
  model = sn.createModel("lenet", { classes: 10, inChannels: 1, inputSize: 28, batchNorm: true });
  for (const [name, t] of model.stateDict()) if (name.endsWith("running_mean")) t.data.set(Float32Array.from({ length: t.size }, (_, i) => Math.sin(i) / 10));
  model.eval();
  await sn.saveModel(model, join(dir, "model"), { meta: { zoo: "lenet", options: { classes: 10, inChannels: 1, inputSize: 28, batchNorm: true }, normalize: { mean: [0.13], std: [0.31] } } });
  await sn.saveModel(sn.nn.sequential(new sn.nn.Flatten(), new sn.nn.Linear(12, 3)), join(dir, "plain"));
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

async function runOrt(file, x, shape) {
  const session = await ort.InferenceSession.create(readFileSync(file), { executionProviders: ["wasm"] });
  const out = (await session.run({ input: new ort.Tensor("float32", x, shape) })).output;
  return { dims: [...out.dims], data: out.data };
}

test("export DIR OUT.onnx: the input from the saved meta, batch 1; ONNX Runtime gives the saved model's outputs; the line names the normalisation", async () => {
  const file = join(dir, "lenet.onnx");
  const r = cli(["export", join(dir, "model"), file]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /lenet\.onnx: Sequential as ONNX opset 17, input \[1, 1, 28, 28\], [\d.]+ MB; it expects the images normalised as in training: \(x - mean\) \/ std, mean \[0.13\], std \[0.31\]/);
  const x = Float32Array.from({ length: 784 }, (_, i) => Math.cos(i * 0.1));
  const got = await runOrt(file, x, [1, 1, 28, 28]);
  const want = sn.noGrad(() => model.forward(sn.tensor(x, [1, 1, 28, 28])));
  assert.equal(got.dims, [1, 10]);
  compare("ONNX Runtime vs the saved model", got.data, want.data, 1e-5, 1e-5);
});

test("export --input C,H,W --batch N --opset N", async () => {
  const file = join(dir, "plain.onnx");
  const r = cli(["export", join(dir, "plain"), file, "--input", "3,2,2", "--batch", "4", "--opset=13"]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /input \[4, 3, 2, 2\]/);
  assert.match(r.out, /opset 13/);
  const got = await runOrt(file, new Float32Array(48).fill(1), [4, 3, 2, 2]);
  assert.equal(got.dims, [4, 3]);
});

test("export errors: one line, exit code 1, nothing written", () => {
  const out = join(dir, "never.onnx");
  const cases = [
    [["export", join(dir, "model")], /^simdnet: export: give the model folder and the file to write: simdnet export DIR OUT\.onnx\n$/],
    [["export", join(dir, "plain"), out], /^simdnet: export: .*plain does not say what input the model takes .*; give --input C,H,W\n$/],
    [["export", join(dir, "model"), out, "--input", "1,28"], /^simdnet: export: --input must be C,H,W \(three positive integers, e\.g\. 1,28,28\), got '1,28'\n$/],
    [["export", join(dir, "model"), out, "--opset", "12"], /^simdnet: exportOnnx: opset must be an integer from 13 to 18, got number 12\n$/],
    [["export", join(dir, "model"), out, "--batch", "0"], /^simdnet: --batch must be at least 1, got 0\n$/],
    [["export", join(dir, "model"), out, "--input", "3,28,28"], /^simdnet: exportOnnx: Conv2d\(1, 20, .*\) at 'features\.0', input \[1,3,28,28\]: .*\n$/],
    [["export", join(dir, "nothing"), out], /^simdnet: loadModel: .*nothing: no such folder/],
    [["export", join(dir, "model"), out, "extra"], /^simdnet: export: unexpected argument 'extra'\n$/],
  ];
  for (const [args, re] of cases) {
    const r = cli(args);
    assert.is(r.code, 1, args.join(" "));
    assert.match(r.err, re);
  }
  assert.not.ok(existsSync(out));
});

test.run();
