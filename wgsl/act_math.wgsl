// Math shared by activation.wgsl and loss.wgsl (prepended to both by their .ts files): exp and
// log written out (the built-ins' accuracy is implementation-defined: WGSL allows exp 3 + 2|x|
// ulp), tanh / sigmoid and their derivatives from the input, stable for any |x| (only exp of
// arguments <= 0 is ever taken), and fixed-shape workgroup reductions. The twins of
// assembly/vmath.ts.

// NaN and -Infinity: WGSL has no such literals, and a constant expression may not produce them,
// so they come from bit patterns held in a variable (a runtime value)
fn nan_() -> f32 { var b = 0x7fc00000u; return bitcast<f32>(b); }
fn neg_inf() -> f32 { var b = 0xff800000u; return bitcast<f32>(b); }
/** NaN tested on the bits: WGSL lets an implementation assume that no value is NaN, so x != x
 *  and comparisons that fail for NaN may be folded away by its compiler; the bits may not. */
fn is_nan_bits(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }

/** exp(x) within ~1 ulp for normal results: x = k ln2 + r (Cody-Waite), Cephes' expf
 *  polynomial for e^r, then 2^k applied in two halves (both normal floats). */
fn exp_(x0: f32) -> f32 {
  let x = clamp(x0, -104.0, 88.8);
  let k = round(x * 1.44269504088896341);
  var r = x - k * 0.693359375;
  r = r - k * -2.12194440e-4;
  let z = r * r;
  var p = 1.9875691500e-4;
  p = p * r + 1.3981999507e-3;
  p = p * r + 8.3334519073e-3;
  p = p * r + 4.1665795894e-2;
  p = p * r + 1.6666665459e-1;
  p = p * r + 5.0000001201e-1;
  let y = p * z + r + 1.0;
  let ki = i32(k);
  let k1 = ki >> 1u;
  let k2 = ki - k1;
  let s1 = bitcast<f32>(u32(k1 + 127) << 23u);
  let s2 = bitcast<f32>(u32(k2 + 127) << 23u);
  return select(y * s1 * s2, x0, is_nan_bits(x0)); // NaN stays NaN
}

/** log(x), ~1 ulp (Cephes' logf): x = 2^e m, m in [sqrt(1/2), sqrt(2)), a polynomial in m - 1.
 *  log(0) = -Infinity, log(negative) = NaN, log(+Infinity) = +Infinity. */
fn log_(x0: f32) -> f32 {
  if (x0 <= 0.0) { return select(nan_(), neg_inf(), x0 == 0.0); }
  if (bitcast<u32>(x0) >= 0x7f800000u) { return x0; } // +Infinity, NaN
  let fr = frexp(x0); // fract in [0.5, 1)
  var e = f32(fr.exp);
  var x = fr.fract;
  if (x < 0.707106781186547524) { e = e - 1.0; x = x + x - 1.0; } else { x = x - 1.0; }
  let z = x * x;
  var y = 7.0376836292e-2;
  y = y * x - 1.1514610310e-1;
  y = y * x + 1.1676998740e-1;
  y = y * x - 1.2420140846e-1;
  y = y * x + 1.4249322787e-1;
  y = y * x - 1.6668057665e-1;
  y = y * x + 2.0000714765e-1;
  y = y * x - 2.4999993993e-1;
  y = y * x + 3.3333331174e-1;
  y = y * x * z;
  y = y + e * -2.12194440e-4;
  y = y - 0.5 * z;
  return x + y + e * 0.693359375;
}

/** log(1 + x) for x >= 0, accurate for small x (Goldberg: the rounding of 1 + x cancels). */
fn log1p_(x: f32) -> f32 {
  let u = 1.0 + x;
  if (u == 1.0) { return x; }
  return log_(u) * (x / (u - 1.0));
}

/** the magnitude of a with the sign bit of b (keeps -0) */
fn copysign_(a: f32, b: f32) -> f32 {
  return bitcast<f32>((bitcast<u32>(a) & 0x7fffffffu) | (bitcast<u32>(b) & 0x80000000u));
}

/** tanh: |x| < 0.625: x + x^3 P(x^2) (assembly/vmath.ts's minimax fit); above:
 *  (1 - z) / (1 + z) with z = e^{-2|x|} <= 0.29 (no overflow, no cancellation). */
fn tanh_(x: f32) -> f32 {
  let a = abs(x);
  let s = a * a;
  var p = -0.005704986397176981;
  p = p * s + 0.02063908614218235;
  p = p * s - 0.05373971536755562;
  p = p * s + 0.13331441581249237;
  p = p * s - 0.3333328068256378;
  let z = exp_(-(a + a));
  let t = select((1.0 - z) / (1.0 + z), a + a * (s * p), a < 0.625);
  return copysign_(t, x);
}

/** 1 - tanh^2 = 4z / (1 + z)^2, z = e^{-2|x|}: from x, accurate where tanh saturates */
fn dtanh_(x: f32) -> f32 {
  let a = abs(x);
  let z = exp_(-(a + a));
  let d = 1.0 + z;
  return (4.0 * z) / (d * d);
}

/** sigmoid = 1 / (1 + z) for x >= 0, z / (1 + z) below, z = e^{-|x|} */
fn sigmoid_(x: f32) -> f32 {
  let z = exp_(-abs(x));
  let d = 1.0 + z;
  return select(z / d, 1.0 / d, x >= 0.0);
}

/** sigmoid' = z / (1 + z)^2, z = e^{-|x|} */
fn dsigmoid_(x: f32) -> f32 {
  let z = exp_(-abs(x));
  let d = 1.0 + z;
  return z / d / d;
}

/** where row r of an [outer, D, inner] view starts (r = o*inner + i; its D values are inner
 *  apart): softmax rows, cross-entropy positions */
fn row_base(r: u32, D: u32, inner: u32) -> u32 {
  let o = r / inner;
  return o * D * inner + (r - o * inner);
}

// ---- workgroup reductions: 256 lanes, a fixed tree (the same bits every run). Call from
// uniform control flow with every invocation of the workgroup. ----

const WG = 256u;
var<workgroup> red: array<f32, 256>;

fn wg_sum(l: u32, v: f32) -> f32 {
  red[l] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (l < s) { red[l] = red[l] + red[l + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn wg_max(l: u32, v: f32) -> f32 {
  red[l] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (l < s) { red[l] = max(red[l], red[l + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

