// Normalisation kernels: batch norm, local response norm, dropout. Forward and backward side by
// side (see docs/kernels.md).
//
// Batch norm sees its input as [N, C, HW] (HW = 1 for [N, C]). Per-channel reductions are split
// over channels: one thread sums a whole channel, rows in order n = 0..N-1, each row in four
// f32 lanes then folded into an f64 total, so the sums do not depend on the thread count.
// Element-wise passes are split over (n, c) rows, or over n when HW = 1 (then vectorised across
// channels).
import { rangeStart, rangeEnd, chunkStart, chunkEnd } from "./common";

// The gradient's row helper takes two rows (n and n + 1) in one loop: each row's sums are its
// own (four f32 lanes, a tail, folded in f64, as one row alone), but the two rows' add chains
// are independent, so the loop is not held by one add's latency (4 cycles per 4 floats).
// Results go to rs0/rs1 and rd0/rd1: wasm globals are per instance, i.e. per thread. An odd
// last row is passed as both rows.
let rs0: f64 = 0, rs1: f64 = 0, rd0: f64 = 0, rd1: f64 = 0;

/** A row's four lanes and tail, folded in f64. */
// @ts-ignore: decorator
@inline function fold(acc: v128, tail: f32): f64 {
  return <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) + <f64>f32x4.extract_lane(acc, 2) +
    <f64>f32x4.extract_lane(acc, 3) + <f64>tail;
}

/** Sum of n floats from p: four f32 lanes and an f32 tail, folded in f64. */
// @ts-ignore: decorator
@inline function rowSum(p: usize, n: i32): f64 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) acc = f32x4.add(acc, v128.load(p + (<usize>i << 2)));
  let tail: f32 = 0;
  for (; i < n; i++) tail += load<f32>(p + (<usize>i << 2));
  return fold(acc, tail);
}

/** Σ (x - m)² over n floats from p (same lane scheme as rowSum). */
// @ts-ignore: decorator
@inline function rowSumSqDev(p: usize, n: i32, m: f32): f64 {
  const mv = f32x4.splat(m);
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const d = f32x4.sub(v128.load(p + (<usize>i << 2)), mv);
    acc = f32x4.add(acc, f32x4.mul(d, d));
  }
  let tail: f32 = 0;
  for (; i < n; i++) {
    const d = load<f32>(p + (<usize>i << 2)) - m;
    tail += d * d;
  }
  return fold(acc, tail);
}

/** For rows p and q (offsets from x, g, z, gm) of n floats: with z, gm = g where z > 0 else 0
 *  (ReLU's mask), stored where gm != 0; then with h = gm (or g without z) rs = Σ h and
 *  rd = Σ h·(x - m). */
// @ts-ignore: decorator
@inline function rowGradSums2(x: usize, g: usize, z: usize, gm: usize, p: usize, q: usize, n: i32, m: f32): void {
  const mv = f32x4.splat(m), zero = f32x4.splat(0);
  let s0 = zero, s1 = zero, d0 = zero, d1 = zero;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2, op = p + o, oq = q + o;
    let h0 = v128.load(g + op), h1 = v128.load(g + oq);
    if (z) {
      h0 = v128.and(h0, f32x4.gt(v128.load(z + op), zero));
      h1 = v128.and(h1, f32x4.gt(v128.load(z + oq), zero));
      if (gm) {
        v128.store(gm + op, h0);
        v128.store(gm + oq, h1);
      }
    }
    s0 = f32x4.add(s0, h0);
    s1 = f32x4.add(s1, h1);
    d0 = f32x4.add(d0, f32x4.mul(h0, f32x4.sub(v128.load(x + op), mv)));
    d1 = f32x4.add(d1, f32x4.mul(h1, f32x4.sub(v128.load(x + oq), mv)));
  }
  let ts0: f32 = 0, ts1: f32 = 0, td0: f32 = 0, td1: f32 = 0;
  for (; i < n; i++) {
    const o = <usize>i << 2, op = p + o, oq = q + o;
    let h0 = load<f32>(g + op), h1 = load<f32>(g + oq);
    if (z) {
      h0 = load<f32>(z + op) > 0 ? h0 : 0;
      h1 = load<f32>(z + oq) > 0 ? h1 : 0;
      if (gm) {
        store<f32>(gm + op, h0);
        store<f32>(gm + oq, h1);
      }
    }
    ts0 += h0;
    ts1 += h1;
    td0 += h0 * (load<f32>(x + op) - m);
    td1 += h1 * (load<f32>(x + oq) - m);
  }
  rs0 = fold(s0, ts0);
  rs1 = fold(s1, ts1);
  rd0 = fold(d0, td0);
  rd1 = fold(d1, td1);
}

