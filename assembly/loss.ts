// Loss kernels (see docs/kernels.md). Forward and backward side by side.
//
// Every forward writes the unreduced loss (one value per element, or per row for the
// classification losses); the op reduces it with f32_sum_chunks/f32_sum_finish (assembly/shape.ts),
// a fixed-order f64 sum. Every backward takes the output gradient as a pointer and a stride
// (gs = 0: one scalar for the "mean"/"sum" reductions; gs = 1: per element for "none") and a
// scale (1/N for "mean", else 1).
import { rangeStart, rangeEnd, chunkStart, chunkEnd } from "./common";
import { exp4, expF32, sigmoidF32, loadPart, storePart, logF64, log1pF64 } from "./vmath";

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
    const v = exp4(f32x4.sub(v128.load(p + (<usize>j << 2)), mv));
    s += (<f64>f32x4.extract_lane(v, 0) + <f64>f32x4.extract_lane(v, 1)) + (<f64>f32x4.extract_lane(v, 2) + <f64>f32x4.extract_lane(v, 3));
  }
  if (j < C) {
    const n = C - j;
    const v = exp4(f32x4.sub(loadPart(p + (<usize>j << 2), n, 0), mv));
    s += <f64>f32x4.extract_lane(v, 0);
    if (n > 1) s += <f64>f32x4.extract_lane(v, 1);
    if (n > 2) s += <f64>f32x4.extract_lane(v, 2);
  }
  return s;
}

// ---- cross entropy over logits [N, C] and class indices t [N] (checked by the op) ----

/** loss[n] = logsumexp(x[n]) - x[n, t[n]]. Items: rows. */
export function f32_cross_entropy_fwd(x: usize, t: usize, loss: usize, N: i32, C: i32, ith: i32, nth: i32): void {
  const s = rangeStart(N, ith, nth), e = rangeEnd(N, ith, nth);
  for (let n = s; n < e; n++) {
    const xr = x + ((<usize>n * C) << 2);
    const k = <i32>load<f32>(t + (<usize>n << 2));
    const m = rowMax(xr, C);
    const lse = <f64>m + logF64(expSum(xr, C, m));
    store<f32>(loss + (<usize>n << 2), <f32>(lse - <f64>load<f32>(xr + (<usize>k << 2))));
  }
}

/** dx[n, j] = (softmax(x[n])_j - [j == t[n]]) * g[n*gs] * scale, softmax = exp(x - max) / sum
 *  (not exp(x - logsumexp): rounding logsumexp to f32 would cost up to 2e-6 relative at |x| ~ 50).
 *  Items: rows. */
export function f32_cross_entropy_bwd(x: usize, t: usize, g: usize, gs: i32, scale: f32, dx: usize, N: i32, C: i32, ith: i32, nth: i32): void {
  const s = rangeStart(N, ith, nth), e = rangeEnd(N, ith, nth);
  for (let n = s; n < e; n++) {
    const xr = x + ((<usize>n * C) << 2), dr = dx + ((<usize>n * C) << 2);
    const m = rowMax(xr, C);
    const sum = <f32>expSum(xr, C, m);
    const gn = load<f32>(g + (<usize>(n * gs) << 2)) * scale;
    const lv = f32x4.splat(m), sv = f32x4.splat(sum), gv = f32x4.splat(gn);
    let j = 0;
    for (; j + 4 <= C; j += 4) {
      const o = <usize>j << 2;
      v128.store(dr + o, f32x4.mul(f32x4.div(exp4(f32x4.sub(v128.load(xr + o), lv)), sv), gv));
    }
    if (j < C) {
      const o = <usize>j << 2;
      storePart(dr + o, C - j, f32x4.mul(f32x4.div(exp4(f32x4.sub(loadPart(xr + o, C - j, 0), lv)), sv), gv));
    }
    const k = <i32>load<f32>(t + (<usize>n << 2));
    const q = dr + (<usize>k << 2);
    store<f32>(q, load<f32>(q) - gn);
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
