// Activation kernels (see docs/kernels.md). Forward and backward side by side.
// Element-wise kernels split their range with chunkStart/chunkEnd; the last partial vector goes
// through the same vector code (loadPart/storePart), so every element gets the same bits
// wherever it sits. Softmax kernels take one item per row (or per four columns of the inner
// dimension) and sum in f64 in a fixed order inside the item.
import { rangeStart, rangeEnd, chunkStart, chunkEnd } from "./common";
import { exp4, tanh4, dtanh4, sigmoid4, dsigmoid4, loadPart, storePart, logF64 } from "./vmath";

/** exp4 as a call (the same bits): each inlined copy of exp4 is about 300 bytes of wasm (its
 *  constants) and this file has several sites; measured a few % slower on this file's kernels
 *  alone, nothing on a training step (tanh and sigmoid, 11-14% slower so, keep it inline). */
function expCall(x: v128): v128 {
  return exp4(x);
}

// ---- leaky ReLU: y = x > 0 ? x : x * slope (PyTorch) ----

// @ts-ignore: decorator
@inline function leaky4(x: v128, slope: v128): v128 {
  return v128.bitselect(x, f32x4.mul(x, slope), f32x4.gt(x, f32x4.splat(0)));
}

export function f32_leaky_relu_fwd(x: usize, y: usize, n: i32, slope: f32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  const sl = f32x4.splat(slope);
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, leaky4(v128.load(x + o), sl));
  }
  if (i < e) storePart(y + (<usize>i << 2), e - i, leaky4(loadPart(x + (<usize>i << 2), e - i, 0), sl));
}

/** dx = x > 0 ? dy : dy * slope (PyTorch: the slope side at x == 0) */
export function f32_leaky_relu_bwd(x: usize, dy: usize, dx: usize, n: i32, slope: f32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  const sl = f32x4.splat(slope), z = f32x4.splat(0);
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    const g = v128.load(dy + o);
    v128.store(dx + o, v128.bitselect(g, f32x4.mul(g, sl), f32x4.gt(v128.load(x + o), z)));
  }
  for (; i < e; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(dy + o);
    store<f32>(dx + o, load<f32>(x + o) > 0 ? g : g * slope);
  }
}

// ---- sigmoid and tanh: forward from x, backward from x (not from the rounded output, which
// loses the derivative's relative accuracy where the function saturates) ----

export function f32_sigmoid_fwd(x: usize, y: usize, n: i32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, sigmoid4(v128.load(x + o)));
  }
  if (i < e) storePart(y + (<usize>i << 2), e - i, sigmoid4(loadPart(x + (<usize>i << 2), e - i, 0)));
}

export function f32_sigmoid_bwd(x: usize, dy: usize, dx: usize, n: i32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    v128.store(dx + o, f32x4.mul(v128.load(dy + o), dsigmoid4(v128.load(x + o))));
  }
  if (i < e) {
    const o = <usize>i << 2;
    storePart(dx + o, e - i, f32x4.mul(loadPart(dy + o, e - i, 0), dsigmoid4(loadPart(x + o, e - i, 0))));
  }
}

export function f32_tanh_fwd(x: usize, y: usize, n: i32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, tanh4(v128.load(x + o)));
  }
  if (i < e) storePart(y + (<usize>i << 2), e - i, tanh4(loadPart(x + (<usize>i << 2), e - i, 0)));
}

export function f32_tanh_bwd(x: usize, dy: usize, dx: usize, n: i32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    v128.store(dx + o, f32x4.mul(v128.load(dy + o), dtanh4(v128.load(x + o))));
  }
  if (i < e) {
    const o = <usize>i << 2;
    storePart(dx + o, e - i, f32x4.mul(loadPart(dy + o, e - i, 0), dtanh4(loadPart(x + o, e - i, 0))));
  }
}

// ---- softmax / log_softmax along one dimension ----
// The tensor is seen as [outer, D, inner] with the softmax over D. inner == 1 (the last
// dimension): one item per row, SIMD along the row. inner > 1 (dim 1 of NCHW): one item per
// four columns of the inner dimension, SIMD across them, stepping along D with stride inner.
// Stable: exp(x - max). softmax = e / sum(e); log_softmax = (x - max) - log(sum(e)).

/** f64 sum of the first n lanes of v, in lane order */
// @ts-ignore: decorator
@inline function laneSum(v: v128, n: i32): f64 {
  let s: f64 = <f64>f32x4.extract_lane(v, 0);
  if (n > 1) s += <f64>f32x4.extract_lane(v, 1);
  if (n > 2) s += <f64>f32x4.extract_lane(v, 2);
  if (n > 3) s += <f64>f32x4.extract_lane(v, 3);
  return s;
}

