// Finite differences against backward(): every fixture case with gradients (sn.gradcheck at its
// documented default tolerance), and gradcheck itself: it must catch wrong gradients and pass
// right ones.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { loadFixtures, caseInputs, sameBits } from "./helpers.mjs";

test.before(async () => {
  await sn.init({ threads: 2 });
});

// ---- every fixture case ----

const fixtures = loadFixtures(sn);
const skippedFd = [];
let withGrads = 0;
for (const { tensors, cases } of fixtures)
  for (const c of cases) {
    if (!c.gout) continue;
    withGrads++;
    // the generator marks cases that sit on a kink (relu at 0, max-pool ties) with fd: false
    if (c.fd === false) {
      skippedFd.push(c.name);
      continue;
    }
    test(`gradcheck: ${c.name}`, () => {
      const entry = sn.opTable.get(c.op);
      assert.ok(entry, `op ${c.op} is not in the op table`);
      const inputs = caseInputs(sn, c, tensors);
      const r = sn.gradcheck((...xs) => entry.apply(xs, c.attrs), inputs, { maxElements: 32, seed: 7, throws: true });
      assert.ok(r.ok);
      // every element of a small input is checked (an empty input has none)
      const sizes = inputs.map((t, i) => (t && c.grads[i] ? Math.min(t.size, 32) : 0));
      assert.is(r.checked, sizes.reduce((a, b) => a + b, 0));
    });
  }

test("gradcheck: fixture cases counted, and those without a finite-difference check named", () => {
  console.log(
    `\n  gradcheck: ${withGrads - skippedFd.length} of ${withGrads} fixture cases with gradients checked; ` +
      `${skippedFd.length} skipped by their fd: false flag${skippedFd.length ? ": " + skippedFd.join("; ") : ""}`,
  );
  assert.ok(withGrads > 0, "no fixture case has gradients");
});

// ---- gradcheck itself, on test-only ops computed in JavaScript ----

/** An element-wise op y = f(x) with the given backward factor dy/dx (right or deliberately wrong). */
function unaryOp(name, f, dfdx) {
  return sn.defineOp({
    name,
    inputs: ["input"],
    forward(ctx, [x]) {
      const y = sn.empty(x.shape, ctx.engine);
      const xd = x.data, yd = y.data;
      for (let i = 0; i < xd.length; i++) yd[i] = f(xd[i]);
      return y;
    },
    backward(ctx, g, [x]) {
      const dx = sn.empty(x.shape, ctx.engine);
      const xd = x.data, gd = g.data, d = dx.data;
      for (let i = 0; i < xd.length; i++) d[i] = dfdx(xd[i], i) * gd[i];
      return [dx];
    },
  });
}

const cubeRight = unaryOp("test_cube", (x) => x * x * x, (x) => 3 * x * x);
const cubeFactor = unaryOp("test_cube_wrong_factor", (x) => x * x * x, (x) => 2 * x * x);
const cubeOneElement = unaryOp("test_cube_wrong_at_5", (x) => x * x * x, (x, i) => (i === 5 ? 3.1 : 3) * x * x);
const tanhRight = unaryOp("test_tanh", Math.tanh, (x) => 1 - Math.tanh(x) ** 2);

/** y = a * b, element-wise; `wrongB` gives b the gradient of a. */
function mulOp(name, wrongB) {
  return sn.defineOp({
    name,
    inputs: ["input", "other"],
    forward(ctx, [a, b]) {
      const y = sn.empty(a.shape, ctx.engine);
      const ad = a.data, bd = b.data, yd = y.data;
      for (let i = 0; i < yd.length; i++) yd[i] = ad[i] * bd[i];
      return y;
    },
    backward(ctx, g, [a, b], _attrs, needs) {
      const da = sn.empty(a.shape, ctx.engine), db = sn.empty(b.shape, ctx.engine);
      const ad = a.data, bd = b.data, gd = g.data, x = da.data, y = db.data;
      for (let i = 0; i < gd.length; i++) {
        x[i] = gd[i] * bd[i];
        y[i] = gd[i] * (wrongB ? bd[i] : ad[i]);
      }
      return [needs[0] ? da : null, needs[1] ? db : null];
    },
  });
}
const mulRight = mulOp("test_mul", false);
const mulWrongB = mulOp("test_mul_wrong_b", true);

/** Sum (or mean of squares) of all elements accumulated one by one in f32: the worst rounding a
 *  reduction can have. `factor` scales the gradient: 1 is right, anything else wrong. */