/** eps as the float32 value it is everywhere else: an ONNX attribute (a model's ONNX round trip
 *  reads 1e-5 back as Math.fround(1e-5)), the WebGPU kernels' f32 argument, PyTorch's float
 *  arithmetic for float tensors. Added to the variance in f64 as it came (the double 1e-5), a
 *  model and its round trip differed in a channel's scale now and then by one rounding. */
// @ts-ignore: decorator
@inline function epsOf(eps: f64): f64 {
  return <f64><f32>eps;
}

// @ts-ignore: decorator
@inline function invstdOf(v: f64, eps: f64): f32 {
  return <f32>(1.0 / Math.sqrt(v + epsOf(eps)));
}

/** Training statistics per channel: mean and 1/sqrt(biased var + eps); when rmean != 0 the running
 *  statistics are updated in place as PyTorch does (unbiased variance, in f64). */
export function f32_batchnorm_stats(
  x: usize, N: i32, C: i32, HW: i32, eps: f64, momentum: f64, mean: usize, invstd: usize, rmean: usize, rvar: usize,
  ith: i32, nth: i32,
): void {
  const s = rangeStart(C, ith, nth), e = rangeEnd(C, ith, nth);
  const M = <f64>N * <f64>HW;
  const rowStride = <usize>C * <usize>HW << 2;
  for (let c = s; c < e; c++) {
    const base = x + (<usize>c * <usize>HW << 2);
    let sum: f64 = 0;
    for (let n = 0; n < N; n++) sum += rowSum(base + <usize>n * rowStride, HW);
    const mu = sum / M;
    const m32 = <f32>mu;
    let ss: f64 = 0;
    for (let n = 0; n < N; n++) ss += rowSumSqDev(base + <usize>n * rowStride, HW, m32);
    // deviations were taken from the rounded mean: shift back to the exact one
    const shift = mu - <f64>m32;
    let sq = ss - M * shift * shift;
    if (sq < 0) sq = 0;
    const o = <usize>c << 2;
    store<f32>(mean + o, m32);
    store<f32>(invstd + o, invstdOf(sq / M, eps));
    if (rmean) store<f32>(rmean + o, <f32>(momentum * mu + (1 - momentum) * <f64>load<f32>(rmean + o)));
    if (rvar) store<f32>(rvar + o, <f32>(momentum * (sq / (M - 1)) + (1 - momentum) * <f64>load<f32>(rvar + o)));
  }
}

/** Inference statistics: invstd = 1/sqrt(running var + eps). */
export function f32_batchnorm_invstd(rvar: usize, C: i32, eps: f64, invstd: usize, ith: i32, nth: i32): void {
  const s = rangeStart(C, ith, nth), e = rangeEnd(C, ith, nth);
  for (let c = s; c < e; c++) store<f32>(invstd + (<usize>c << 2), invstdOf(<f64>load<f32>(rvar + (<usize>c << 2)), eps));
}

/** Inference (eval mode) as one scale and one shift per channel: s = w / sqrt(running var + eps),
 *  t = b - running mean · s, both in f64 and rounded once to f32 (w, b = 0: no affine), as
 *  PyTorch's CPU kernel folds them. conv2d_fused (src/ops/fused.ts) uses the same s and t. */
export function f32_batchnorm_eval_params(rmean: usize, rvar: usize, w: usize, b: usize, C: i32, eps: f64, scale: usize, shift: usize,
  ith: i32, nth: i32): void {
  const s = rangeStart(C, ith, nth), e = rangeEnd(C, ith, nth);
  for (let c = s; c < e; c++) {
    const o = <usize>c << 2;
    const sc = (w ? <f64>load<f32>(w + o) : 1.0) / Math.sqrt(<f64>load<f32>(rvar + o) + epsOf(eps));
    store<f32>(scale + o, <f32>sc);
    store<f32>(shift + o, <f32>((b ? <f64>load<f32>(b + o) : 0.0) - <f64>load<f32>(rmean + o) * sc));
  }
}

