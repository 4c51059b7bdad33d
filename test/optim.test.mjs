// Optimisers, gradient clipping, the L1 gradient and learning-rate schedules against torch (1.13)
// step for step (test/fixtures/optim/optim.safetensors, from tools/fixtures/gen_optim.py); state
// dicts; the same bits on 1 and 2 threads; clear errors for bad options.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import * as sn from "../dist/index.js";
import { compare, sameBits, onThreads } from "./helpers.mjs";

const { tensors, metadata } = sn.parseSafetensors(readFileSync(new URL("./fixtures/optim/optim.safetensors", import.meta.url)), "optim.safetensors");
const optims = JSON.parse(metadata.optim);
const clips = JSON.parse(metadata.clip);
const scheds = JSON.parse(metadata.sched);

// Both sides update in float32 from the same float32 values; torch's CPU kernels may fuse a
// multiply and an add (AVX2 fmadd) where ours round twice, so elements can differ in the last
// bit or two per operation; over 5 steps on parameters |p| <= ~2 the largest difference seen is
// about a fifth of this:
const RTOL = 4e-6, ATOL = 4e-7;
// Learning rates are computed in double on both sides; only cos() may differ in the last bit.
const LR_RTOL = 1e-12;

const T = (name) => {
  const st = tensors.get(name);
  if (!st) throw new Error(`fixture tensor ${name} missing`);
  return sn.tensor(st.data, st.shape);
};

function makeOpt(c, params) {
  const arg = c.groups ? c.groups.map((g) => ({ ...g, params: g.params.map((i) => params[i]) })) : params;
  return new sn[c.optimizer](arg, c.options);
}

/** Sets each parameter's gradient for step s as the fixture has it (none where torch had None). */
function setGrads(c, params, s) {
  params.forEach((p, j) => {
    p.grad?.dispose();
    const name = `${c.prefix}p${j}.grad${s}`;
    p.grad = tensors.has(name) ? T(name) : null;
  });
}

const initParams = (c) => c.shapes.map((_, j) => T(`${c.prefix}p${j}.init`).requireGrad());

test.before(async () => {
  await sn.init({ threads: 2, sentinels: true });
});

// ---- optimisers against torch ----

for (const c of optims)
  test(`${c.id}: parameters after each of ${c.steps} steps match torch.optim`, () => {
    const params = initParams(c);
    const opt = makeOpt(c, params);
    for (let s = 0; s < c.steps; s++) {
      setGrads(c, params, s);
      opt.step();
      params.forEach((p, j) => compare(`step ${s + 1}, parameter ${j}`, p.toArray(), tensors.get(`${c.prefix}p${j}.after${s}`).data, RTOL, ATOL));
    }
    opt.dispose();
    sn.engine().arena.checkSentinels();
  });

for (const c of optims)
  test(`${c.id}: stateDict after 2 steps loaded into a fresh optimiser continues with the same bits`, () => {
    const a = initParams(c);
    const optA = makeOpt(c, a);
    for (let s = 0; s < 2; s++) {
      setGrads(c, a, s);
      optA.step();
    }
    const sd = optA.stateDict();
    const b = a.map((p) => sn.tensor(p.toArray(), p.shape).requireGrad());
    const optB = makeOpt(c, b);
    optB.loadStateDict(sd);
    for (let s = 2; s < c.steps; s++) {
      setGrads(c, a, s);
      setGrads(c, b, s);
      optA.step();
      optB.step();
    }
    a.forEach((p, j) => sameBits(`parameter ${j}`, b[j].toArray(), p.toArray()));
    optA.dispose();
    optB.dispose();
  });

test("stateDict is a plain object shaped like torch's: state by parameter index with step and Float32Array buffers, groups with options", () => {
  const p = sn.tensor([1, 2, 3]).requireGrad(), q = sn.tensor([4, 5]).requireGrad();
  const opt = new sn.Adam([{ params: [p] }, { params: [q], lr: 0.5 }], { lr: 0.1, amsgrad: true });
  p.grad = sn.tensor([0.1, 0.2, 0.3]);
  opt.step();
  opt.step();
  const sd = opt.stateDict();
  assert.equal(Object.keys(sd.state), ["0"], "only the parameter that had a gradient has state");
  assert.is(sd.state[0].step, 2);
  for (const k of ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]) assert.ok(sd.state[0][k] instanceof Float32Array && sd.state[0][k].length === 3, k);
  assert.equal(sd.param_groups.map((g) => [g.lr, g.params]), [[0.1, [0]], [0.5, [1]]]);
  assert.equal(sd.param_groups[0].betas, [0.9, 0.999]);
  const sgd = new sn.SGD([p], { lr: 0.1, momentum: 0.9 });
  sgd.step();
  assert.equal(Object.keys(sgd.stateDict().state[0]), ["momentum_buffer"], "torch's SGD keeps no step count");
});