/** max of a row of D floats (NaN if any is NaN) */
// @ts-ignore: decorator
@inline function rowMax(p: usize, D: i32): f32 {
  let mv = f32x4.splat(-Infinity);
  let i = 0;
  for (; i + 4 <= D; i += 4) mv = f32x4.max(mv, v128.load(p + (<usize>i << 2)));
  let m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
  for (; i < D; i++) m = max(m, load<f32>(p + (<usize>i << 2)));
  return m;
}

/** sum of exp(x - m) over a row in f64 (lanes in pairs, then the tail); if e != 0 the
 *  exponentials are also stored there */
// @ts-ignore: decorator
@inline function rowExpSum(p: usize, D: i32, m: f32, e: usize): f64 {
  const mv = f32x4.splat(m);
  let a = f64x2.splat(0), b = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= D; i += 4) {
    const o = <usize>i << 2;
    const v = expCall(f32x4.sub(v128.load(p + o), mv));
    if (e) v128.store(e + o, v);
    a = f64x2.add(a, f64x2.promote_low_f32x4(v));
    b = f64x2.add(b, f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)));
  }
  let s = (f64x2.extract_lane(a, 0) + f64x2.extract_lane(b, 0)) + (f64x2.extract_lane(a, 1) + f64x2.extract_lane(b, 1));
  if (i < D) {
    const o = <usize>i << 2;
    const v = expCall(f32x4.sub(loadPart(p + o, D - i, 0), mv));
    if (e) storePart(e + o, D - i, v);
    s += laneSum(v, D - i);
  }
  return s;
}

/** Forward along the last dimension: rows of D. log != 0: log_softmax. */
export function f32_softmax_fwd(x: usize, y: usize, rows: i32, D: i32, log: i32, ith: i32, nth: i32): void {
  const s = rangeStart(rows, ith, nth), e = rangeEnd(rows, ith, nth);
  for (let r = s; r < e; r++) {
    const xr = x + ((<usize>r * D) << 2), yr = y + ((<usize>r * D) << 2);
    const m = rowMax(xr, D);
    const mv = f32x4.splat(m);
    let i = 0;
    if (log) {
      const ls = f32x4.splat(<f32>logF64(rowExpSum(xr, D, m, 0)));
      for (; i + 4 <= D; i += 4) {
        const o = <usize>i << 2;
        v128.store(yr + o, f32x4.sub(f32x4.sub(v128.load(xr + o), mv), ls));
      }
      if (i < D) storePart(yr + (<usize>i << 2), D - i, f32x4.sub(f32x4.sub(loadPart(xr + (<usize>i << 2), D - i, 0), mv), ls));
    } else {
      const sv = f32x4.splat(<f32>rowExpSum(xr, D, m, yr));
      for (; i + 4 <= D; i += 4) {
        const o = <usize>i << 2;
        v128.store(yr + o, f32x4.div(v128.load(yr + o), sv));
      }
      if (i < D) storePart(yr + (<usize>i << 2), D - i, f32x4.div(loadPart(yr + (<usize>i << 2), D - i, 1), sv));
    }
  }
}

/** Backward along the last dimension, from the forward's output y:
 *  softmax: dx = y * (dy - sum(dy * y)); log_softmax: dx = dy - exp(y) * sum(dy). */
export function f32_softmax_bwd(y: usize, dy: usize, dx: usize, rows: i32, D: i32, log: i32, ith: i32, nth: i32): void {
  const s = rangeStart(rows, ith, nth), e = rangeEnd(rows, ith, nth);
  for (let r = s; r < e; r++) {
    const base = (<usize>r * D) << 2;
    const yr = y + base, gr = dy + base, dr = dx + base;
    // the row's sum (of dy*y, or of dy) in f64, lanes in pairs then the tail
    let a = f64x2.splat(0), b = f64x2.splat(0);
    let i = 0;
    for (; i + 4 <= D; i += 4) {
      const o = <usize>i << 2;
      const v = log ? v128.load(gr + o) : f32x4.mul(v128.load(gr + o), v128.load(yr + o));
      a = f64x2.add(a, f64x2.promote_low_f32x4(v));
      b = f64x2.add(b, f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)));
    }
    let sum = (f64x2.extract_lane(a, 0) + f64x2.extract_lane(b, 0)) + (f64x2.extract_lane(a, 1) + f64x2.extract_lane(b, 1));
    for (; i < D; i++) {
      const o = <usize>i << 2;
      sum += log ? <f64>load<f32>(gr + o) : <f64>(load<f32>(gr + o) * load<f32>(yr + o));
    }
    const sv = f32x4.splat(<f32>sum);
    i = 0;
    for (; i + 4 <= D; i += 4) {
      const o = <usize>i << 2;
      const yv = v128.load(yr + o), g = v128.load(gr + o);
      v128.store(dr + o, log ? f32x4.sub(g, f32x4.mul(expCall(yv), sv)) : f32x4.mul(yv, f32x4.sub(g, sv)));
    }
    if (i < D) {
      const o = <usize>i << 2, n = D - i;
      const yv = loadPart(yr + o, n, 0), g = loadPart(gr + o, n, 0);
      storePart(dr + o, n, log ? f32x4.sub(g, f32x4.mul(expCall(yv), sv)) : f32x4.mul(yv, f32x4.sub(g, sv)));
    }
  }
}

