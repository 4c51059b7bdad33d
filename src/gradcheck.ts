// Numerical gradient check: the gradients backward() computes, against central finite
// differences. For the op tests and for users checking their own layers and models.
//
// The check uses one scalar, L = sum(fn(inputs) * r) for a fixed random r, so one backward pass
// (with output gradient r) gives every analytic derivative dL/dx_j, and each numeric one costs two
// forward passes: (L(x_j + h) - L(x_j - h)) / (2h). L is summed in float64 from the f32 outputs
// (each product of two f32 values is exact in float64), so the only rounding is the outputs' own.
//
// Why these defaults. Central differences err in two ways:
// - truncation, about h^2 |f'''| / 6: with h = eps * max(1, |x|), eps = 1e-2, about 2e-5 of the
//   derivative for functions of unit curvature;
// - resolution: the outputs are f32, so L(x_j + h) - L(x_j - h) is known to about one ulp of each
//   output that moved (weighted by |r_k|); over the step that is `res`, the finest derivative the
//   quotient can show. For a mean over n elements it is about n * 3e-6 of the derivatives (1 % at
//   n = 3000), for most ops far less.
// So an element passes when |analytic - numeric| <= atol * scale + rtol * |numeric| + 2 * res,
// with rtol = 1e-2, atol = 1e-3 of `scale`, the largest |numeric| derivative of the same input
// (some derivatives are near 0; their rounding is a fraction of the others'), and twice the
// resolution: the final rounding of each output and the rounding inside the op (a sum's partial
// sums) on top. That is ten times above the truncation and far below what a wrong gradient gives
// (a wrong sign, index, factor or missing term is wrong by its whole size). A smaller eps would
// not help: every factor of 10 off the step is a factor of 10 on `res`.
// A kink closer than h (relu near 0, two close values in a max-pool window) shows as one-sided
// differences that disagree; those elements are retried with smaller steps. A kink at the point
// itself (relu at exactly 0) cannot be checked by differences at all.
import { Tensor, tensor, tidy, shapeStr } from "./tensor.js";
import { noGrad } from "./autograd.js";
import { Module } from "./nn/module.js";
import { checkOptions, keysOf } from "./options.js";

export interface GradcheckOptions {
  /** Relative step: x_j +- eps * max(1, |x_j|) (default 1e-2). */
  eps?: number;
  /** Relative tolerance, of |numeric| (default 1e-2). */
  rtol?: number;
  /** Absolute tolerance, as a fraction of the largest |numeric| derivative of the same input
   *  (default 1e-3). */
  atol?: number;
  /** At most this many elements of each input are checked, chosen at random (default 64). */
  maxElements?: number;
  /** Seed of r and of the choice of elements (default 1). */
  seed?: number;
  /** Throw a GradcheckError naming the worst element instead of returning a failed report. */
  throws?: boolean;
}

export interface GradcheckWorst {
  /** index of the input in `inputs` */
  input: number;
  /** flat index of the element in that input, and the same as coordinates */
  index: number;
  at: number[];
  analytic: number;
  numeric: number;
  /** |analytic - numeric| */
  error: number;
  /** what was allowed for this element (see the top of gradcheck.ts) */
  tolerance: number;
  /** of that, the finest difference the f32 outputs let the quotient show */
  resolution: number;
}

export interface GradcheckReport {
  ok: boolean;
  /** elements compared, over all inputs */
  checked: number;
  /** of those, elements where the step straddled a kink and smaller steps were taken */
  refined: number;
  /** the element furthest outside (or least inside) its tolerance; null if none was checked */
  worst: GradcheckWorst | null;
}

export class GradcheckError extends Error {
  constructor(message: string, readonly report: GradcheckReport) {
    super(message);
  }
}

/** mulberry32: a small seeded generator, the same sequence everywhere. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ulpF32 = new Float32Array(1);
const ulpU32 = new Uint32Array(ulpF32.buffer);
/** The spacing of f32 values at v (2^-149 below the normal range). */
function ulp(v: number): number {
  ulpF32[0] = v;
  const e = (ulpU32[0] >>> 23) & 0xff;
  return 2 ** (Math.max(e, 1) - 150);
}

function positive(what: string, v: number): number {
  if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) throw new RangeError(`gradcheck: ${what} must be a positive number, got ${v}`);
  return v;
}

function unravel(index: number, shape: readonly number[]): number[] {
  const at = new Array(shape.length).fill(0);
  for (let d = shape.length - 1; d >= 0; d--) {
    at[d] = index % shape[d];
    index = Math.floor(index / shape[d]);
  }
  return at;
}