/** Per-channel parameter gradients: db = Σ g, dw = invstd · Σ g·(x - mean). With z (ReLU after
 *  batch norm, batch_norm_fused): ReLU's backward first, gm = g where z > 0 (z: the fused output,
 *  > 0 exactly where ReLU's argument is), written row by row into gm and summed from L1 in its
 *  place (so the sums are those of f32_relu_bwd's output). z = 0: g as it is (gm unused). */
export function f32_batchnorm_bwd_params(
  x: usize, g: usize, z: usize, gm: usize, mean: usize, invstd: usize, N: i32, C: i32, HW: i32, dw: usize, db: usize,
  ith: i32, nth: i32,
): void {
  const s = rangeStart(C, ith, nth), e = rangeEnd(C, ith, nth);
  const rowStride = <usize>C * <usize>HW << 2;
  for (let c = s; c < e; c++) channelGradSums(x, g, z, gm, c, N, HW, rowStride, mean, invstd, dw, db);
}

/** Channel c's db and dw (f32_batchnorm_bwd_params' and f32_batchnorm_bwd's). */
// @ts-ignore: decorator
@inline function channelGradSums(x: usize, g: usize, z: usize, gm: usize, c: i32, N: i32, HW: i32, rowStride: usize, mean: usize,
  invstd: usize, dw: usize, db: usize): void {
  const off = <usize>c * <usize>HW << 2;
  const o = <usize>c << 2;
  const m = load<f32>(mean + o);
  let sg: f64 = 0, sgx: f64 = 0;
  for (let n = 0; n < N; n += 2) {
    const p = off + <usize>n * rowStride;
    rowGradSums2(x, g, z, gm, p, n + 1 < N ? p + rowStride : p, HW, m);
    sg += rs0;
    sgx += rd0;
    if (n + 1 < N) {
      sg += rs1;
      sgx += rd1;
    }
  }
  store<f32>(db + o, <f32>sg);
  store<f32>(dw + o, <f32>(sgx * <f64>load<f32>(invstd + o)));
}

/** Input gradient. Training (batch statistics):
 *    dx = (g - db/M - (x - mean)·invstd·dw/M) · invstd·w
 *  (the mean and variance depend on x); inference: dx = g · invstd·w. */
export function f32_batchnorm_bwd_input(
  x: usize, g: usize, mean: usize, invstd: usize, w: usize, dw: usize, db: usize, N: i32, C: i32, HW: i32, training: i32,
  dx: usize, ith: i32, nth: i32,
): void {
  const M = <f32>(<f64>N * <f64>HW);
  if (HW == 1) {
    const s = rangeStart(N, ith, nth), e = rangeEnd(N, ith, nth);
    const one = f32x4.splat(1), zero = f32x4.splat(0), Mv = f32x4.splat(M);
    for (let n = s; n < e; n++) {
      const ro = <usize>n * <usize>C << 2;
      let c = 0;
      for (; c + 4 <= C; c += 4) {
        const o = <usize>c << 2;
        const is = v128.load(invstd + o);
        const a = f32x4.mul(is, w ? v128.load(w + o) : one);
        // in inference the statistics are constants: the two correction terms vanish (and dw, db
        // are not computed)
        const gm = training ? f32x4.div(v128.load(db + o), Mv) : zero;
        const k = training ? f32x4.div(f32x4.mul(is, v128.load(dw + o)), Mv) : zero;
        const d = f32x4.sub(v128.load(x + ro + o), v128.load(mean + o));
        const gg = f32x4.sub(f32x4.sub(v128.load(g + ro + o), gm), f32x4.mul(d, k));
        v128.store(dx + ro + o, f32x4.mul(gg, a));
      }
      for (; c < C; c++) {
        const o = <usize>c << 2;
        const is = load<f32>(invstd + o);
        const a = is * (w ? load<f32>(w + o) : 1);
        const gm: f32 = training ? load<f32>(db + o) / M : 0;
        const k: f32 = training ? is * load<f32>(dw + o) / M : 0;
        const d = load<f32>(x + ro + o) - load<f32>(mean + o);
        store<f32>(dx + ro + o, (load<f32>(g + ro + o) - gm - d * k) * a);
      }
    }
    return;
  }
  const s = rangeStart(N * C, ith, nth), e = rangeEnd(N * C, ith, nth);
  for (let r = s; r < e; r++) inputGradRows(x, g, 0, mean, invstd, w, dw, db, training, M, r % C, <usize>r * <usize>HW << 2, 1, 0, HW, dx);
}