// Inner-dimension variant: an item is (o, four columns c..c+3 of inner); a partial group at the
// end of a row of inner goes through loadPart/storePart.

// @ts-ignore: decorator
@inline function ld(p: usize, n: i32, fill: f32): v128 {
  return n >= 4 ? v128.load(p) : loadPart(p, n, fill);
}

// @ts-ignore: decorator
@inline function st(p: usize, n: i32, v: v128): void {
  if (n >= 4) v128.store(p, v);
  else storePart(p, n, v);
}

/** f32x4 of four f64 sums (low pair a, high pair b), rounded once each */
// @ts-ignore: decorator
@inline function demote4(a: v128, b: v128): v128 {
  let v = f32x4.splat(<f32>f64x2.extract_lane(a, 0));
  v = f32x4.replace_lane(v, 1, <f32>f64x2.extract_lane(a, 1));
  v = f32x4.replace_lane(v, 2, <f32>f64x2.extract_lane(b, 0));
  return f32x4.replace_lane(v, 3, <f32>f64x2.extract_lane(b, 1));
}

export function f32_softmax_fwd_inner(x: usize, y: usize, outer: i32, D: i32, inner: i32, log: i32, ith: i32, nth: i32): void {
  const groups = (inner + 3) >> 2;
  const stride = <usize>inner << 2;
  const s = rangeStart(outer * groups, ith, nth), e = rangeEnd(outer * groups, ith, nth);
  for (let it = s; it < e; it++) {
    const o = it / groups, c = (it - o * groups) << 2, n = min(4, inner - c);
    const off = ((<usize>o * D * inner + c) << 2);
    const xb = x + off, yb = y + off;
    let mv = f32x4.splat(-Infinity);
    for (let d = 0; d < D; d++) mv = f32x4.max(mv, ld(xb + <usize>d * stride, n, 0));
    let a = f64x2.splat(0), b = f64x2.splat(0);
    for (let d = 0; d < D; d++) {
      const v = expCall(f32x4.sub(ld(xb + <usize>d * stride, n, 0), mv));
      if (!log) st(yb + <usize>d * stride, n, v);
      a = f64x2.add(a, f64x2.promote_low_f32x4(v));
      b = f64x2.add(b, f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)));
    }
    if (log) {
      let ls = f32x4.splat(<f32>logF64(f64x2.extract_lane(a, 0)));
      ls = f32x4.replace_lane(ls, 1, <f32>logF64(f64x2.extract_lane(a, 1)));
      ls = f32x4.replace_lane(ls, 2, <f32>logF64(f64x2.extract_lane(b, 0)));
      ls = f32x4.replace_lane(ls, 3, <f32>logF64(f64x2.extract_lane(b, 1)));
      for (let d = 0; d < D; d++) st(yb + <usize>d * stride, n, f32x4.sub(f32x4.sub(ld(xb + <usize>d * stride, n, 0), mv), ls));
    } else {
      const sv = demote4(a, b);
      for (let d = 0; d < D; d++) st(yb + <usize>d * stride, n, f32x4.div(ld(yb + <usize>d * stride, n, 1), sv));
    }
  }
}

export function f32_softmax_bwd_inner(y: usize, dy: usize, dx: usize, outer: i32, D: i32, inner: i32, log: i32, ith: i32, nth: i32): void {
  const groups = (inner + 3) >> 2;
  const stride = <usize>inner << 2;
  const s = rangeStart(outer * groups, ith, nth), e = rangeEnd(outer * groups, ith, nth);
  for (let it = s; it < e; it++) {
    const o = it / groups, c = (it - o * groups) << 2, n = min(4, inner - c);
    const off = ((<usize>o * D * inner + c) << 2);
    const yb = y + off, gb = dy + off, db = dx + off;
    let a = f64x2.splat(0), b = f64x2.splat(0);
    for (let d = 0; d < D; d++) {
      const g = ld(gb + <usize>d * stride, n, 0);
      const v = log ? g : f32x4.mul(g, ld(yb + <usize>d * stride, n, 0));
      a = f64x2.add(a, f64x2.promote_low_f32x4(v));
      b = f64x2.add(b, f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)));
    }
    const sv = demote4(a, b);
    for (let d = 0; d < D; d++) {
      const yv = ld(yb + <usize>d * stride, n, 0), g = ld(gb + <usize>d * stride, n, 0);
      st(db + <usize>d * stride, n, log ? f32x4.sub(g, f32x4.mul(expCall(yv), sv)) : f32x4.mul(yv, f32x4.sub(g, sv)));
    }
  }
}