test("loadStateDict restores the groups' options (a scheduled lr) with the state", () => {
  const p = sn.tensor([1, 2]).requireGrad();
  const opt = new sn.SGD([p], { lr: 0.1 });
  opt.paramGroups[0].lr = 0.025;
  const sd = opt.stateDict();
  const opt2 = new sn.SGD([sn.tensor([1, 2]).requireGrad()], { lr: 0.1 });
  opt2.loadStateDict(sd);
  assert.is(opt2.paramGroups[0].lr, 0.025);
});

// ---- zeroGrad and schedules driving the optimiser ----

test("zeroGrad() zeroes the gradients in place; zeroGrad(true) drops them, and step() then leaves the parameters alone", () => {
  const p = sn.tensor([1, -2, 3]).requireGrad();
  p.grad = sn.tensor([1, 1, 1]);
  const g = p.grad;
  const opt = new sn.SGD([p], { lr: 0.1 });
  opt.zeroGrad();
  assert.is(p.grad, g);
  assert.equal([...p.grad.toArray()], [0, 0, 0]);
  opt.zeroGrad(true);
  assert.is(p.grad, null);
  opt.step();
  assert.equal([...p.toArray()], [1, -2, 3]);
});

test("a scheduler's lr is the one the next step uses", () => {
  const p = sn.tensor([1]).requireGrad();
  const opt = new sn.SGD([p], { lr: 0.5 });
  const sched = new sn.StepLR(opt, { step_size: 1, gamma: 0.5 });
  sched.step();
  assert.equal(sched.getLr(), [0.25]);
  p.grad = sn.tensor([1]);
  opt.step();
  assert.is(p.toArray()[0], Math.fround(1 - 0.25));
});

// ---- clipping and L1 against torch ----

for (const c of clips)
  test(`${c.id}: gradients${c.kind === "norm" ? " and returned norm" : ""} match torch`, () => {
    if (c.kind === "l1") {
      const w = T(`${c.prefix}w`).requireGrad();
      w.grad = T(`${c.prefix}g.before`);
      sn.addL1Grad([w], c.l1);
      compare("gradient", w.grad.toArray(), tensors.get(`${c.prefix}g.after`).data, RTOL, ATOL);
      return;
    }
    const params = c.shapes.map((s, j) => {
      const p = sn.zeros(s).requireGrad();
      p.grad = T(`${c.prefix}g${j}.before`);
      return p;
    });
    if (c.kind === "norm") {
      const total = sn.clipGradNorm(params, c.max_norm, c.norm_type === "inf" ? Infinity : c.norm_type);
      compare("total norm", [total], [c.total_norm], RTOL, 0);
    } else sn.clipGradValue(params, c.clip_value);
    params.forEach((p, j) => compare(`gradient ${j}`, p.grad.toArray(), tensors.get(`${c.prefix}g${j}.after`).data, RTOL, ATOL));
    sn.engine().arena.checkSentinels();
  });

test("clipGradNorm: parameters without a gradient are skipped; none at all gives 0", () => {
  const p = sn.zeros([2]).requireGrad(), q = sn.zeros([2]).requireGrad();
  p.grad = sn.tensor([3, 4]);
  assert.is(sn.clipGradNorm([p, q], 1), 5);
  assert.equal([...p.grad.toArray()], [...new Float32Array([3, 4].map((v) => Math.fround(v * Math.fround(1 / Math.fround(5 + Math.fround(1e-6))))))]);
  assert.is(sn.clipGradNorm([q], 1), 0);
});

