// Vector math shared by the activation and loss kernels: exp, tanh, sigmoid on f32x4, log in
// f64, and sums in f64. Plain mul and add only (never madd): the same bits on the simd and relaxed
// builds and on every CPU. Scalar tails go through the same vector code (see loadPart/storePart),
// so an element's result never depends on where it sits in the array.
//
// No lookup tables: AssemblyScript's Math.log / Math.exp use tables in static data, and a data
// segment is copied into the shared memory again each time a worker instantiates the module,
// over the worker pool's control block in low memory.

/** exp(x) on four lanes, within 1 ulp of the correctly rounded result for normal outputs
 *  (checked against float64 over [-104, 89] in steps of 5e-5). Cody-Waite reduction
 *  x = k ln2 + r with |r| <= ln2/2, Cephes' expf polynomial for e^r, then 2^k applied in two
 *  halves so that subnormal results round correctly. Overflow gives +Infinity, x < -104 gives 0,
 *  NaN stays NaN. */
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  // clamp with pmin/pmax (one instruction each on x86; NaN in x passes through, as placed here)
  x = f32x4.pmin(f32x4.pmax(x, f32x4.splat(-104.0)), f32x4.splat(88.8));
  // k = nearest(x log2 e) by adding 1.5 * 2^23: the sum's low mantissa bits hold k as an integer
  // (|k| <= 150), cheaper than nearest + trunc_sat and the same rounding (to nearest, ties even)
  const magic = f32x4.splat(12582912.0);
  const t = f32x4.add(f32x4.mul(x, f32x4.splat(1.44269504088896341)), magic);
  const k = f32x4.sub(t, magic);
  let r = f32x4.sub(x, f32x4.mul(k, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(k, f32x4.splat(-2.12194440e-4)));
  const z = f32x4.mul(r, r);
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  const y = f32x4.add(f32x4.add(f32x4.mul(p, z), r), f32x4.splat(1.0));
  // k in [-150, 128]: two factors 2^(k>>1) and 2^(k - (k>>1)) are both normal floats
  const ki = i32x4.sub(t, magic);
  const k1 = i32x4.shr_s(ki, 1);
  const k2 = i32x4.sub(ki, k1);
  const bias = i32x4.splat(127);
  const s1 = i32x4.shl(i32x4.add(k1, bias), 23);
  const s2 = i32x4.shl(i32x4.add(k2, bias), 23);
  return f32x4.mul(f32x4.mul(y, s1), s2);
}

/** exp4 on one value (scalar loops that want the same exp as the vector code). */
// @ts-ignore: decorator
@inline export function expF32(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}

/** tanh(x) on four lanes, within 1.3 ulp of float64 tanh (checked over [-20, 20]).
 *  |x| < 0.625: x + x^3 P(x^2), a degree-4 minimax fit in x^2 (0.75 ulp); above:
 *  1 - 2/(e^{2|x|} + 1), which has no cancellation there and saturates to 1 without overflow
 *  trouble (e^{2|x|} = Infinity gives exactly 1). The sign is copied back from x. */
// @ts-ignore: decorator
@inline export function tanh4(x: v128): v128 {
  const a = f32x4.abs(x);
  const s = f32x4.mul(a, a);
  let p = f32x4.splat(-0.005704986397176981);
  p = f32x4.add(f32x4.mul(p, s), f32x4.splat(0.02063908614218235));
  p = f32x4.add(f32x4.mul(p, s), f32x4.splat(-0.05373971536755562));
  p = f32x4.add(f32x4.mul(p, s), f32x4.splat(0.13331441581249237));
  p = f32x4.add(f32x4.mul(p, s), f32x4.splat(-0.3333328068256378));
  const small = f32x4.add(a, f32x4.mul(a, f32x4.mul(s, p)));
  const one = f32x4.splat(1.0);
  const e = exp4(f32x4.add(a, a));
  const big = f32x4.sub(one, f32x4.div(f32x4.splat(2.0), f32x4.add(e, one)));
  const t = v128.bitselect(small, big, f32x4.lt(a, f32x4.splat(0.625)));
  // copy the sign of x (keeps -0 and NaN as they are)
  const signBit = i32x4.splat(0x80000000);
  return v128.or(v128.andnot(t, signBit), v128.and(x, signBit));
}

/** d tanh / dx = 1 - tanh^2 = 4z / (1 + z)^2 with z = e^{-2|x|}: computed from x, not from the
 *  rounded output, so it keeps its relative accuracy (3e-7) where tanh saturates. */
// @ts-ignore: decorator
@inline export function dtanh4(x: v128): v128 {
  const a = f32x4.abs(x);
  const z = exp4(f32x4.neg(f32x4.add(a, a)));
  const d = f32x4.add(f32x4.splat(1.0), z);
  return f32x4.div(f32x4.mul(f32x4.splat(4.0), z), f32x4.mul(d, d));
}