/** Up to `max` distinct flat indices below `size`, sorted. */
function pick(size: number, max: number, random: () => number): number[] {
  if (size <= max) return Array.from({ length: size }, (_, i) => i);
  const chosen = new Set<number>();
  while (chosen.size < max) chosen.add(Math.floor(random() * size));
  return [...chosen].sort((a, b) => a - b);
}

/**
 * Compares the gradients backward() gives for every input with `requiresGrad` against central
 * finite differences of fn(...inputs). Inputs that do not require grad are held constant.
 * The inputs' values and `.grad` are the same afterwards.
 *
 *   const x = sn.tensor(values, [2, 3, 8, 8]).requireGrad();
 *   const w = sn.tensor(weights, [4, 3, 3, 3]).requireGrad();
 *   const report = sn.gradcheck((x, w) => myLayer(x, w), [x, w], { maxElements: 32 });
 *   if (!report.ok) console.log(report.worst);
 */
const GRADCHECK_OPTIONS = keysOf<GradcheckOptions>({ eps: true, rtol: true, atol: true, maxElements: true, seed: true, throws: true });

export function gradcheck(fn: (...inputs: any[]) => Tensor, inputs: (Tensor | null)[], opts: GradcheckOptions = {}): GradcheckReport {
  checkOptions("gradcheck", opts, GRADCHECK_OPTIONS);
  const eps = positive("eps", opts.eps ?? 1e-2);
  const rtol = positive("rtol", opts.rtol ?? 1e-2);
  const atol = positive("atol", opts.atol ?? 1e-3);
  const maxElements = opts.maxElements ?? 64;
  if (!Number.isInteger(maxElements) || maxElements < 1) throw new RangeError(`gradcheck: maxElements must be an integer >= 1, got ${maxElements}`);
  const random = rng(opts.seed ?? 1);
  if (!Array.isArray(inputs)) throw new TypeError("gradcheck: inputs must be an array of tensors");
  inputs.forEach((t, i) => {
    if (t !== null && t !== undefined && !(t instanceof Tensor)) throw new TypeError(`gradcheck: input ${i} is not a Tensor (got ${typeof t})`);
  });
  const wrt = inputs.flatMap((t, i) => (t && t.requiresGrad ? [i] : []));
  if (!wrt.length) throw new Error("gradcheck: no input requires grad: call requireGrad() on the inputs to check");

  const call = (): Tensor => {
    const y = fn(...inputs);
    if (!(y instanceof Tensor)) throw new TypeError(`gradcheck: fn must return a Tensor, got ${typeof y}`);
    return y;
  };

  // Analytic: one backward pass with output gradient r. The inputs' own .grad is set aside.
  const saved = inputs.map((t) => t?.grad ?? null);
  let r = new Float32Array(0);
  const analytic: Float32Array[] = [];
  try {
    for (const i of wrt) inputs[i]!.grad = null;
    tidy(() => {
      const y = call();
      r = Float32Array.from({ length: y.size }, () => Math.fround(random() * 2 - 1));
      // into the checked inputs only: other tensors fn uses (a model's parameters) keep their .grad
      y.backward(tensor(r, y.shape, y.engine), { inputs: wrt.map((i) => inputs[i]!) });
      // an input backward did not reach has derivative 0, which the differences must confirm
      for (const i of wrt) analytic.push(inputs[i]!.grad?.toArray() ?? new Float32Array(inputs[i]!.size));
    });
  } finally {
    for (const i of wrt) {
      const t = inputs[i]!;
      if (t.grad && t.grad !== saved[i]) t.grad.dispose();
      t.grad = saved[i];
    }
  }

  /** L at the current inputs, and the resolution of a difference from the base outputs y0:
   *  one ulp of each output that differs from them, times |r_k|. */
  let y0: Float32Array | null = null;
  const loss = () =>
    noGrad(() =>
      tidy(() => {
        const y = call().data;
        if (y.length !== r.length) throw new Error(`gradcheck: fn gave ${r.length} outputs, then ${y.length}: it must give the same shape each time`);
        let l = 0, res = 0;
        for (let k = 0; k < y.length; k++) {
          l += y[k] * r[k];
          if (y0 && y[k] !== y0[k]) res += Math.abs(r[k]) * ulp(y[k]);
        }
        return { l, res, y: y0 ? null : y.slice() };
      }),
    );
  const base = loss();
  const l0 = base.l;
  y0 = base.y;

  /** Central and one-sided differences at element j of x with step eps * max(1, |x_j|). */
  const differences = (x: Tensor, j: number, eps: number) => {
    const v = x.data[j];
    const h = eps * Math.max(1, Math.abs(v));
    // the step actually taken is between the f32 values stored
    const vp = Math.fround(v + h), vm = Math.fround(v - h);
    try {
      x.data[j] = vp;
      const p = loss();
      x.data[j] = vm;
      const m = loss();
      return {
        central: (p.l - m.l) / (vp - vm),
        res: (p.res + m.res) / 2 / (vp - vm),
        kink: Math.abs((p.l - l0) / (vp - v) - (l0 - m.l) / (v - vm)),
      };
    } finally {
      x.data[j] = v;
    }
  };

  let checked = 0, refined = 0;
  let worst: GradcheckWorst | null = null;
  let worstRatio = -1;
  wrt.forEach((i, w) => {
    const x = inputs[i]!;
    const idx = pick(x.size, maxElements, random);
    const d = idx.map((j) => differences(x, j, eps));
    const scaleOf = () => Math.max(0, ...d.map((e) => Math.abs(e.central)).filter(Number.isFinite));
    let scale = scaleOf();
    const tol = (e: { central: number; res: number }) => atol * scale + rtol * Math.abs(e.central) + 2 * e.res;
    // One-sided differences that disagree by more than the tolerance (and their own resolution,
    // twice the central one's): the step straddles a kink (a max-pool window's two largest values
    // closer than h) or the function bends more than the step resolves. Try 10 and 100 times
    // smaller steps there, as long as the resolution, 10 and 100 times coarser, stays inside the
    // tolerance (else outputs that do not move at all would look like perfect agreement), kept
    // while they make the two sides agree better. The comparison stays the same.
    const straddles = (e: { central: number; res: number; kink: number }) => e.kink > tol(e) + 2 * e.res;
    idx.forEach((j, k) => {
      let smaller = false;
      const first = d[k];
      for (let f = 10; f <= 100 && straddles(d[k]) && 2 * f * first.res <= tol(first); f *= 10) {
        const e = differences(x, j, eps / f);
        if (!(e.kink < d[k].kink)) break;
        d[k] = e;
        smaller = true;
      }
      if (smaller) refined++;
    });
    scale = scaleOf();
    idx.forEach((j, k) => {
      const n = d[k].central;
      const a = analytic[w][j];
      const error = Math.abs(a - n);
      const tolerance = tol(d[k]);
      // NaN anywhere fails; exact agreement passes even where the tolerance is 0
      const ratio = error === 0 ? 0 : Number.isNaN(error) ? Infinity : error / tolerance;
      checked++;
      if (ratio > worstRatio) {
        worstRatio = ratio;
        worst = { input: i, index: j, at: unravel(j, x.shape), analytic: a, numeric: n, error, tolerance, resolution: d[k].res };
      }
    });
  });

  const report: GradcheckReport = { ok: worstRatio <= 1, checked, refined, worst };
  if (!report.ok && opts.throws) {
    const b = worst!;
    const x = inputs[b.input]!;
    throw new GradcheckError(
      `gradcheck: input ${b.input}${x.name ? ` (${x.name})` : ""} ${shapeStr(x.shape)} element ${b.index} [${b.at.join(",")}]: ` +
        `analytic ${b.analytic}, numeric ${b.numeric}: |difference| ${b.error.toExponential(3)} > tolerance ${b.tolerance.toExponential(3)} ` +
        `(eps ${eps}, rtol ${rtol}, atol ${atol} of the largest numeric derivative, resolution ${b.resolution.toExponential(3)})`,
      report,
    );
  }
  return report;
}