test("clipGradNorm: a NaN gradient gives a NaN norm (and NaN gradients, as torch), or an error with errorIfNonfinite", () => {
  const p = sn.zeros([3]).requireGrad();
  p.grad = sn.tensor([1, NaN, 2]);
  assert.throws(() => sn.clipGradNorm([p], 1, 2, true), /clipGradNorm: the total norm of order 2 of the gradients is NaN/);
  assert.ok(Number.isNaN(sn.clipGradNorm([p], 1)));
  assert.ok(p.grad.toArray().every(Number.isNaN));
});

// ---- schedules against torch ----

function makeSched(kind, opt, options) {
  if (kind === "SequentialLR") {
    const subs = options.schedulers.map(([k, o]) => new sn[k](opt, o));
    return new sn.SequentialLR(opt, subs, options.milestones);
  }
  return new sn[kind](opt, options);
}

for (const c of scheds)
  test(`${c.id}: getLr() after construction and after each of 20 steps matches torch's get_last_lr()`, () => {
    const opt = new sn.SGD(c.group_lrs.map((lr) => ({ params: [sn.zeros([1]).requireGrad()], lr })), { lr: c.group_lrs[0] });
    const sched = makeSched(c.kind, opt, c.options);
    c.lrs.forEach((want, s) => {
      if (s > 0) sched.step();
      compare(`lr after ${s} steps`, sched.getLr(), want, LR_RTOL, 0);
      compare(`group lr after ${s} steps`, opt.paramGroups.map((g) => g.lr), want, LR_RTOL, 0);
    });
  });

test("linearWarmup(opt, { steps, start_factor, then }) is SequentialLR([LinearLR, then], [steps])", () => {
  const c = scheds.find((s) => s.kind === "SequentialLR" && s.options.schedulers[1][0] === "CosineAnnealingLR");
  const opt = new sn.SGD([sn.zeros([1]).requireGrad()], { lr: c.group_lrs[0] });
  const [[, lin], [, cos]] = c.options.schedulers;
  const sched = sn.linearWarmup(opt, { steps: lin.total_iters, start_factor: lin.start_factor, then: new sn.CosineAnnealingLR(opt, cos) });
  c.lrs.forEach((want, s) => {
    if (s > 0) sched.step();
    compare(`lr after ${s} steps`, sched.getLr(), want, LR_RTOL, 0);
  });
});

test("scheduler stateDict/loadStateDict resumes the same sequence", () => {
  const mk = () => {
    const opt = new sn.SGD([sn.zeros([1]).requireGrad()], { lr: 0.1 });
    return [opt, new sn.CosineAnnealingLR(opt, { T_max: 6, eta_min: 0.01 })];
  };
  const [optA, a] = mk();
  for (let i = 0; i < 4; i++) a.step();
  const [optB, b] = mk();
  b.loadStateDict(a.stateDict());
  optB.loadStateDict(optA.stateDict());
  for (let i = 0; i < 8; i++) {
    a.step();
    b.step();
    assert.equal(b.getLr(), a.getLr());
  }
});

// ---- same bits on 1 and 2 threads ----

function randArray(n, seed) {
  const a = new Float32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    a[i] = x / 2 ** 31 - 1;
  }
  return a;
}

const big = [
  ["SGD", { lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 0.01 }],
  ["RMSprop", { lr: 0.01, centered: true, momentum: 0.5, weight_decay: 0.01 }],
  ["Adam", { lr: 0.01, amsgrad: true, weight_decay: 0.1 }],
  ["AdamW", { lr: 0.01 }],
];
for (const [cls, options] of big)
  test(`${cls} ${JSON.stringify(options)} on 100003 values: same bits on 1 and 2 threads over 3 steps`, async () => {
    const run = () => {
      const p = sn.tensor(randArray(100003, 1)).requireGrad();
      const opt = new sn[cls]([p], options);
      for (let s = 0; s < 3; s++) {
        p.grad = sn.tensor(randArray(100003, 10 + s));
        opt.step();
      }
      return p.toArray();
    };
    sameBits(cls, await onThreads(1, run), await onThreads(2, run));
    await sn.init({ threads: 2, sentinels: true });
  });