/** dx of channel c's rows at byte offsets ro0, ro0 + rowStride, ... (rows of them), by the
 *  formula above; with z, g where z > 0 else 0 in place of g (ReLU's mask, rowGradSums2's
 *  select). f32_batchnorm_bwd_input's and f32_batchnorm_bwd's. */
// @ts-ignore: decorator
@inline function inputGradRows(x: usize, g: usize, z: usize, mean: usize, invstd: usize, w: usize, dw: usize, db: usize, training: i32,
  M: f32, c: i32, ro0: usize, rows: i32, rowStride: usize, HW: i32, dx: usize): void {
  const o = <usize>c << 2, zero = f32x4.splat(0);
  const is = load<f32>(invstd + o);
  const a = is * (w ? load<f32>(w + o) : 1);
  const gm: f32 = training ? load<f32>(db + o) / M : 0;
  const k: f32 = training ? is * load<f32>(dw + o) / M : 0;
  const m = load<f32>(mean + o);
  const av = f32x4.splat(a), gmv = f32x4.splat(gm), kv = f32x4.splat(k), mv = f32x4.splat(m);
  for (let n = 0; n < rows; n++) {
    const ro = ro0 + <usize>n * rowStride;
    let i = 0;
    for (; i + 4 <= HW; i += 4) {
      const q = ro + (<usize>i << 2);
      let h = v128.load(g + q);
      if (z) h = v128.and(h, f32x4.gt(v128.load(z + q), zero));
      const d = f32x4.sub(v128.load(x + q), mv);
      v128.store(dx + q, f32x4.mul(f32x4.sub(f32x4.sub(h, gmv), f32x4.mul(d, kv)), av));
    }
    for (; i < HW; i++) {
      const q = ro + (<usize>i << 2);
      let h = load<f32>(g + q);
      if (z) h = load<f32>(z + q) > 0 ? h : 0;
      store<f32>(dx + q, (h - gm - (load<f32>(x + q) - m) * k) * a);
    }
  }
}

/** Training backward of a channel at a time, for HW > 1: f32_batchnorm_bwd_params' sums over
 *  the channel's rows, then f32_batchnorm_bwd_input's dx for the same rows while they are in
 *  L2 (the two kernels in a row read x and the masked gradient back from memory and wrote that
 *  gradient only to read it). With z, ReLU's mask is applied again in the second pass (the same
 *  select, the same values); gm (or 0) receives the masked gradient where the caller needs it
 *  (a residual's gradient). dw and db are stored as f32 and used as stored: the same operations
 *  on the same values as the two kernels, so the same bits. Split over channels. */
export function f32_batchnorm_bwd(
  x: usize, g: usize, z: usize, gm: usize, mean: usize, invstd: usize, w: usize, N: i32, C: i32, HW: i32, dw: usize, db: usize,
  dx: usize, ith: i32, nth: i32,
): void {
  const s = rangeStart(C, ith, nth), e = rangeEnd(C, ith, nth);
  const rowStride = <usize>C * <usize>HW << 2;
  const M = <f32>(<f64>N * <f64>HW);
  for (let c = s; c < e; c++) {
    channelGradSums(x, g, z, gm, c, N, HW, rowStride, mean, invstd, dw, db);
    inputGradRows(x, g, z, mean, invstd, w, dw, db, 1, M, c, <usize>c * <usize>HW << 2, N, rowStride, HW, dx);
  }
}

// ---- batch norm + residual + ReLU (batch_norm_fused, src/ops/norm.ts) ----

