// Weight initialisers, with torch.nn.init's fan and gain rules so that a layer starts from the
// same distribution as in PyTorch: Glorot & Bengio 2010 (Xavier), He et al. 2015 (Kaiming).
import { Tensor, shapeStr } from "../tensor.js";
import { defaultGenerator, Generator } from "../random.js";
import { checkOptions, badArgument } from "../options.js";

export type Nonlinearity = "linear" | "conv1d" | "conv2d" | "conv_transpose2d" | "sigmoid" | "tanh" | "relu" | "leaky_relu" | "selu";
export type FanMode = "fan_in" | "fan_out";

export interface InitOptions {
  rng?: Generator;
}

/** torch.nn.init.calculate_gain */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case "linear":
    case "conv1d":
    case "conv2d":
    case "conv_transpose2d":
    case "sigmoid":
      return 1;
    case "tanh":
      return 5 / 3;
    case "relu":
      return Math.SQRT2;
    case "leaky_relu": {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case "selu":
      return 3 / 4;
    default:
      throw new Error(`calculateGain: unknown nonlinearity '${nonlinearity}'`);
  }
}

/** PyTorch's rule: dim 1 is the input, dim 0 the output, the rest multiply both (receptive
 *  field). For a ConvTranspose2d weight [Cin, Cout/g, kh, kw] this gives fan_in = Cout/g*kh*kw,
 *  as PyTorch computes it. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (!Array.isArray(shape)) badArgument("fans", "the shape", "an array of sizes", shape);
  if (shape.length < 2) throw new Error(`init: fan in and fan out need at least 2 dimensions, got ${shapeStr(shape)}`);
  let rf = 1;
  for (let i = 2; i < shape.length; i++) rf *= shape[i];
  return { fanIn: shape[1] * rf, fanOut: shape[0] * rf };
}

/** An initialiser's tensor and numbers, checked before anything is drawn: `uniform(t, { a, b })`
 *  (PyTorch's keywords) would otherwise fill t with NaN. */
function checkInit(where: string, t: unknown, numbers: Record<string, unknown> = {}): void {
  if (!(t instanceof Tensor)) badArgument(where, "the tensor", "a Tensor", t);
  for (const [k, v] of Object.entries(numbers)) if (typeof v !== "number" || !Number.isFinite(v)) badArgument(where, k, "a finite number", v);
}

/** opts.rng, or the default generator. */
function rngOf(where: string, opts: InitOptions): Generator {
  const rng = opts.rng ?? defaultGenerator;
  if (!(rng instanceof Generator)) badArgument(where, "rng", "a Generator (new sn.Generator(seed), or leave it out for the default one)", rng);
  return rng;
}

// Each initialiser draws one value per element in order, as a per-element loop of
// rng.uniform / rng.normal would (the Generator's fill methods give the same values, faster),
// straight into the tensor's memory.
function fillUniform(t: Tensor, rng: Generator, lo: number, hi: number): Tensor {
  rng.fillUniform(t.data, lo, hi);
  return t;
}

function fillNormal(t: Tensor, rng: Generator, mean: number, std: number): Tensor {
  rng.fillNormal(t.data, mean, std);
  return t;
}

export function uniform(t: Tensor, lo = 0, hi = 1, opts: InitOptions = {}): Tensor {
  checkOptions("uniform", opts, ["rng"]);
  checkInit("uniform", t, { lo, hi });
  return fillUniform(t, rngOf("uniform", opts), lo, hi);
}

/** Gaussian with a fixed standard deviation (the lecture's "small random numbers", e.g. 0.01). */
export function gaussian(t: Tensor, std = 0.01, opts: InitOptions & { mean?: number } = {}): Tensor {
  checkOptions("gaussian", opts, ["rng", "mean"]);
  const { mean = 0 } = opts;
  checkInit("gaussian", t, { std, mean });
  return fillNormal(t, rngOf("gaussian", opts), mean, std);
}
export const normal = gaussian;