/** sigmoid(x) = 1/(1+z) for x >= 0, z/(1+z) for x < 0, with z = e^{-|x|}: never overflows and
 *  keeps full relative accuracy in both tails (1.7e-7). */
// @ts-ignore: decorator
@inline export function sigmoid4(x: v128): v128 {
  const z = exp4(f32x4.neg(f32x4.abs(x)));
  const d = f32x4.add(f32x4.splat(1.0), z);
  const pos = f32x4.div(f32x4.splat(1.0), d);
  const neg = f32x4.div(z, d);
  return v128.bitselect(pos, neg, f32x4.ge(x, f32x4.splat(0)));
}

/** sigmoid4 on one value. */
// @ts-ignore: decorator
@inline export function sigmoidF32(x: f32): f32 {
  return f32x4.extract_lane(sigmoid4(f32x4.splat(x)), 0);
}

/** sigmoid'(x) = z / (1+z)^2 with z = e^{-|x|} (from x: accurate where the sigmoid saturates). */
// @ts-ignore: decorator
@inline export function dsigmoid4(x: v128): v128 {
  const z = exp4(f32x4.neg(f32x4.abs(x)));
  const d = f32x4.add(f32x4.splat(1.0), z);
  return f32x4.div(f32x4.div(z, d), d);
}

/** Loads n < 4 floats into the low lanes (the others are `fill`). */
// @ts-ignore: decorator
@inline export function loadPart(p: usize, n: i32, fill: f32): v128 {
  let v = f32x4.splat(fill);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (n > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (n > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}

/** Stores the low n < 4 lanes. */
// @ts-ignore: decorator
@inline export function storePart(p: usize, n: i32, v: v128): void {
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (n > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (n > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

/** Sum of n floats at p, accumulated in f64 (two f64x2 lanes pairs, then combined in a fixed
 *  order): the same bits whatever thread calls it, and accurate for long reductions. */
// @ts-ignore: decorator
@inline export function sumF64(p: usize, n: i32): f64 {
  let a = f64x2.splat(0), b = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(p + (<usize>i << 2));
    a = f64x2.add(a, f64x2.promote_low_f32x4(v));
    b = f64x2.add(b, f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)));
  }
  let s = (f64x2.extract_lane(a, 0) + f64x2.extract_lane(b, 0)) + (f64x2.extract_lane(a, 1) + f64x2.extract_lane(b, 1));
  for (; i < n; i++) s += <f64>load<f32>(p + (<usize>i << 2));
  return s;
}

/** Natural log in f64 without tables: fdlibm's e_log.c (as in musl before its table-driven
 *  version), error < 1 ulp. x = 2^k (1 + f) with 1 + f in [sqrt(2)/2, sqrt(2)), then
 *  log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)), s = f / (2 + f). */
export function logF64(x: f64): f64 {
  let bits = reinterpret<u64>(x);
  let hx = <u32>(bits >> 32);
  let k: i32 = 0;
  if (hx < 0x00100000 || (hx >> 31) != 0) {
    if ((bits << 1) == 0) return -Infinity; // log(+-0)
    if (hx >> 31) return NaN; // log(negative)
    k -= 54; // subnormal: scale up
    x *= 18014398509481984.0; // 2^54
    bits = reinterpret<u64>(x);
    hx = <u32>(bits >> 32);
  } else if (hx >= 0x7ff00000) {
    return x; // +Infinity or NaN
  } else if (hx == 0x3ff00000 && (bits << 32) == 0) {
    return 0;
  }
  hx += 0x3ff00000 - 0x3fe6a09e;
  k += <i32>(hx >> 20) - 0x3ff;
  hx = (hx & 0x000fffff) + 0x3fe6a09e;
  x = reinterpret<f64>((<u64>hx << 32) | (bits & 0xffffffff));
  const f = x - 1.0;
  const hfsq = 0.5 * f * f;
  const s = f / (2.0 + f);
  const z = s * s;
  const w = z * z;
  const t1 = w * (3.999999999940941908e-1 + w * (2.222219843214978396e-1 + w * 1.531383769920937332e-1));
  const t2 = z * (6.666666666666735130e-1 + w * (2.857142874366239149e-1 + w * (1.818357216161805012e-1 + w * 1.479819860511658591e-1)));
  const R = t2 + t1;
  const dk = <f64>k;
  return s * (hfsq + R) + dk * 1.90821492927058770002e-10 - hfsq + f + dk * 6.93147180369123816490e-1;
}

/** log(1 + x) for x >= 0, accurate for small x: log(u) * x / (u - 1) with u = 1 + x rounded
 *  (the rounding error of u cancels; Goldberg, "What every computer scientist should know
 *  about floating-point arithmetic", theorem 4). */
// @ts-ignore: decorator
@inline export function log1pF64(x: f64): f64 {
  const u = 1.0 + x;
  return u == 1.0 ? x : logF64(u) * (x / (u - 1.0));
}