function reduceOp(name, square, factor = 1) {
  return sn.defineOp({
    name,
    inputs: ["input"],
    forward(ctx, [x]) {
      const y = sn.empty([1], ctx.engine);
      let s = 0;
      for (const v of x.data) s = Math.fround(s + (square ? Math.fround(v * v) : v));
      y.data[0] = square ? s / x.size : s;
      return y;
    },
    backward(ctx, g, [x]) {
      const dx = sn.empty(x.shape, ctx.engine);
      const xd = x.data, d = dx.data, gy = g.data[0];
      for (let i = 0; i < d.length; i++) d[i] = factor * gy * (square ? (2 * xd[i]) / x.size : 1);
      return [dx];
    },
  });
}
const sumF32 = reduceOp("test_sum_f32", false);
const meanSquares = reduceOp("test_mean_squares", true);
const meanSquaresWrong = reduceOp("test_mean_squares_wrong", true, 0.9);

const values = (n, seed = 1, lo = -1, hi = 1) => {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return lo + ((s >>> 8) / 2 ** 24) * (hi - lo);
  });
};

test("gradcheck passes a right gradient (x^3, tanh), every element checked", () => {
  const x = sn.tensor(values(30), [2, 3, 5]).requireGrad();
  const r = sn.gradcheck((x) => cubeRight.apply([x]), [x]);
  assert.ok(r.ok, JSON.stringify(r.worst));
  assert.is(r.checked, 30);
  assert.ok(r.worst.error <= r.worst.tolerance);
  assert.ok(sn.gradcheck((x) => tanhRight.apply([x]), [sn.tensor(values(30, 2, -3, 3)).requireGrad()]).ok);
});

test("gradcheck computes the checked inputs' gradients only: a tensor fn uses that requires grad (a layer's weight) keeps its .grad", () => {
  const w = sn.tensor(Float32Array.from({ length: 12 }, (_, i) => Math.sin(i)), [3, 4]).requireGrad();
  const x = sn.tensor(Float32Array.from({ length: 8 }, (_, i) => Math.cos(i)), [2, 4]).requireGrad();
  const r = sn.gradcheck((x) => sn.tanh(sn.linear(x, w)), [x]);
  assert.ok(r.ok, JSON.stringify(r.worst));
  assert.is(r.checked, 8);
  assert.is(w.grad, null, "w.grad untouched");
  assert.is(x.grad, null, "x.grad put back");
});

test("gradcheck catches a gradient off by a constant factor (2x^2 for x^3)", () => {
  const x = sn.tensor(values(30), [2, 3, 5]).requireGrad();
  const r = sn.gradcheck((x) => cubeFactor.apply([x]), [x]);
  assert.not.ok(r.ok);
  assert.is(r.worst.input, 0);
  const xi = x.toArray()[r.worst.index];
  assert.ok(Math.abs(r.worst.numeric - r.worst.analytic * 1.5) < 0.05 * Math.abs(r.worst.numeric) + 1e-6, `numeric ${r.worst.numeric} is 3x^2, analytic ${r.worst.analytic} is 2x^2 at x = ${xi}`);
});

test("gradcheck catches a gradient wrong in one element only (3.1x^2 at element 5), and names it", () => {
  const x = sn.tensor(values(24, 3, 0.5, 1.5), [4, 6]).requireGrad();
  const r = sn.gradcheck((x) => cubeOneElement.apply([x]), [x]);
  assert.not.ok(r.ok);
  assert.is(r.worst.index, 5);
  assert.equal(r.worst.at, [0, 5]);
});

test("gradcheck names the input whose gradient is wrong (the second of two)", () => {
  const a = sn.tensor(values(12, 4), [3, 4]).requireGrad();
  const b = sn.tensor(values(12, 5), [3, 4]).requireGrad();
  assert.ok(sn.gradcheck((a, b) => mulRight.apply([a, b]), [a, b]).ok);
  const r = sn.gradcheck((a, b) => mulWrongB.apply([a, b]), [a, b]);
  assert.not.ok(r.ok);
  assert.is(r.worst.input, 1);
  // an input without requiresGrad is held constant and not checked
  b.requireGrad(false);
  const onlyA = sn.gradcheck((a, b) => mulWrongB.apply([a, b]), [a, b]);
  assert.ok(onlyA.ok);
  assert.is(onlyA.checked, 12);
});

