// Shared test helpers: comparing values, deterministic inputs, running on a given thread count,
// and the fixture cases written by tools/fixtures/gen.py. The helpers that make tensors or
// check the engine use the library instance the tests import (../dist/index.js).
import { readFileSync, readdirSync } from "node:fs";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";

/** Fails naming the worst element outside |got - want| <= atol + rtol * |want|, with both values.
 *  Infinities and NaN must match exactly (an infinite `want` would otherwise allow anything). */
export function compare(what, got, want, rtol, atol) {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} values, expected ${want.length}`);
  let worst = -1, worstErr = 0, bad = 0;
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    const err = Math.abs(g - w);
    const ok = Number.isFinite(w) ? err <= atol + rtol * Math.abs(w) : g === w || (Number.isNaN(g) && Number.isNaN(w));
    if (ok) continue;
    bad++;
    const e = Number.isNaN(err) ? Infinity : err;
    if (worst < 0 || e > worstErr) {
      worst = i;
      worstErr = e;
    }
  }
  if (worst >= 0)
    throw new Error(
      `${what}: element ${worst}: got ${got[worst]}, expected ${want[worst]} (|diff| ${Math.abs(got[worst] - want[worst]).toExponential(2)} ` +
        `> atol ${atol} + rtol ${rtol} * |expected|; ${bad} of ${got.length} elements outside)`,
    );
}

/** The bits of f32 values, for comparisons that must be exact. */
export function bits(values) {
  return new Uint32Array(Float32Array.from(values).buffer);
}

const hex = (u) => "0x" + u.toString(16).padStart(8, "0");

/** Fails naming the first element whose bits differ, with both values and both bit patterns. */
export function sameBits(what, got, want) {
  const g = bits(got), w = bits(want);
  if (g.length !== w.length) throw new Error(`${what}: ${g.length} values, expected ${w.length}`);
  for (let i = 0; i < g.length; i++)
    if (g[i] !== w[i])
      throw new Error(`${what}: element ${i}: ${got[i]} (${hex(g[i])}) but ${want[i]} (${hex(w[i])})`);
}

const fixtureDir = new URL("./fixtures/", import.meta.url);

/** Every op fixture file: test/fixtures/*.safetensors, not subfolders, not model_* files.
 *  Each with its tensors and its cases (as written by gen.py). */
export function loadFixtures(sn) {
  return readdirSync(fixtureDir, { withFileTypes: true })
    .filter((d) => d.isFile() && d.name.endsWith(".safetensors") && !d.name.startsWith("model_"))
    .map((d) => d.name)
    .sort()
    .map((file) => {
      const { tensors, metadata } = sn.parseSafetensors(readFileSync(new URL(file, fixtureDir)), file);
      const group = file.replace(".safetensors", "");
      const cases = JSON.parse(metadata.cases).map((c) => ({ ...c, group, name: `${group}: ${c.op}: ${c.id}` }));
      return { group, file, tensors, cases };
    });
}

/** The case's inputs as tensors on the current engine; those with a reference gradient require grad. */
export function caseInputs(sn, c, tensors) {
  return c.inputs.map((name, i) => {
    if (!name) return null;
    const st = tensors.get(name);
    const t = sn.tensor(st.data, st.shape);
    if (c.grads[i]) t.requireGrad();
    return t;
  });
}

/** Runs a case forward and, where it has an output gradient, backward. Returns copies of the
 *  output, the input gradients (null where none) and the inputs afterwards. */
export function runCase(sn, c, tensors) {
  const entry = sn.opTable.get(c.op);
  if (!entry) throw new Error(`op ${c.op} is not in the op table`);
  const inputs = caseInputs(sn, c, tensors);
  const y = entry.apply(inputs, c.attrs);
  const res = { inputs, y, shape: [...y.shape], out: y.toArray(), grads: c.inputs.map(() => null) };
  if (c.gout) {
    const g = tensors.get(c.gout);
    y.backward(sn.tensor(g.data, g.shape));
    res.grads = inputs.map((t, i) => (c.grads[i] && t.grad ? t.grad.toArray() : null));
  }
  res.after = inputs.map((t) => (t ? t.toArray() : null));
  return res;
}

/** Frees what runCase made. */
export function disposeCase(res) {
  for (const t of res.inputs) {
    t?.grad?.dispose();
    t?.dispose();
  }
  res.y.dispose();
}

// ---------------------------------------------------------------- inputs, errors, threads

/** A seeded generator for fuzz tests (mulberry32, the same stream every run): next() in [0, 1),
 *  next.int(n) in [0, n), next.pick(list). */
export function fuzzRng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (n) => Math.floor(next() * n);
  next.pick = (xs) => xs[next.int(xs.length)];
  return next;
}

/** Deterministic uniform values in [lo, hi) (mulberry32). */
export function uniformValues(n, seed, lo = -1, hi = 1) {
  const out = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

/** max |got - want| / max |want|: an error relative to the largest reference value. */
export function relError(got, want) {
  let e = 0, big = 0;
  for (let i = 0; i < want.length; i++) {
    e = Math.max(e, Math.abs(got[i] - want[i]));
    big = Math.max(big, Math.abs(want[i]));
  }
  return e / big;
}

/** A tensor of the given shape with deterministic values in [-0.5, 0.5) (a 32-bit LCG). */
export function lcgTensor(shape, seed) {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = s / 2 ** 32 - 0.5;
  }
  return sn.tensor(v, shape);
}

/** Throws matching re, without allocating anything (the check runs before any kernel). */
export function rejects(fn, re) {
  const before = sn.engine().memoryStats().live;
  assert.throws(fn, re);
  assert.is(sn.engine().memoryStats().live, before, "nothing was allocated");
}

/** Runs fn on a fresh engine with the given thread count, every kernel split across threads,
 *  guard bytes checked afterwards; disposes the engine. */
export async function onThreads(threads, fn) {
  await sn.init({ threads, minParallelWork: 0, sentinels: true });
  try {
    const r = fn();
    sn.engine().arena.checkSentinels();
    return r;
  } finally {
    sn.dispose();
  }
}

// ---- tiny training setups (train.test.mjs, fit_options.test.mjs) ----

/** Two well-separated classes of 1x8x8 images (a bright left half or a bright right half). */
export function toyData(n, seed = 1) {
  const g = new sn.Generator(seed);
  const x = new Float32Array(n * 64), y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 2;
    for (let r = 0; r < 8; r++)
      for (let c = 0; c < 8; c++) x[i * 64 + r * 8 + c] = ((c < 4) === (y[i] === 0) ? 0.8 : 0.1) + 0.2 * g.random();
  }
  return new sn.Dataset(x, [n, 1, 8, 8], y);
}

/** conv, ReLU, pool, linear: seeded */
export function tinyModel(seed = 3) {
  const { nn } = sn;
  sn.manualSeed(seed);
  return nn.sequential(new nn.Conv2d(1, 4, 3, { padding: 1 }), new nn.ReLU(), new nn.MaxPool2d(2), new nn.Flatten(), new nn.Linear(64, 2));
}

/** with batch norm (buffers) and dropout (a generator per layer): what a checkpoint must carry */
export function bnDropModel(seed) {
  const { nn } = sn;
  sn.manualSeed(seed);
  return nn.sequential(new nn.Conv2d(1, 4, 3, { padding: 1 }), new nn.BatchNorm2d(4), new nn.ReLU(), new nn.MaxPool2d(2), new nn.Flatten(), new nn.Dropout(0.3), new nn.Linear(64, 2));
}
