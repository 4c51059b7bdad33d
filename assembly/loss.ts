// Loss kernels (see docs/kernels.md). Forward and backward side by side.
//
// Every forward writes the unreduced loss (one value per element, or per row for the
// classification losses); the op reduces it with f32_sum_chunks/f32_sum_finish (assembly/shape.ts),
// a fixed-order f64 sum. Every backward takes the output gradient as a pointer and a stride
// (gs = 0: one scalar for the "mean"/"sum" reductions; gs = 1: per element for "none") and a
// scale (1/N for "mean", else 1).
import { rangeStart, rangeEnd, chunkStart, chunkEnd } from "./common";
import { exp4, expF32, sigmoidF32, loadPart, storePart, logF64, log1pF64 } from "./vmath";

/** exp4 as a call (the same bits): each inlined copy of exp4 is about 300 bytes of wasm (its
 *  constants) and this file has several sites; measured a few % slower on this file's kernels
 *  alone, nothing on a training step (tanh and sigmoid, 11-14% slower so, keep it inline). */
function expCall(x: v128): v128 {
  return exp4(x);
}

/** Max of a row of C floats. */
// @ts-ignore: decorator
@inline function rowMax(p: usize, C: i32): f32 {
  let m: f32 = -Infinity;
  for (let j = 0; j < C; j++) m = max(m, load<f32>(p + (<usize>j << 2)));
  return m;
}

/** sum(exp(row - m)) in f64, in a fixed order (vectors of four, then the tail). */
// @ts-ignore: decorator
@inline function expSum(p: usize, C: i32, m: f32): f64 {
  const mv = f32x4.splat(m);
  let s: f64 = 0;
  let j = 0;
  for (; j + 4 <= C; j += 4) {
    const v = expCall(f32x4.sub(v128.load(p + (<usize>j << 2)), mv));
    s += (<f64>f32x4.extract_lane(v, 0) + <f64>f32x4.extract_lane(v, 1)) + (<f64>f32x4.extract_lane(v, 2) + <f64>f32x4.extract_lane(v, 3));
  }
  if (j < C) {
    const n = C - j;
    const v = expCall(f32x4.sub(loadPart(p + (<usize>j << 2), n, 0), mv));
    s += <f64>f32x4.extract_lane(v, 0);
    if (n > 1) s += <f64>f32x4.extract_lane(v, 1);
    if (n > 2) s += <f64>f32x4.extract_lane(v, 2);
  }
  return s;
}

// ---- cross entropy over logits [N, C] and class indices t [N] (checked by the op) ----

/** loss[n] = logsumexp(x[n]) - x[n, t[n]] (0 where t[n] == ignore). Items: rows. */
export function f32_cross_entropy_fwd(x: usize, t: usize, loss: usize, N: i32, C: i32, ignore: i32, ith: i32, nth: i32): void {
  const s = rangeStart(N, ith, nth), e = rangeEnd(N, ith, nth);
  for (let n = s; n < e; n++) {
    const xr = x + ((<usize>n * C) << 2);
    const k = <i32>load<f32>(t + (<usize>n << 2));
    if (k == ignore) {
      store<f32>(loss + (<usize>n << 2), 0);
      continue;
    }
    const m = rowMax(xr, C);
    const lse = <f64>m + logF64(expSum(xr, C, m));
    store<f32>(loss + (<usize>n << 2), <f32>(lse - <f64>load<f32>(xr + (<usize>k << 2))));
  }
}

/** dx[n, j] = (softmax(x[n])_j - [j == t[n]]) * g[n*gs] * scale, softmax = exp(x - max) / sum
 *  (not exp(x - logsumexp): rounding logsumexp to f32 would cost up to 2e-6 relative at |x| ~ 50);
 *  0 where t[n] == ignore. Items: rows. */