/** Batch norm's forward, then + r, then ReLU: y = relu?((x - mean)·(invstd·w) + b + r) per
 *  channel, f32_add's add and f32_relu_fwd's max after batch norm's multiply and add, so the
 *  bits are those of the three ops one by one (batch_norm_fused; batch_norm is r = 0, relu = 0).
 *  Training: mean and invstd are the batch's. Eval mode: mean = 0, invstd = the eval scale s,
 *  w = 0, b = the shift t (f32_batchnorm_eval_params): x - 0 is x, so y = x·s + t, a multiply
 *  then an add, never a fused multiply-add, as conv2d_fused's epilogue (conv_epilogue.ts).
 *  Split over (n, c) rows (of one value each for [N, C]). */
export function f32_batchnorm_fwd(
  x: usize, y: usize, mean: usize, invstd: usize, w: usize, b: usize, r: usize, relu: i32, N: i32, C: i32, HW: i32,
  ith: i32, nth: i32,
): void {
  const zero = f32x4.splat(0);
  const s = rangeStart(N * C, ith, nth), e = rangeEnd(N * C, ith, nth);
  for (let row = s; row < e; row++) {
    const o = <usize>(row % C) << 2;
    const m: f32 = mean ? load<f32>(mean + o) : 0;
    const a = load<f32>(invstd + o) * (w ? load<f32>(w + o) : 1);
    const bb: f32 = b ? load<f32>(b + o) : 0;
    const mv = f32x4.splat(m), av = f32x4.splat(a), bv = f32x4.splat(bb);
    const ro = <usize>row * <usize>HW << 2;
    let i = 0;
    for (; i + 4 <= HW; i += 4) {
      const q = ro + (<usize>i << 2);
      let v = f32x4.add(f32x4.mul(f32x4.sub(v128.load(x + q), mv), av), bv);
      if (r) v = f32x4.add(v, v128.load(r + q));
      v128.store(y + q, relu ? f32x4.max(v, zero) : v);
    }
    for (; i < HW; i++) {
      const q = ro + (<usize>i << 2);
      let v = (load<f32>(x + q) - m) * a + bb;
      if (r) v = v + load<f32>(r + q);
      store<f32>(y + q, relu ? max<f32>(v, 0) : v);
    }
  }
}

// ---- local response norm (PyTorch's F.local_response_norm) ----
// s_c = k + alpha/size · Σ_{j = c - size/2 .. c + (size-1)/2} x_j²  (out-of-range channels are 0),
// y_c = x_c · s_c^-beta. Split over (n, c) planes; the window sum runs j upwards.

// No Math.pow/log/exp here: AssemblyScript's versions read lookup tables from data segments, and
// data segments are re-copied into the shared memory by every worker's instantiation (over the
// pool's control block). Table-free f64 versions instead, accurate far below f32 rounding.

/** ln(x) for finite x > 0: x = 2^e·m, m in [√½, √2), ln m = 2·atanh((m-1)/(m+1)) by its series. */
function lnPos(x: f64): f64 {
  let bits = reinterpret<u64>(x);
  let e = <i32>((bits >> 52) & 0x7ff);
  if (e == 0) {
    // subnormal: scale into the normal range first
    bits = reinterpret<u64>(x * 18014398509481984.0); // 2^54
    e = <i32>((bits >> 52) & 0x7ff) - 54;
  }
  e -= 1023;
  let m = reinterpret<f64>((bits & 0x000fffffffffffff) | 0x3ff0000000000000);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e++;
  }
  const f = (m - 1) / (m + 1), f2 = f * f;
  // |f| <= 0.172: terms to f^19 leave an error below 1e-17
  let p = 1.0 / 19;
  for (let k = 17; k >= 1; k -= 2) p = p * f2 + 1.0 / <f64>k;
  return <f64>e * 0.6931471805599453 + 2 * f * p;
}

/** e^y: y = k·ln2 + r, |r| <= ln2/2, e^r by its Taylor series, 2^k by the exponent bits. */
function expF64(y: f64): f64 {
  if (y > 709.7) return Infinity;
  if (y < -745.2) return 0;
  const k = Math.round(y * 1.4426950408889634);
  const r = (y - k * 0.6931471805599453) - k * 2.3190468138462996e-17;
  let p: f64 = 1;
  for (let i = 16; i >= 1; i--) p = 1 + p * r / <f64>i;
  // 2^k in two factors so that k down to -1074 stays representable
  const k1 = <i64>k >> 1, k2 = <i64>k - k1;
  return p * reinterpret<f64>(<u64>(k1 + 1023) << 52) * reinterpret<f64>(<u64>(k2 + 1023) << 52);
}

