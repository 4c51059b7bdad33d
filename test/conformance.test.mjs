// Every case of every fixture file in test/fixtures (written by tools/fixtures/gen.py from
// PyTorch, float64 reference): our output and every input gradient, within the case's stated
// tolerance, with sentinel guards around every buffer, and no input written by the op (except
// those the case lists as mutated in place, checked against PyTorch's values after the call).
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { compare, sameBits, loadFixtures, caseInputs } from "./helpers.mjs";

const fixtures = loadFixtures(sn);

test.before(async () => {
  await sn.init({ threads: 2, sentinels: true });
});

/** Fails naming the input whose values changed across forward and backward. */
function checkInputsUntouched(c, inputs, before) {
  inputs.forEach((t, i) => {
    if (!t || String(i) in c.after) return;
    sameBits(`${c.op}: input ${i} (${c.inputs[i]}) was written by the op`, t.toArray(), before[i]);
  });
}

function runChecked(c, tensors) {
  const inputs = caseInputs(sn, c, tensors);
  const before = inputs.map((t) => t?.toArray());
  const y = sn.opTable.get(c.op).apply(inputs, c.attrs);
  const want = tensors.get(c.out);
  assert.equal([...y.shape], want.shape, "output shape");
  compare(`${c.op} out`, y.toArray(), want.data, c.rtol, c.atol);
  for (const [i, name] of Object.entries(c.after)) compare(`${c.op} input ${i} after`, inputs[i].toArray(), tensors.get(name).data, c.rtol, c.atol);
  if (c.gout) {
    const g = tensors.get(c.gout);
    y.backward(sn.tensor(g.data, g.shape));
    c.grads.forEach((name, i) => {
      if (!name) return;
      assert.ok(inputs[i].grad, `no gradient for input ${i}`);
      compare(`${c.op} d${c.inputs[i]}`, inputs[i].grad.toArray(), tensors.get(name).data, c.grad_rtol, c.grad_atol);
    });
  }
  checkInputsUntouched(c, inputs, before);
  sn.engine().arena.checkSentinels();
}

for (const { tensors, cases } of fixtures)
  for (const c of cases)
    test(c.name, () => {
      assert.ok(sn.opTable.get(c.op), `op ${c.op} is not in the op table`);
      runChecked(c, tensors);
    });

// The harness must be able to fail: each check below is handed a deliberate fault.
const first = fixtures.flatMap((f) => f.cases.map((c) => ({ c, tensors: f.tensors }))).find(({ c }) => c.gout && sn.opTable.get(c.op));

test("harness: compare() catches an output off by just over its tolerance, naming the element", () => {
  const { c, tensors } = first;
  const want = tensors.get(c.out).data;
  const got = Float32Array.from(want);
  const k = want.length >> 1;
  got[k] = want[k] + 2 * (c.atol + c.rtol * Math.abs(want[k]));
  assert.throws(() => compare("perturbed", got, want, c.rtol, c.atol), (e) => e.message.includes(`element ${k}: got ${got[k]}, expected ${want[k]}`));
  compare("unperturbed", Float32Array.from(want), want, c.rtol, c.atol);
});

test("harness: compare() catches NaN, an infinity against a finite value and a length mismatch", () => {
  const want = new Float32Array([1, 2, Infinity]);
  assert.throws(() => compare("nan", [1, NaN, Infinity], want, 1e-4, 1e-5), /element 1: got NaN/);
  assert.throws(() => compare("inf", [1, 2, 3], want, 1e-4, 1e-5), /element 2: got 3, expected Infinity/);
  assert.throws(() => compare("finite want", [1, Infinity, Infinity], want, 1e-4, 1e-5), /element 1: got Infinity, expected 2/);
  assert.throws(() => compare("length", [1, 2], want, 1e-4, 1e-5), /2 values, expected 3/);
});

test("harness: an op that writes into its input is caught, naming the input and the element", () => {
  const { c, tensors } = first;
  const inputs = caseInputs(sn, c, tensors);
  const before = inputs.map((t) => t?.toArray());
  const i = inputs.findIndex((t) => t && t.size > 0);
  inputs[i].data[0] += 1;
  assert.throws(() => checkInputsUntouched({ ...c, after: {} }, inputs, before), (e) => e.message.includes(`input ${i}`) && e.message.includes("element 0"));
});

test("harness: a kernel writing past its buffer is caught by the sentinels", () => {
  const t = sn.zeros([5]);
  sn.engine().heapF32[(t.ptr >> 2) + 16] = 1; // buffers are 64-byte classes: 16 floats for 5
  assert.throws(() => sn.engine().arena.checkSentinels(), /out-of-bounds write detected/);
  sn.engine().heapF32[(t.ptr >> 2) + 16] = sn.engine().heapF32[(t.ptr >> 2) + 17]; // guard byte pattern back
  sn.engine().arena.checkSentinels();
});

test.after(() => sn.dispose());
test.run();
