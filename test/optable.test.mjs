// The op table is the list of what simdnet can do: every op in it must say how its gradient is
// computed (or why it has none) and must be held to PyTorch by at least one fixture case. The
// table seen here is the library's and simdnet/onnx's together.
import { test } from "uvu";
import { readFileSync } from "node:fs";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
// simdnet/onnx adds ops of its own to the same table (src/onnx/ops.ts): the rules hold for them too
import "../dist/onnx.js";
import { loadFixtures } from "./helpers.mjs";

const ops = [...sn.opTable.values()];
const fixtures = loadFixtures(sn);
const casesPerOp = new Map();
for (const { cases } of fixtures) for (const c of cases) casesPerOp.set(c.op, (casesPerOp.get(c.op) ?? 0) + 1);

test("the op table is not empty and its keys are the ops' names", () => {
  assert.ok(ops.length > 0);
  for (const [name, op] of sn.opTable) assert.is(op.name, name);
});

test("every op has a backward or a reason for having none, not both", () => {
  const neither = ops.filter((op) => typeof op.backward !== "function" && !(typeof op.noGrad === "string" && op.noGrad.trim()));
  const both = ops.filter((op) => typeof op.backward === "function" && op.noGrad);
  assert.equal(neither.map((op) => op.name), [], `ops with neither a backward nor a noGrad reason: ${neither.map((op) => op.name).join(", ")}`);
  assert.equal(both.map((op) => op.name), [], `ops with a backward and a noGrad reason: ${both.map((op) => op.name).join(", ")}`);
});

test("every op's inputs are distinct names ('?' marks an optional one, '...' a last variadic one) and its noGradInputs are among them", () => {
  const bad = [];
  for (const op of ops) {
    if (op.inputs.slice(0, -1).some((n) => n.endsWith("..."))) bad.push(`${op.name}: only the last input may be variadic: ${JSON.stringify(op.inputs)}`);
    const names = op.inputs.map((n) => n.replace(/\?$|\.\.\.$/, ""));
    if (!names.length || names.some((n) => !/^[a-z_][a-z0-9_]*$/i.test(n))) bad.push(`${op.name}: input names ${JSON.stringify(op.inputs)}`);
    if (new Set(names).size !== names.length) bad.push(`${op.name}: an input name is repeated in ${JSON.stringify(op.inputs)}`);
    for (const n of op.noGradInputs ?? []) if (!names.includes(n)) bad.push(`${op.name}: noGradInputs names '${n}', not an input`);
  }
  assert.equal(bad, [], bad.join("; "));
});

test("every op has WebGPU kernels, with a backward wherever the CPU has one", () => {
  const noGpu = ops.filter((op) => !op.webgpu || typeof op.webgpu.forward !== "function").map((op) => op.name);
  const noGpuBackward = ops.filter((op) => op.webgpu && typeof op.backward === "function" && typeof op.webgpu.backward !== "function").map((op) => op.name);
  assert.equal(noGpu, [], `ops without WebGPU kernels: ${noGpu.join(", ")}`);
  assert.equal(noGpuBackward, [], `ops without a WebGPU backward: ${noGpuBackward.join(", ")}`);
});

test("every op in the table has at least one fixture case", () => {
  // an op whose results cannot match PyTorch's (dropout's random mask) says where it is tested instead
  const missing = ops.filter((op) => !op.noFixture).map((op) => op.name).filter((name) => !casesPerOp.has(name));
  assert.equal(missing, [], `ops without a fixture case in test/fixtures/*.safetensors: ${missing.join(", ")}`);
});

test("every fixture case names an op in the table", () => {
  const unknown = fixtures.flatMap(({ cases }) => cases.filter((c) => !sn.opTable.has(c.op)).map((c) => c.name));
  assert.equal(unknown, [], `fixture cases for ops not in the table: ${unknown.join("; ")}`);
});

test("an op without fixture cases names the test file that checks it instead, and that file mentions the op", () => {
  for (const op of ops.filter((o) => o.noFixture)) {
    const file = op.noFixture.match(/test\/[\w.]+\.mjs/)?.[0];
    assert.ok(file, `${op.name}: noFixture must name its test file: ${op.noFixture}`);
    assert.ok(readFileSync(new URL(`../${file}`, import.meta.url), "utf8").includes(op.name), `${file} does not mention ${op.name}`);
  }
});

test("every op with a backward has a fixture case that checks a gradient", () => {
  const withGrad = new Set(fixtures.flatMap(({ cases }) => cases.filter((c) => c.gout).map((c) => c.op)));
  const missing = ops.filter((op) => op.backward && !op.noFixture && !withGrad.has(op.name)).map((op) => op.name);
  assert.equal(missing, [], `ops whose backward no fixture case checks: ${missing.join(", ")}`);
});

test("op table summary", () => {
  console.log(`\n  ${ops.length} ops, ${[...casesPerOp.values()].reduce((a, b) => a + b, 0)} fixture cases in ${fixtures.length} files: ` + ops.map((op) => `${op.name} ${casesPerOp.get(op.name) ?? 0}`).join(", "));
});

test.run();