/**
 * gradcheck for a module of one's own: its gradients for the input (when it requires grad) and
 * for every trainable parameter, against central differences of module.forward(input). Runs in
 * eval mode (dropout would draw new masks on every pass, batch norm would update its running
 * statistics) and puts back the modes and every buffer afterwards.
 *
 *   const report = sn.gradcheckModule(myNet, sn.tensor(values, [2, 3, 8, 8]).requireGrad());
 */
export function gradcheckModule(module: Module, input: Tensor, opts: GradcheckOptions = {}): GradcheckReport {
  if (!(module instanceof Module)) throw new TypeError("gradcheckModule: the first argument must be a Module");
  if (!(input instanceof Tensor)) throw new TypeError("gradcheckModule: the input must be a Tensor");
  checkOptions("gradcheckModule", opts, GRADCHECK_OPTIONS);
  const params = module.parameters().filter((p) => p.requiresGrad);
  const modes = module.modules().map((m) => m.training);
  const saved = module.buffers().map((b) => b.toArray());
  module.eval();
  try {
    return gradcheck((x: Tensor) => module.forward(x), [input, ...params], opts);
  } finally {
    module.modules().forEach((m, i) => (m.training = modes[i]));
    module.buffers().forEach((b, i) => b.data.set(saved[i]));
  }
}