test("clipGradNorm (norms 2, 1, inf), clipGradValue and addL1Grad on 100003 values: same bits on 1 and 2 threads", async () => {
  const run = () => {
    const out = [];
    for (const nt of [2, 1, Infinity]) {
      const p = sn.zeros([100003]).requireGrad();
      p.grad = sn.tensor(randArray(100003, 5));
      out.push(new Float32Array([sn.clipGradNorm([p], 0.5, nt)]), p.grad.toArray());
    }
    const p = sn.tensor(randArray(100003, 6)).requireGrad();
    p.grad = sn.tensor(randArray(100003, 7));
    sn.clipGradValue([p], 0.2);
    sn.addL1Grad([p], 0.01);
    out.push(p.grad.toArray());
    return out;
  };
  const one = await onThreads(1, run), two = await onThreads(2, run);
  one.forEach((a, i) => sameBits(`result ${i}`, a, two[i]));
  await sn.init({ threads: 2, sentinels: true });
});

// ---- bad options ----

const P = () => [sn.tensor([1, 2, 3]).requireGrad()];

test("SGD: missing or negative lr, negative momentum or weight_decay, Nesterov without momentum are clear errors", () => {
  assert.throws(() => new sn.SGD(P(), {}), /SGD: lr is required/);
  assert.throws(() => new sn.SGD(P(), { lr: -1 }), /SGD: invalid lr -1: must be a finite number >= 0/);
  assert.throws(() => new sn.SGD(P(), { lr: NaN }), /SGD: invalid lr null/);
  assert.throws(() => new sn.SGD(P(), { lr: 0.1, momentum: -0.5 }), /SGD: invalid momentum -0.5/);
  assert.throws(() => new sn.SGD(P(), { lr: 0.1, weight_decay: -1e-4 }), /SGD: invalid weight_decay -0.0001/);
  assert.throws(() => new sn.SGD(P(), { lr: 0.1, nesterov: true }), /SGD: Nesterov momentum requires a momentum and zero dampening \(momentum 0, dampening 0\)/);
  assert.throws(() => new sn.SGD(P(), { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }), /Nesterov momentum requires .*dampening 0.1/);
});

test("Adam/AdamW/RMSprop: betas outside [0, 1), negative eps, alpha or lr are clear errors", () => {
  assert.throws(() => new sn.Adam(P(), { betas: [1, 0.999] }), /Adam: invalid beta parameter at index 0: 1 \(must be in \[0, 1\)\)/);
  assert.throws(() => new sn.AdamW(P(), { betas: [0.9, -0.1] }), /AdamW: invalid beta parameter at index 1: -0.1/);
  assert.throws(() => new sn.Adam(P(), { betas: [0.9] }), /Adam: betas must be a pair \[beta1, beta2\], got \[0.9\]/);
  assert.throws(() => new sn.Adam(P(), { eps: -1e-8 }), /Adam: invalid eps -1e-8/);
  assert.throws(() => new sn.Adam(P(), { lr: -0.001 }), /Adam: invalid lr -0.001/);
  assert.throws(() => new sn.RMSprop(P(), { alpha: -0.1 }), /RMSprop: invalid alpha -0.1/);
  assert.throws(() => new sn.RMSprop(P(), { centered: 1 }), /RMSprop: centered must be true or false, got 1/);
});

test("optimisers: unknown options, empty or bad parameter lists, non-leaf and repeated parameters are clear errors", () => {
  assert.throws(() => new sn.SGD(P(), { lr: 0.1, learning_rate: 0.1 }), /^SGD: unknown option 'learning_rate'; SGD takes lr, momentum, dampening, nesterov, weight_decay, initial_lr$/);
  assert.throws(() => new sn.Adam([]), /Adam: got an empty parameter list/);
  assert.throws(() => new sn.Adam([[1, 2]]), /Adam: parameter group 0 must be \{ params: Tensor\[\], \.\.\.options \}/);
  assert.throws(() => new sn.Adam([{ params: [1] }]), /Adam: parameter 0 of group 0 is not a Tensor \(number\)/);
  const x = sn.tensor([1, 2]).requireGrad();
  assert.throws(() => new sn.Adam([sn.relu(x)]), /Adam: parameter 0 of group 0 \[2\] is not a leaf \(it was computed by relu\)/);
  assert.throws(() => new sn.Adam([{ params: [x] }, { params: [x] }]), /Adam: parameter 0 of group 1 \[2\] appears more than once/);
  assert.throws(() => new sn.SGD([{ params: [x], lr: -0.1 }], { lr: 0.1 }), /SGD: parameter group 0: invalid lr -0.1/);
  assert.throws(() => new sn.SGD([{ params: [x], lrr: 0.1 }], { lr: 0.1 }), /^SGD: unknown option 'lrr' \(did you mean 'lr'\?\) in parameter group 0; a parameter group takes lr, /);
});