export function f32_cross_entropy_bwd(x: usize, t: usize, g: usize, gs: i32, scale: f32, dx: usize, N: i32, C: i32, ignore: i32, ith: i32, nth: i32): void {
  const s = rangeStart(N, ith, nth), e = rangeEnd(N, ith, nth);
  for (let n = s; n < e; n++) {
    const xr = x + ((<usize>n * C) << 2), dr = dx + ((<usize>n * C) << 2);
    const k = <i32>load<f32>(t + (<usize>n << 2));
    const m = rowMax(xr, C);
    const sum = <f32>expSum(xr, C, m);
    const gn = k == ignore ? <f32>0 : load<f32>(g + (<usize>(n * gs) << 2)) * scale;
    const lv = f32x4.splat(m), sv = f32x4.splat(sum), gv = f32x4.splat(gn);
    let j = 0;
    for (; j + 4 <= C; j += 4) {
      const o = <usize>j << 2;
      v128.store(dr + o, f32x4.mul(f32x4.div(expCall(f32x4.sub(v128.load(xr + o), lv)), sv), gv));
    }
    if (j < C) {
      const o = <usize>j << 2;
      storePart(dr + o, C - j, f32x4.mul(f32x4.div(expCall(f32x4.sub(loadPart(xr + o, C - j, 0), lv)), sv), gv));
    }
    if (k == ignore) continue;
    const q = dr + (<usize>k << 2);
    store<f32>(q, load<f32>(q) - gn);
  }
}

// ---- cross entropy over score maps x [N, C, P] and class maps t [N, P] (segmentation) ----
// The classes of a position are P floats apart; four neighbouring positions go through the
// lanes of one vector, class by class. Items: groups of four positions of one image (a function
// of the shapes: the same bits on any thread count).

/** Lanes of positions p .. p+n-1 (n <= 4; lanes past n are 0 and their results unused). */
// @ts-ignore: decorator
@inline function load4(p: usize, n: i32): v128 {
  return n == 4 ? v128.load(p) : loadPart(p, n, 0);
}

// @ts-ignore: decorator
@inline function laneF32(v: v128, i: i32): f32 {
  return i == 0 ? f32x4.extract_lane(v, 0) : i == 1 ? f32x4.extract_lane(v, 1) : i == 2 ? f32x4.extract_lane(v, 2) : f32x4.extract_lane(v, 3);
}
// @ts-ignore: decorator
@inline function laneF64(v: v128, i: i32): f64 {
  return i == 0 ? f64x2.extract_lane(v, 0) : f64x2.extract_lane(v, 1);
}

/** Per lane of four positions at xp (class stride P floats): the max over the C classes. */
// @ts-ignore: decorator
@inline function mapMax(xp: usize, P: i32, C: i32, n: i32): v128 {
  let m = f32x4.splat(-Infinity);
  for (let c = 0; c < C; c++) m = f32x4.max(m, load4(xp + (<usize>c * P << 2), n));
  return m;
}

/** loss[n, p] = logsumexp_c(x[n, c, p]) - x[n, t[n, p], p] (0 where t == ignore). */
export function f32_cross_entropy_map_fwd(x: usize, t: usize, loss: usize, N: i32, C: i32, P: i32, ignore: i32, ith: i32, nth: i32): void {
  const Q = (P + 3) >> 2;
  const s = rangeStart(N * Q, ith, nth), e = rangeEnd(N * Q, ith, nth);
  for (let it = s; it < e; it++) {
    const n = it / Q, p0 = (it - n * Q) << 2, np = min(4, P - p0);
    const xp = x + ((<usize>n * C * P + p0) << 2);
    const m = mapMax(xp, P, C, np);
    let lo = f64x2.splat(0), hi = f64x2.splat(0);
    for (let c = 0; c < C; c++) {
      const v = expCall(f32x4.sub(load4(xp + (<usize>c * P << 2), np), m));
      lo = f64x2.add(lo, f64x2.promote_low_f32x4(v));
      hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1)));
    }
    const tp = t + ((<usize>n * P + p0) << 2), lp = loss + ((<usize>n * P + p0) << 2);
    for (let i = 0; i < np; i++) {
      const k = <i32>load<f32>(tp + (<usize>i << 2));
      let r: f32 = 0;
      if (k != ignore) {
        const lse = <f64>laneF32(m, i) + logF64(i < 2 ? laneF64(lo, i) : laneF64(hi, i - 2));
        r = <f32>(lse - <f64>load<f32>(xp + ((<usize>k * P + i) << 2)));
      }
      store<f32>(lp + (<usize>i << 2), r);
    }
  }
}

/** dx[n, c, p] = (softmax_c(x[n, :, p]) - [c == t[n, p]]) * g[(n*P + p)*gs] * scale (0 where
 *  t == ignore), the softmax as exp(x - max) / sum, as the rows' kernel. */
