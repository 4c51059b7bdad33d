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

/** n deterministic values in [-0.5, 0.5) from a 32-bit LCG started at state. */
function lcgValues(n, state) {
  let s = state >>> 0;
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = s / 2 ** 32 - 0.5;
  }
  return v;
}

/** A tensor of the given shape with deterministic values in [-0.5, 0.5) (a 32-bit LCG). */
export function lcgTensor(shape, seed) {
  return sn.tensor(lcgValues(shape.reduce((a, b) => a * b, 1), seed), shape);
}

/** n deterministic values in [-0.5, 0.5): the LCG from seed * 2654435761, so that small seeds
 *  start far apart (the convolution tests' inputs). */
export const pseudoValues = (n, seed) => lcgValues(n, Math.imul(seed, 2654435761));

/** Whether a and b hold the same bits (no assertion: for `assert.not.ok(identical(...))`). */
export const identical = (a, b) => a.length === b.length && Array.prototype.every.call(a, (v, i) => Object.is(v, b[i]));

/** conv2d in float64: x [N,C,H,W], w [O,C,K,K], bias b or null, padding P, stride 1. */
export function convReference(x, w, b, [N, C, H, W], O, P, K) {
  const HO = H + 2 * P - K + 1, WO = W + 2 * P - K + 1, y = new Float64Array(N * O * HO * WO);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++)
      for (let oy = 0; oy < HO; oy++)
        for (let ox = 0; ox < WO; ox++) {
          let s = b ? b[o] : 0;
          for (let c = 0; c < C; c++)
            for (let ky = 0; ky < K; ky++) {
              const iy = oy + ky - P;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < K; kx++) {
                const ix = ox + kx - P;
                if (ix >= 0 && ix < W) s += x[((n * C + c) * H + iy) * W + ix] * w[((o * C + c) * K + ky) * K + kx];
              }
            }
          y[((n * O + o) * HO + oy) * WO + ox] = s;
        }
  return y;
}

/** A training step's gradients on other convolution paths, as multiples of the exact path's own
 *  one-ulp sensitivity (test/winograd.test.mjs says why a step is held to that and not to a fixed
 *  tolerance). For seeds 1 to 40 until `want` are well-conditioned: the zoo model `zoo` (with
 *  `options`), in training mode; a batch of shape `shape` (Gaussian, labels i % 10, the same for
 *  every seed); the exact path's gradients (setPath(exact)); the most they move when the input is
 *  scaled by 1 + 1e-7 N(0, 1) (three draws): the sensitivity; seeds where it is not in (0, 1e-4)
 *  are skipped; then, for each [name, path] of `paths`, the distance of that path's gradients over
 *  the sensitivity. Distance: the largest over parameters of max |g - exact| / max |exact|; with
 *  skipNoise, parameters whose exact gradient's largest entry is under 1e-4 of all gradients'
 *  largest (rounding noise, e.g. a conv bias before batch norm) are left out. Every run is profiled:
 *  `ran[name]` is the conv paths (profiler names) of the last seed's step on that path. */
export function gradientSensitivity({ zoo, options = {}, shape, setPath, exact = "im2col", paths, want = 5, skipNoise = false }) {
  let s = 12345;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0), s / 2 ** 32);
  const gauss = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
  const B = shape[0];
  const X = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, gauss);
  const Y = Float32Array.from({ length: B }, (_, i) => i % 10);
  const dev = (a, b) => {
    let top = 0;
    if (skipNoise) for (const [, r] of b) for (const v of r) top = Math.max(top, Math.abs(v));
    return Math.max(...a.map(([, g], i) => {
      const r = b[i][1];
      let d = 0, m = 0;
      for (let j = 0; j < g.length; j++) (d = Math.max(d, Math.abs(g[j] - r[j]))), (m = Math.max(m, Math.abs(r[j])));
      return skipNoise && m < 1e-4 * top ? 0 : d / m;
    }));
  };
  const ratios = Object.fromEntries(paths.map(([name]) => [name, []])), ran = {}, tried = [];
  for (let seed = 1; seed <= 40 && tried.length < want; seed++) {
    sn.manualSeed(seed);
    const model = sn.createModel(zoo, options);
    try {
      model.train();
      const sd = new Map([...model.stateDict()].map(([k, t]) => [k, Float32Array.from(t.toArray())]));
      const grads = (path, x, name) => {
        setPath(path);
        const state = model.stateDict();
        for (const [k, v] of sd) state.get(k).data.set(v); // the same weights and statistics each time
        const p = sn.profile(() => sn.tidy(() => {
          for (const q of model.parameters()) q.grad = null;
          sn.cross_entropy(model.forward(sn.tensor(x, shape)), sn.tensor(Y, [B])).backward();
          return model.namedParameters().map(([k, q]) => [k, Float32Array.from(q.grad.toArray())]);
        }), { peak: false });
        if (name) ran[name] = p.ops.filter((r) => r.op.startsWith("conv2d")).map((r) => r.path);
        return p.value;
      };
      const exactGrads = grads(exact, X);
      let sens = 0;
      for (let t = 0; t < 3; t++) sens = Math.max(sens, dev(grads(exact, X.map((v) => v * (1 + 1e-7 * gauss()))), exactGrads));
      if (!(sens > 0 && sens < 1e-4)) continue;
      for (const [name, path] of paths) ratios[name].push(dev(grads(path, X, name), exactGrads) / sens);
      tried.push(`seed ${seed}: sensitivity ${sens.toExponential(2)}, ${paths.map(([name]) => `${name} ${ratios[name].at(-1).toPrecision(3)}x`).join(", ")}`);
    } finally {
      model.dispose();
    }
  }
  return { ratios, ran, tried };
}

/** The middle value (the upper one of an even count). */
export const medianOf = (a) => [...a].sort((p, q) => p - q)[a.length >> 1];

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