/** s^-beta as PyTorch's pow: s > 0 through ln and exp; s = 0 and s < 0 as IEEE pow does. */
function powNegGeneral(s: f64, beta: f64): f64 {
  if (beta == 0) return 1;
  if (s > 0) return s == Infinity ? (beta > 0 ? 0 : Infinity) : expF64(-beta * lnPos(s));
  if (s == 0) return beta > 0 ? Infinity : 0;
  if (s != s || Math.floor(beta) != beta) return NaN;
  // negative base, integer exponent: the sign follows the exponent's parity
  const odd = Math.abs(beta) < 9007199254740992 && (<i64>beta & 1) != 0;
  const v = powNegGeneral(-s, beta);
  return odd ? -v : v;
}

/** s^-beta in f32; beta = 0.75 (the usual value) by square roots, as the vector path does. */
// @ts-ignore: decorator
@inline function powNeg(s: f32, beta: f32): f32 {
  if (beta == 0.75) {
    const r = Mathf.sqrt(s);
    return 1 / (r * Mathf.sqrt(r));
  }
  return <f32>powNegGeneral(<f64>s, <f64>beta);
}

// @ts-ignore: decorator
@inline function powNeg075(s: v128): v128 {
  const r = f32x4.sqrt(s);
  return f32x4.div(f32x4.splat(1), f32x4.mul(r, f32x4.sqrt(r)));
}

/** y = x·s^-beta; s is stored at `scale` for backward unless scale = 0 (inference). */
export function f32_lrn_fwd(
  x: usize, y: usize, scale: usize, N: i32, C: i32, HW: i32, size: i32, alphaOverSize: f32, beta: f32, k: f32,
  ith: i32, nth: i32,
): void {
  const s = rangeStart(N * C, ith, nth), e = rangeEnd(N * C, ith, nth);
  const plane = <usize>HW << 2;
  const av = f32x4.splat(alphaOverSize), kv = f32x4.splat(k);
  const fast = beta == 0.75;
  for (let r = s; r < e; r++) {
    const n = r / C, c = r % C;
    const lo = max(0, c - size / 2), hi = min(C - 1, c + (size - 1) / 2);
    const nb = x + <usize>n * <usize>C * plane;
    const po = <usize>r * plane;
    let i = 0;
    if (fast) {
      for (; i + 4 <= HW; i += 4) {
        const q = <usize>i << 2;
        let acc = f32x4.splat(0);
        for (let j = lo; j <= hi; j++) {
          const v = v128.load(nb + <usize>j * plane + q);
          acc = f32x4.add(acc, f32x4.mul(v, v));
        }
        const sv = f32x4.add(kv, f32x4.mul(av, acc));
        if (scale) v128.store(scale + po + q, sv);
        v128.store(y + po + q, f32x4.mul(v128.load(x + po + q), powNeg075(sv)));
      }
    }
    for (; i < HW; i++) {
      const q = <usize>i << 2;
      let acc: f32 = 0;
      for (let j = lo; j <= hi; j++) {
        const v = load<f32>(nb + <usize>j * plane + q);
        acc += v * v;
      }
      const sv = k + alphaOverSize * acc;
      if (scale) store<f32>(scale + po + q, sv);
      store<f32>(y + po + q, load<f32>(x + po + q) * powNeg(sv, beta));
    }
  }
}

/** dx_i = g_i·s_i^-beta - 2·beta·alpha/size · x_i · Σ_{c: i in window(c)} g_c·y_c/s_c,
 *  window(c) ∋ i  ⇔  c in [i - (size-1)/2, i + size/2]. */