export function f32_cross_entropy_map_bwd(x: usize, t: usize, g: usize, gs: i32, scale: f32, dx: usize, N: i32, C: i32, P: i32, ignore: i32, ith: i32, nth: i32): void {
  const Q = (P + 3) >> 2;
  const s = rangeStart(N * Q, ith, nth), e = rangeEnd(N * Q, ith, nth);
  for (let it = s; it < e; it++) {
    const n = it / Q, p0 = (it - n * Q) << 2, np = min(4, P - p0);
    const off = (<usize>n * C * P + p0) << 2;
    const xp = x + off, dp = dx + off;
    const m = mapMax(xp, P, C, np);
    let lo = f64x2.splat(0), hi = f64x2.splat(0);
    for (let c = 0; c < C; c++) {
      const v = expCall(f32x4.sub(load4(xp + (<usize>c * P << 2), np), m));
      lo = f64x2.add(lo, f64x2.promote_low_f32x4(v));
      hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1)));
    }
    const sv = v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
    // per lane: the output gradient (0 where ignored) and the target class (-1 where ignored)
    const tp = t + ((<usize>n * P + p0) << 2);
    let gv = f32x4.splat(0), kv = i32x4.splat(-1);
    for (let i = 0; i < np; i++) {
      const k = <i32>load<f32>(tp + (<usize>i << 2));
      if (k == ignore) continue;
      const gi = load<f32>(g + (<usize>((n * P + p0 + i) * gs) << 2)) * scale;
      gv = i == 0 ? f32x4.replace_lane(gv, 0, gi) : i == 1 ? f32x4.replace_lane(gv, 1, gi) : i == 2 ? f32x4.replace_lane(gv, 2, gi) : f32x4.replace_lane(gv, 3, gi);
      kv = i == 0 ? i32x4.replace_lane(kv, 0, k) : i == 1 ? i32x4.replace_lane(kv, 1, k) : i == 2 ? i32x4.replace_lane(kv, 2, k) : i32x4.replace_lane(kv, 3, k);
    }
    for (let c = 0; c < C; c++) {
      const o = <usize>c * P << 2;
      let v = f32x4.mul(f32x4.div(expCall(f32x4.sub(load4(xp + o, np), m)), sv), gv);
      v = f32x4.sub(v, v128.and(gv, i32x4.eq(kv, i32x4.splat(c))));
      if (np == 4) v128.store(dp + o, v);
      else storePart(dp + o, np, v);
    }
  }
}

// ---- multi-class hinge (multi_margin_loss): x [N, C], t [N], p in {1, 2} ----

/** loss[n] = sum_{j != t} max(0, margin - x[t] + x[j])^p / C (PyTorch's loop). Items: rows. */
export function f32_multi_margin_fwd(x: usize, t: usize, loss: usize, N: i32, C: i32, p: i32, margin: f32, ith: i32, nth: i32): void {
  const s = rangeStart(N, ith, nth), e = rangeEnd(N, ith, nth);
  for (let n = s; n < e; n++) {
    const xr = x + ((<usize>n * C) << 2);
    const k = <i32>load<f32>(t + (<usize>n << 2));
    const xt = load<f32>(xr + (<usize>k << 2));
    let sum: f64 = 0;
    for (let j = 0; j < C; j++) {
      if (j == k) continue;
      const z = margin - xt + load<f32>(xr + (<usize>j << 2));
      if (z > 0) sum += p == 1 ? <f64>z : <f64>z * <f64>z;
    }
    store<f32>(loss + (<usize>n << 2), <f32>(sum / <f64>C));
  }
}

export function f32_multi_margin_bwd(x: usize, t: usize, g: usize, gs: i32, scale: f32, dx: usize, N: i32, C: i32, p: i32, margin: f32, ith: i32, nth: i32): void {
  const s = rangeStart(N, ith, nth), e = rangeEnd(N, ith, nth);
  for (let n = s; n < e; n++) {
    const xr = x + ((<usize>n * C) << 2), dr = dx + ((<usize>n * C) << 2);
    const k = <i32>load<f32>(t + (<usize>n << 2));
    const xt = load<f32>(xr + (<usize>k << 2));
    const gn = load<f32>(g + (<usize>(n * gs) << 2)) * scale / <f32>C;
    let dt: f32 = 0;
    for (let j = 0; j < C; j++) {
      if (j == k) continue;
      const z = margin - xt + load<f32>(xr + (<usize>j << 2));
      const h: f32 = z > 0 ? (p == 1 ? gn : 2 * z * gn) : 0;
      store<f32>(dr + (<usize>j << 2), h);
      dt -= h;
    }
    store<f32>(dr + (<usize>k << 2), dt);
  }
}