export function constant(t: Tensor, value: number): Tensor {
  checkInit("constant", t);
  if (typeof value !== "number") badArgument("constant", "value", "a number", value); // (infinities are fills too)
  t.data.fill(value);
  return t;
}
export const zeros = (t: Tensor) => constant(t, 0);
export const ones = (t: Tensor) => constant(t, 1);

/** Glorot uniform: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)). */
export function xavierUniform(t: Tensor, opts: InitOptions & { gain?: number } = {}): Tensor {
  checkOptions("xavierUniform", opts, ["gain", "rng"]);
  const { gain = 1 } = opts;
  checkInit("xavierUniform", t, { gain });
  const rng = rngOf("xavierUniform", opts);
  const { fanIn, fanOut } = fans(t.shape);
  const a = gain * Math.sqrt(6 / (fanIn + fanOut));
  return fillUniform(t, rng, -a, a);
}

/** Glorot normal: N(0, std²), std = gain * sqrt(2 / (fan_in + fan_out)). */
export function xavierNormal(t: Tensor, opts: InitOptions & { gain?: number } = {}): Tensor {
  checkOptions("xavierNormal", opts, ["gain", "rng"]);
  const { gain = 1 } = opts;
  checkInit("xavierNormal", t, { gain });
  const rng = rngOf("xavierNormal", opts);
  const { fanIn, fanOut } = fans(t.shape);
  const std = gain * Math.sqrt(2 / (fanIn + fanOut));
  return fillNormal(t, rng, 0, std);
}

export interface KaimingOptions extends InitOptions {
  /** negative slope of the leaky ReLU that follows (PyTorch's `a`) */
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}

const KAIMING_OPTIONS = ["a", "mode", "nonlinearity", "rng"];

function kaimingStd(t: Tensor, { a = 0, mode = "fan_in", nonlinearity = "leaky_relu" }: KaimingOptions): number {
  const { fanIn, fanOut } = fans(t.shape);
  const fan = mode === "fan_in" ? fanIn : fanOut;
  if (mode !== "fan_in" && mode !== "fan_out") throw new Error(`kaiming: mode must be 'fan_in' or 'fan_out', got '${mode}'`);
  if (fan === 0) throw new Error(`kaiming: ${mode} is 0 for ${shapeStr(t.shape)}`);
  return calculateGain(nonlinearity, a) / Math.sqrt(fan);
}

/** He uniform: U(-b, b), b = gain * sqrt(3 / fan). */
export function kaimingUniform(t: Tensor, opts: KaimingOptions = {}): Tensor {
  checkOptions("kaimingUniform", opts, KAIMING_OPTIONS);
  checkInit("kaimingUniform", t, { a: opts.a ?? 0 });
  const b = Math.sqrt(3) * kaimingStd(t, opts);
  return fillUniform(t, rngOf("kaimingUniform", opts), -b, b);
}

/** He normal: N(0, std²), std = gain / sqrt(fan). */
export function kaimingNormal(t: Tensor, opts: KaimingOptions = {}): Tensor {
  checkOptions("kaimingNormal", opts, KAIMING_OPTIONS);
  checkInit("kaimingNormal", t, { a: opts.a ?? 0 });
  const std = kaimingStd(t, opts);
  return fillNormal(t, rngOf("kaimingNormal", opts), 0, std);
}

/** PyTorch's default for Conv*d and Linear (reset_parameters): kaiming_uniform(a=sqrt(5)) on the
 *  weight, which works out to U(±1/sqrt(fan_in)), and the bias from U(±1/sqrt(fan_in)). */
export function defaultLayerInit(weight: Tensor, bias: Tensor | null, rng: Generator = defaultGenerator): void {
  if (!(rng instanceof Generator)) badArgument("defaultLayerInit", "rng", "a Generator", rng);
  if (bias !== null && bias !== undefined && !(bias instanceof Tensor)) badArgument("defaultLayerInit", "the bias", "a Tensor or null", bias);
  kaimingUniform(weight, { a: Math.sqrt(5), rng });
  if (bias) {
    const { fanIn } = fans(weight.shape);
    const b = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform(bias, -b, b, { rng });
  }
}
