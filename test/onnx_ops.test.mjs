// ONNX nodes that exportOnnx writes and loadOnnx reads through ops of simdnet/onnx: ReduceSum
// and ReduceMean (axes as attribute and as input, keepdims, every axis), Sqrt, Gather of a data
// tensor at constant indices (onnx_gather) and MatMul [M, K] x [..., K, N] (a 1x1 conv2d).
// Each handmade graph runs in ONNX Runtime (onnxruntime-web's wasm backend, in Node) and in
// loadOnnx on the same input; the outputs are compared. The backward of onnx_reduce and
// onnx_gather is checked by finite differences.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { loadOnnx } from "../dist/onnx.js";
import { buildModel } from "./onnx_build.mjs";
import { compare } from "./helpers.mjs";

let ort;
test.before(async () => {
  await sn.init({ threads: 2 });
  ort = await import("onnxruntime-web");
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = new URL("../node_modules/onnxruntime-web/dist/", import.meta.url).href;
  ort.env.logLevel = "error";
});

const gen = new sn.Generator(11);
const valuesOf = (n, lo = -1, hi = 1) => gen.fillUniform(new Float32Array(n), lo, hi);

/** One node y = op(x, ...consts) on input x of the given shape, run by ONNX Runtime and loadOnnx. */
async function check(what, { op, shape, attrs = {}, inits = [], opset = 13, lo = -1, hi = 1 }) {
  const bytes = buildModel({
    opset,
    input: ["x", shape],
    output: "y",
    nodes: [{ op, inputs: ["x", ...inits.map((t) => t.name)], outputs: ["y"], name: "n", attrs }],
    inits,
  });
  const x = valuesOf(shape.reduce((a, b) => a * b, 1), lo, hi);
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  const want = (await session.run({ x: new ort.Tensor("float32", x, shape) })).y;
  await session.release();
  const m = await loadOnnx(bytes);
  const y = sn.noGrad(() => m.call(sn.tensor(x, shape)));
  assert.equal([...y.shape], [...want.dims], `${what}: shape`);
  compare(`${what}: loadOnnx vs ONNX Runtime`, y.data, want.data, 1e-5, 1e-6);
  m.dispose();
}

const i64 = (name, ints) => ({ name, dims: [ints.length], ints });

test("ReduceSum and ReduceMean: axes as attribute or input, negative axes, keepdims 0 and 1, every axis", async () => {
  const shape = [2, 3, 4, 5];
  for (const keepdims of [0, 1]) {
    for (const axes of [[0, 2, 3], [1], [-1, 0], [0, 1, 2, 3]]) {
      await check(`ReduceSum op13 axes ${axes} keepdims ${keepdims}`, { op: "ReduceSum", shape, attrs: { keepdims }, inits: [i64("axes", axes)] });
      await check(`ReduceSum op11 axes ${axes} keepdims ${keepdims}`, { op: "ReduceSum", shape, opset: 11, attrs: { keepdims, axes } });
      await check(`ReduceMean op13 axes ${axes} keepdims ${keepdims}`, { op: "ReduceMean", shape, attrs: { keepdims, axes } });
      await check(`ReduceMean op18 axes ${axes} keepdims ${keepdims}`, { op: "ReduceMean", shape, opset: 18, attrs: { keepdims }, inits: [i64("axes", axes)] });
    }
    await check(`ReduceSum without axes keepdims ${keepdims}`, { op: "ReduceSum", shape, attrs: { keepdims } });
    await check(`ReduceMean without axes keepdims ${keepdims}`, { op: "ReduceMean", shape, attrs: { keepdims } });
  }
  await check("ReduceSum without axes, noop_with_empty_axes", { op: "ReduceSum", shape, attrs: { noop_with_empty_axes: 1 } });
});

test("Sqrt of a data tensor", async () => {
  await check("Sqrt", { op: "Sqrt", shape: [2, 3, 4], lo: 0, hi: 4 });
});

test("Gather of a data tensor at constant indices: repeated and negative indices, each axis, 2-d indices", async () => {
  for (const axis of [0, 1, 2, 3]) await check(`Gather axis ${axis}`, { op: "Gather", shape: [2, 3, 4, 5], attrs: { axis }, inits: [i64("idx", [1, 0, 1, -1])] });
  await check("Gather 2-d indices", { op: "Gather", shape: [2, 3, 4], attrs: { axis: 2 }, inits: [{ name: "idx", dims: [2, 2], ints: [3, 0, 0, 2] }] });
});

test("MatMul [M, K] x [..., K, N] (the exporter's adaptive pooling)", async () => {
  const a = { name: "a", dims: [3, 4], floats: [...valuesOf(12)] };
  const bytes = buildModel({ opset: 13, input: ["x", [2, 3, 4, 5]], output: "y", nodes: [{ op: "MatMul", inputs: ["a", "x"], outputs: ["y"], name: "mm" }], inits: [a] });
  const x = valuesOf(120);
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  const want = (await session.run({ x: new ort.Tensor("float32", x, [2, 3, 4, 5]) })).y;
  await session.release();
  const m = await loadOnnx(bytes);
  const y = sn.noGrad(() => m.call(sn.tensor(x, [2, 3, 4, 5])));
  assert.equal([...y.shape], [2, 3, 3, 5]);
  compare("MatMul [3,4] x [2,3,4,5]", y.data, want.data, 1e-5, 1e-6);
});

test("onnx_reduce and onnx_gather: backward checked by finite differences; bad attributes named", () => {
  const t = (shape) => sn.tensor(valuesOf(shape.reduce((a, b) => a * b, 1)), shape).requireGrad();
  const reduce = sn.opTable.get("onnx_reduce"), gather = sn.opTable.get("onnx_gather");
  for (const mean of [false, true]) for (const axes of [[0, 2], [1], [3]]) sn.gradcheck((x) => reduce.apply([x], { axes, mean }), [t([2, 3, 2, 3])], { throws: true });
  sn.gradcheck((x) => gather.apply([x], { axis: 1, indices: [2, 0, 2, 1] }), [t([2, 3, 4])], { throws: true });
  const x = sn.tensor(valuesOf(6), [2, 3]);
  assert.throws(() => reduce.apply([x], { axes: [2], mean: false }), /onnx_reduce: axes must be distinct integers from 0 to 1 for an input \[2, ?3\], got \[2\]/);
  assert.throws(() => gather.apply([x], { axis: 1, indices: [3] }), /onnx_gather: indices must be integers from 0 to 2 \(axis 1 of \[2, ?3\]\)/);
});

test.run();