// ---- element-wise losses: x and target t of n elements ----

/** (x - t)^2 */
export function f32_mse_fwd(x: usize, t: usize, loss: usize, n: i32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    const d = f32x4.sub(v128.load(x + o), v128.load(t + o));
    v128.store(loss + o, f32x4.mul(d, d));
  }
  for (; i < e; i++) {
    const o = <usize>i << 2;
    const d = load<f32>(x + o) - load<f32>(t + o);
    store<f32>(loss + o, d * d);
  }
}

/** 2 (x - t) g scale */
export function f32_mse_bwd(x: usize, t: usize, g: usize, gs: i32, scale: f32, dx: usize, n: i32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  const sc = f32x4.splat(2 * scale);
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    const gv = gs ? v128.load(g + o) : v128.load32_splat(g);
    v128.store(dx + o, f32x4.mul(f32x4.mul(f32x4.sub(v128.load(x + o), v128.load(t + o)), sc), gv));
  }
  for (; i < e; i++) {
    const o = <usize>i << 2;
    store<f32>(dx + o, (load<f32>(x + o) - load<f32>(t + o)) * (2 * scale) * load<f32>(g + (gs ? o : 0)));
  }
}

/** |x - t| */
export function f32_l1_fwd(x: usize, t: usize, loss: usize, n: i32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    v128.store(loss + o, f32x4.abs(f32x4.sub(v128.load(x + o), v128.load(t + o))));
  }
  for (; i < e; i++) {
    const o = <usize>i << 2;
    store<f32>(loss + o, abs(load<f32>(x + o) - load<f32>(t + o)));
  }
}

/** sign(x - t) g scale (sign(0) = 0, as PyTorch's gradient of abs) */
export function f32_l1_bwd(x: usize, t: usize, g: usize, gs: i32, scale: f32, dx: usize, n: i32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  for (let i = s; i < e; i++) {
    const o = <usize>i << 2;
    const d = load<f32>(x + o) - load<f32>(t + o);
    const sg: f32 = d > 0 ? 1 : d < 0 ? -1 : 0;
    store<f32>(dx + o, sg * scale * load<f32>(g + (gs ? o : 0)));
  }
}

/** -(t log p + (1 - t) log(1 - p)), each log clamped at -100 (PyTorch) */
export function f32_bce_fwd(x: usize, t: usize, loss: usize, n: i32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  for (let i = s; i < e; i++) {
    const o = <usize>i << 2;
    const p = load<f32>(x + o), y = load<f32>(t + o);
    const lp = max(logF64(<f64>p), -100.0), lq = max(logF64(1.0 - <f64>p), -100.0);
    store<f32>(loss + o, <f32>((<f64>y - 1.0) * lq - <f64>y * lp));
  }
}

/** g (p - t) / max(p (1 - p), 1e-12) (PyTorch's epsilon) */
export function f32_bce_bwd(x: usize, t: usize, g: usize, gs: i32, scale: f32, dx: usize, n: i32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  for (let i = s; i < e; i++) {
    const o = <usize>i << 2;
    const p = load<f32>(x + o), y = load<f32>(t + o);
    store<f32>(dx + o, load<f32>(g + (gs ? o : 0)) * scale * (p - y) / max<f32>((<f32>1 - p) * p, 1e-12));
  }
}

/** On logits x: max(x, 0) - x t + log1p(exp(-|x|)) (stable for any x) */
export function f32_bce_logits_fwd(x: usize, t: usize, loss: usize, n: i32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  for (let i = s; i < e; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o), y = load<f32>(t + o);
    store<f32>(loss + o, <f32>(<f64>max(v, 0) - <f64>v * <f64>y + log1pF64(<f64>expF32(-abs(v)))));
  }
}

/** (sigmoid(x) - t) g scale */
export function f32_bce_logits_bwd(x: usize, t: usize, g: usize, gs: i32, scale: f32, dx: usize, n: i32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  for (let i = s; i < e; i++) {
    const o = <usize>i << 2;
    const sig = <f64>sigmoidF32(load<f32>(x + o));
    store<f32>(dx + o, <f32>((sig - <f64>load<f32>(t + o)) * <f64>load<f32>(g + (gs ? o : 0)) * <f64>scale));
  }
}