test("gradcheck with throws: a GradcheckError naming input, element, both values and the tolerance", () => {
  const x = sn.tensor(values(6, 6, 0.5, 1.5), [2, 3]).requireGrad();
  x.name = "x";
  try {
    sn.gradcheck((x) => cubeFactor.apply([x]), [x], { throws: true });
    assert.unreachable("no error");
  } catch (e) {
    assert.instance(e, sn.GradcheckError);
    assert.match(e.message, /^gradcheck: input 0 \(x\) \[2,3\] element \d \[\d,\d\]: analytic [-\d.e]+, numeric [-\d.e]+: \|difference\| [\d.e+-]+ > tolerance [\d.e+-]+ \(eps 0\.01, rtol 0\.01, atol 0\.001/);
    assert.not.ok(e.report.ok);
  }
});

test("gradcheck leaves the inputs' values and their .grad as they were", () => {
  const x = sn.tensor(values(20, 8), [4, 5]).requireGrad();
  const before = x.toArray();
  const oldGrad = sn.full([4, 5], 7);
  x.grad = oldGrad;
  sn.gradcheck((x) => cubeRight.apply([x]), [x]);
  sameBits("x after gradcheck", x.toArray(), before);
  assert.ok(x.grad === oldGrad && x.grad.toArray().every((v) => v === 7), ".grad restored");
  sn.gradcheck((x) => cubeFactor.apply([x]), [x]); // a failing check too
  sameBits("x after a failing gradcheck", x.toArray(), before);
});

test("gradcheck samples at most maxElements of each input, the same ones for the same seed", () => {
  const x = sn.tensor(values(1000, 9), [10, 100]).requireGrad();
  const w = sn.tensor(values(1000, 10), [10, 100]).requireGrad();
  const fn = (x, w) => mulRight.apply([x, w]);
  const r1 = sn.gradcheck(fn, [x, w], { maxElements: 10, seed: 3 });
  const r2 = sn.gradcheck(fn, [x, w], { maxElements: 10, seed: 3 });
  assert.is(r1.checked, 20);
  assert.equal(r1.worst, r2.worst);
  // the wrong gradient of b is wrong everywhere, so any sample finds it
  assert.not.ok(sn.gradcheck((x, w) => mulWrongB.apply([x, w]), [x, w], { maxElements: 5 }).ok);
});

test("gradcheck of a composite function with fan-out and reshapes: relu(reshape(x + y)) + reshape(x)", () => {
  const x = sn.tensor(values(24, 11), [2, 3, 4]).requireGrad();
  const y = sn.tensor(values(24, 12), [2, 3, 4]).requireGrad();
  // keep x + y away from relu's kink at 0 by more than the step
  const s = x.toArray().map((v, i) => v + y.toArray()[i]);
  y.data.set(y.toArray().map((v, i) => (Math.abs(s[i]) < 0.05 ? v + 0.2 : v)));
  const layer = (x, y) => sn.add(sn.relu(sn.add(x, y).reshape([6, 4])), x.reshape([6, 4]));
  const r = sn.gradcheck(layer, [x, y], { throws: true });
  assert.ok(r.ok);
  assert.is(r.checked, 48);
});

test("gradcheck passes a sum of 4096 elements accumulated in f32 (its rounding stays inside the tolerance)", () => {
  for (const seed of [1, 2, 3]) {
    const x = sn.tensor(values(4096, seed), [4096]).requireGrad();
    const r = sn.gradcheck((x) => sumF32.apply([x]), [x], { maxElements: 16, seed });
    assert.ok(r.ok, JSON.stringify(r.worst));
  }
});

test("gradcheck of a mean over 15000 elements (a loss): passes the right gradient, catches one 10 % off", () => {
  // the f32 output ~0.33 moves by a few ulps per step: the resolution term is what lets this pass
  const x = sn.tensor(values(15000, 4), [3, 5000]).requireGrad();
  const r = sn.gradcheck((x) => meanSquares.apply([x]), [x], { maxElements: 32, throws: true });
  assert.ok(r.worst.resolution > 0);
  assert.not.ok(sn.gradcheck((x) => meanSquaresWrong.apply([x]), [x], { maxElements: 32 }).ok);
});

/** y_k = max(x_2k, x_2k+1), a max-pool of windows of 2; `wrong` routes the gradient to the smaller. */
function pairMaxOp(name, wrong) {
  const argmax = (xd, k) => (xd[2 * k] >= xd[2 * k + 1]) !== wrong ? 2 * k : 2 * k + 1;
  return sn.defineOp({
    name,
    inputs: ["input"],
    forward(ctx, [x]) {
      const y = sn.empty([x.size / 2], ctx.engine);
      const xd = x.data, yd = y.data;
      for (let k = 0; k < yd.length; k++) yd[k] = Math.max(xd[2 * k], xd[2 * k + 1]);
      return y;
    },
    backward(ctx, g, [x]) {
      const dx = sn.zeros(x.shape, ctx.engine);
      const xd = x.data, gd = g.data, d = dx.data;
      for (let k = 0; k < gd.length; k++) d[argmax(xd, k)] = gd[k];
      return [dx];
    },
  });
}
const pairMax = pairMaxOp("test_pair_max", false);
const pairMaxWrong = pairMaxOp("test_pair_max_wrong", true);

test("gradcheck: a max whose two values are closer than the step is checked with smaller steps", () => {
  // pairs 0.004 apart: the step 1e-2 swaps which one is the max
  const v = values(16, 13).map((a, i) => (i % 2 ? 0 : a));
  for (let i = 1; i < 16; i += 2) v[i] = v[i - 1] + (i % 4 === 1 ? 0.004 : -0.004);
  const x = sn.tensor(v).requireGrad();
  const r = sn.gradcheck((x) => pairMax.apply([x]), [x], { throws: true });
  assert.is(r.refined, 16);
  assert.not.ok(sn.gradcheck((x) => pairMaxWrong.apply([x]), [x]).ok, "the gradient routed to the smaller value is still caught");
});

test("gradcheck: a kink at the point itself (relu at exactly 0) fails: differences cannot check it", () => {
  const x = sn.tensor([0.5, 0, -0.5]).requireGrad();
  const r = sn.gradcheck((x) => sn.relu(x), [x]);
  assert.not.ok(r.ok);
  assert.is(r.worst.index, 1);
});

test("gradcheck: bad arguments are clear errors", () => {
  const x = sn.tensor([1, 2, 3]);
  assert.throws(() => sn.gradcheck((x) => cubeRight.apply([x]), [x]), /no input requires grad: call requireGrad\(\)/);
  x.requireGrad();
  assert.throws(() => sn.gradcheck((x) => cubeRight.apply([x]), [x], { eps: 0 }), /eps must be a positive number, got 0/);
  assert.throws(() => sn.gradcheck((x) => cubeRight.apply([x]), [x], { maxElements: 2.5 }), /maxElements must be an integer >= 1, got 2.5/);
  assert.throws(() => sn.gradcheck(() => 3, [x]), /fn must return a Tensor, got number/);
  assert.throws(() => sn.gradcheck((x) => x, [x, [1, 2]]), /input 1 is not a Tensor/);
});

test("backward(g) through a reshape: the leaf's .grad is its own copy, not the caller's g", () => {
  const x = sn.tensor([1, 2, 3, 4, 5, 6], [2, 3]).requireGrad();
  const g = sn.tensor([1, 2, 3, 4, 5, 6], [6]);
  x.reshape([6]).backward(g);
  g.data.fill(0);
  g.dispose();
  assert.equal(Array.from(x.grad.toArray()), [1, 2, 3, 4, 5, 6]);
});

test.after(() => sn.dispose());
test("gradcheckModule: a module of one's own (conv, batch norm, dropout, a cubing op inside) passes; a wrong backward inside fails; modes and buffers are put back", () => {
  class Block extends sn.Module {
    constructor(op) {
      super();
      this.op = op;
      this.conv = this.registerModule("conv", new sn.nn.Conv2d(2, 3, 3, { padding: 1 }));
      this.bn = this.registerModule("bn", new sn.nn.BatchNorm2d(3));
      this.drop = this.registerModule("drop", new sn.nn.Dropout(0.5));
      this.fc = this.registerModule("fc", new sn.nn.Linear(3 * 4 * 4, 2));
    }
    forward(x) {
      const h = this.drop.call(this.op.apply([this.bn.call(this.conv.call(x))], {}));
      return this.fc.call(sn.flatten(h));
    }
  }
  sn.manualSeed(2);
  const x = sn.tensor(Float32Array.from({ length: 2 * 2 * 16 }, (_, i) => Math.cos(i * 0.7)), [2, 2, 4, 4]).requireGrad();
  const good = new Block(cubeRight);
  good.train();
  // running statistics that are not the identity, so eval-mode batch norm matters
  good.stateDict().get("bn.running_var").data.set([0.5, 2, 1.5]);
  good.stateDict().get("bn.running_mean").data.set([0.1, -0.2, 0.3]);
  const buffers = good.buffers().map((b) => b.toArray());
  const r = sn.gradcheckModule(good, x, { maxElements: 16 });
  assert.ok(r.ok, JSON.stringify(r.worst));
  assert.ok(good.modules().every((m) => m.training), "modes put back");
  assert.equal(good.buffers().map((b) => b.toArray()), buffers, "buffers put back");
  const bad = new Block(cubeFactor);
  assert.not.ok(sn.gradcheckModule(bad, x, { maxElements: 16 }).ok);
});

test.run();