test("step(): a gradient of the wrong size, or an lr set invalid on a group, is a clear error", () => {
  const p = sn.tensor([1, 2, 3]).requireGrad();
  const opt = new sn.Adam([p]);
  p.grad = sn.tensor([1, 2, 3, 4]);
  assert.throws(() => opt.step(), /Adam: gradient \[4\] does not match parameter \[3\]/);
  p.grad = sn.tensor([1, 2, 3]);
  opt.paramGroups[0].lr = -1;
  assert.throws(() => opt.step(), /Adam: parameter group 0: invalid lr -1/);
});

test("loadStateDict: a different group count, a buffer of the wrong length or an unknown buffer is an error and changes nothing", () => {
  const p = sn.tensor([1, 2, 3]).requireGrad();
  const opt = new sn.Adam([p]);
  p.grad = sn.tensor([1, 1, 1]);
  opt.step();
  const good = opt.stateDict();
  assert.throws(() => opt.loadStateDict({ ...good, param_groups: [...good.param_groups, good.param_groups[0]] }), /Adam: loadStateDict: the state dict has 2 parameter groups, this optimiser 1/);
  const short = { ...good, state: { 0: { ...good.state[0], exp_avg: new Float32Array(2) } } };
  assert.throws(() => opt.loadStateDict(short), /Adam: loadStateDict: parameter 0: buffer 'exp_avg' must be a Float32Array of 3 values for \[3\], got 2 values/);
  const extra = { ...good, state: { 0: { ...good.state[0], momentum_buffer: new Float32Array(3) } } };
  assert.throws(() => opt.loadStateDict(extra), /Adam: loadStateDict: parameter 0: unexpected buffer 'momentum_buffer'/);
  sameBits("state unchanged", opt.stateDict().state[0].exp_avg, good.state[0].exp_avg);
});

test("clipping and L1: negative or non-finite limits, unsupported norm types are clear errors", () => {
  const ps = P();
  assert.throws(() => sn.clipGradNorm(ps, -1), /clipGradNorm: maxNorm must be a finite number >= 0, got -1/);
  assert.throws(() => sn.clipGradNorm(ps, 1, 3), /clipGradNorm: normType must be 2, 1 or Infinity, got 3/);
  assert.throws(() => sn.clipGradValue(ps, -0.5), /clipGradValue: clipValue must be a number >= 0, got -0.5/);
  assert.throws(() => sn.addL1Grad(ps, -0.1), /addL1Grad: l1 must be a finite number >= 0, got -0.1/);
  assert.throws(() => sn.clipGradNorm([1, 2], 1), /clipGradNorm: parameter 0 is not a Tensor \(number\)/);
});

test("schedulers: bad step_size, gamma, T_max, factors, milestones or optimizer are clear errors", () => {
  const opt = new sn.SGD(P(), { lr: 0.1 });
  assert.throws(() => new sn.StepLR(opt, { step_size: 0 }), /StepLR: step_size must be an integer >= 1, got 0/);
  assert.throws(() => new sn.ExponentialLR(opt, {}), /ExponentialLR: gamma must be a finite number, got undefined/);
  assert.throws(() => new sn.CosineAnnealingLR(opt, { T_max: 2.5 }), /CosineAnnealingLR: T_max must be an integer >= 1, got 2.5/);
  assert.throws(() => new sn.LinearLR(opt, { start_factor: 2 }), /LinearLR: start_factor must be a finite number in \[0, 1\], got 2/);
  assert.throws(() => new sn.StepLR({}, { step_size: 1 }), /StepLR: the first argument must be an optimizer/);
  const a = new sn.LinearLR(opt), b = new sn.ExponentialLR(opt, { gamma: 0.9 });
  assert.throws(() => new sn.SequentialLR(opt, [a, b], []), /SequentialLR: expected 1 milestones for 2 schedulers, got \[\]/);
  const other = new sn.SGD(P(), { lr: 0.1 });
  assert.throws(() => new sn.SequentialLR(other, [a, b], [3]), /SequentialLR: scheduler 0 does not belong to the same optimizer/);
});

test.after(() => sn.dispose());
test.run();