export function f32_lrn_bwd(
  x: usize, y: usize, scale: usize, g: usize, dx: usize, N: i32, C: i32, HW: i32, size: i32, alphaOverSize: f32,
  beta: f32, ith: i32, nth: i32,
): void {
  const s = rangeStart(N * C, ith, nth), e = rangeEnd(N * C, ith, nth);
  const plane = <usize>HW << 2;
  const coef: f32 = 2 * beta * alphaOverSize;
  const cv = f32x4.splat(coef);
  const fast = beta == 0.75;
  for (let r = s; r < e; r++) {
    const n = r / C, i = r % C;
    const lo = max(0, i - (size - 1) / 2), hi = min(C - 1, i + size / 2);
    const nb = <usize>n * <usize>C * plane;
    const po = <usize>r * plane;
    let p = 0;
    if (fast) {
      for (; p + 4 <= HW; p += 4) {
        const q = <usize>p << 2;
        let acc = f32x4.splat(0);
        for (let c = lo; c <= hi; c++) {
          const o = nb + <usize>c * plane + q;
          acc = f32x4.add(acc, f32x4.div(f32x4.mul(v128.load(g + o), v128.load(y + o)), v128.load(scale + o)));
        }
        const own = f32x4.mul(v128.load(g + po + q), powNeg075(v128.load(scale + po + q)));
        v128.store(dx + po + q, f32x4.sub(own, f32x4.mul(f32x4.mul(cv, v128.load(x + po + q)), acc)));
      }
    }
    for (; p < HW; p++) {
      const q = <usize>p << 2;
      let acc: f32 = 0;
      for (let c = lo; c <= hi; c++) {
        const o = nb + <usize>c * plane + q;
        acc += load<f32>(g + o) * load<f32>(y + o) / load<f32>(scale + o);
      }
      const own = load<f32>(g + po + q) * powNeg(load<f32>(scale + po + q), beta);
      store<f32>(dx + po + q, own - coef * load<f32>(x + po + q) * acc);
    }
  }
}

// ---- dropout ----
// The keep mask is a hash of (seed, element index), so it is the same on any thread count and is
// recomputed for backward instead of stored. Hash: Wellons' "lowbias32" integer mixer, applied
// twice with seed-derived keys (so different seeds are not shifts of one sequence).

// @ts-ignore: decorator
@inline function mix32(h: u32): u32 {
  h ^= h >> 16;
  h *= 0x7feb352d;
  h ^= h >> 15;
  h *= 0x846ca68b;
  h ^= h >> 16;
  return h;
}

// @ts-ignore: decorator
@inline function mix32x4(h: v128): v128 {
  h = v128.xor(h, i32x4.shr_u(h, 16));
  h = i32x4.mul(h, i32x4.splat(0x7feb352d));
  h = v128.xor(h, i32x4.shr_u(h, 15));
  h = i32x4.mul(h, i32x4.splat(<i32>0x846ca68b));
  h = v128.xor(h, i32x4.shr_u(h, 16));
  return h;
}

/** y = x · (keep ? scale : 0), keep = (top 24 bits of the hash)/2^24 >= p: as PyTorch, the input
 *  times a mask of 0 and 1/(1-p), so a dropped NaN or infinity gives NaN and a dropped -x gives -0. */
export function f32_dropout_fwd(x: usize, y: usize, n: i32, seed: u32, p: f32, scale: f32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  const k1 = mix32(seed), k2 = mix32(seed ^ 0x9e3779b9);
  const inv24: f32 = 1.0 / 16777216.0;
  const k1v = i32x4.splat(<i32>k1), k2v = i32x4.splat(<i32>k2), pv = f32x4.splat(p), sv = f32x4.splat(scale), iv = f32x4.splat(inv24);
  const zero = f32x4.splat(0);
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const idx = i32x4.add(i32x4.splat(i), i32x4(0, 1, 2, 3));
    const h = mix32x4(v128.xor(mix32x4(i32x4.add(idx, k1v)), k2v));
    const u = f32x4.mul(f32x4.convert_i32x4_u(i32x4.shr_u(h, 8)), iv);
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.mul(v128.load(x + o), v128.bitselect(sv, zero, f32x4.ge(u, pv))));
  }
  for (; i < e; i++) {
    const h = mix32(mix32(<u32>i + k1) ^ k2);
    const u = <f32>(h >> 8) * inv24;
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(x + o) * (u >= p ? scale : <f32>0));
  }
}

/** dx = g · keep · scale: the forward mask, recomputed from the same seed. */
export function f32_dropout_bwd(g: usize, dx: usize, n: i32, seed: u32, p: f32, scale: f32, ith: i32, nth: i32): void {
  f32_dropout_fwd(g, dx, n, seed, p, scale, ith, nth);
}
