// Fused optimiser updates and gradient utilities (see docs/kernels.md). Each update reads a
// parameter, its gradient and its state once and writes them back once, with the operations in
// the order torch.optim (1.13, single-tensor path) performs them, as separate f32 multiplies and
// adds (no fused multiply-add: the same bits on every CPU). Scalars such as 1 - beta arrive
// already computed in double by the caller, as Python computes them.
import { rangeStart, rangeEnd, chunkStart, chunkEnd, CHUNK } from "./common";

/** SGD: d = g + wd·p; momentum: buf = d on the first step, else buf·m + (1-dampening)·d;
 *  d = nesterov ? d + m·buf : buf; p += -lr·d. */
export function f32_sgd_step(
  p: usize, g: usize, buf: usize, n: i32, negLr: f32, momentum: f32, oneMinusDampening: f32, wd: f32,
  nesterov: i32, first: i32, ith: i32, nth: i32,
): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  const lrv = f32x4.splat(negLr), mv = f32x4.splat(momentum), dv = f32x4.splat(oneMinusDampening), wv = f32x4.splat(wd);
  const useWd = wd != 0, useM = momentum != 0;
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    const pv = v128.load(p + o);
    let d = v128.load(g + o);
    if (useWd) d = f32x4.add(d, f32x4.mul(wv, pv));
    if (useM) {
      const b = first ? d : f32x4.add(f32x4.mul(v128.load(buf + o), mv), f32x4.mul(dv, d));
      v128.store(buf + o, b);
      d = nesterov ? f32x4.add(d, f32x4.mul(mv, b)) : b;
    }
    v128.store(p + o, f32x4.add(pv, f32x4.mul(lrv, d)));
  }
  for (; i < e; i++) {
    const o = <usize>i << 2;
    const pv = load<f32>(p + o);
    let d = load<f32>(g + o);
    if (useWd) d = d + wd * pv;
    if (useM) {
      const b = first ? d : load<f32>(buf + o) * momentum + oneMinusDampening * d;
      store<f32>(buf + o, b);
      d = nesterov ? d + momentum * b : b;
    }
    store<f32>(p + o, pv + negLr * d);
  }
}

/** RMSprop: d = g + wd·p; sq = sq·α + (1-α)·d·d; centered: ga = ga·α + (1-α)·d,
 *  avg = sqrt(sq - ga·ga) + eps, else sqrt(sq) + eps; momentum: buf = buf·m + d/avg, p += -lr·buf;
 *  else p += -lr·d/avg. */
export function f32_rmsprop_step(
  p: usize, g: usize, sq: usize, ga: usize, buf: usize, n: i32, negLr: f32, alpha: f32, oneMinusAlpha: f32, eps: f32,
  wd: f32, momentum: f32, centered: i32, ith: i32, nth: i32,
): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  const lrv = f32x4.splat(negLr), av = f32x4.splat(alpha), oav = f32x4.splat(oneMinusAlpha), ev = f32x4.splat(eps);
  const wv = f32x4.splat(wd), mv = f32x4.splat(momentum);
  const useWd = wd != 0, useM = momentum > 0;
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    const pv = v128.load(p + o);
    let d = v128.load(g + o);
    if (useWd) d = f32x4.add(d, f32x4.mul(wv, pv));
    const q = f32x4.add(f32x4.mul(v128.load(sq + o), av), f32x4.mul(f32x4.mul(oav, d), d));
    v128.store(sq + o, q);
    let avg: v128;
    if (centered) {
      const a = f32x4.add(f32x4.mul(v128.load(ga + o), av), f32x4.mul(oav, d));
      v128.store(ga + o, a);
      avg = f32x4.sqrt(f32x4.sub(q, f32x4.mul(a, a)));
    } else avg = f32x4.sqrt(q);
    avg = f32x4.add(avg, ev);
    if (useM) {
      const b = f32x4.add(f32x4.mul(v128.load(buf + o), mv), f32x4.div(d, avg));
      v128.store(buf + o, b);
      v128.store(p + o, f32x4.add(pv, f32x4.mul(lrv, b)));
    } else v128.store(p + o, f32x4.add(pv, f32x4.div(f32x4.mul(lrv, d), avg)));
  }
  for (; i < e; i++) {
    const o = <usize>i << 2;
    const pv = load<f32>(p + o);
    let d = load<f32>(g + o);
    if (useWd) d = d + wd * pv;
    const q = load<f32>(sq + o) * alpha + oneMinusAlpha * d * d;
    store<f32>(sq + o, q);
    let avg: f32;
    if (centered) {
      const a = load<f32>(ga + o) * alpha + oneMinusAlpha * d;
      store<f32>(ga + o, a);
      avg = Mathf.sqrt(q - a * a);
    } else avg = Mathf.sqrt(q);
    avg = avg + eps;
    if (useM) {
      const b = load<f32>(buf + o) * momentum + d / avg;
      store<f32>(buf + o, b);
      store<f32>(p + o, pv + negLr * b);
    } else store<f32>(p + o, pv + negLr * d / avg);
  }
}

/** Adam / AdamW: AdamW first decays p·(1 - lr·wd) (decay = 1 for Adam); Adam adds wd·p to g.
 *  m = m·β1 + (1-β1)·d; v = v·β2 + (1-β2)·d·d; amsgrad: vmax = max(vmax, v), used for v;
 *  p += -stepSize·m / (sqrt(v)/sqrt(1-β2^t) + eps), stepSize = lr/(1-β1^t). */
export function f32_adam_step(
  p: usize, g: usize, m: usize, v: usize, vmax: usize, n: i32, beta1: f32, oneMinusBeta1: f32, beta2: f32,
  oneMinusBeta2: f32, eps: f32, wd: f32, decay: f32, negStepSize: f32, bc2Sqrt: f32, amsgrad: i32, ith: i32, nth: i32,
): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  const b1 = f32x4.splat(beta1), ob1 = f32x4.splat(oneMinusBeta1), b2 = f32x4.splat(beta2), ob2 = f32x4.splat(oneMinusBeta2);
  const ev = f32x4.splat(eps), wv = f32x4.splat(wd), dec = f32x4.splat(decay), ss = f32x4.splat(negStepSize), bc = f32x4.splat(bc2Sqrt);
  const useWd = wd != 0, useDecay = decay != 1;
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    let pv = v128.load(p + o);
    if (useDecay) pv = f32x4.mul(pv, dec);
    let d = v128.load(g + o);
    if (useWd) d = f32x4.add(d, f32x4.mul(wv, pv));
    const mm = f32x4.add(f32x4.mul(v128.load(m + o), b1), f32x4.mul(ob1, d));
    let vv = f32x4.add(f32x4.mul(v128.load(v + o), b2), f32x4.mul(f32x4.mul(ob2, d), d));
    v128.store(m + o, mm);
    v128.store(v + o, vv);
    if (amsgrad) {
      vv = f32x4.max(v128.load(vmax + o), vv);
      v128.store(vmax + o, vv);
    }
    const denom = f32x4.add(f32x4.div(f32x4.sqrt(vv), bc), ev);
    v128.store(p + o, f32x4.add(pv, f32x4.div(f32x4.mul(ss, mm), denom)));
  }
  for (; i < e; i++) {
    const o = <usize>i << 2;
    let pv = load<f32>(p + o);
    if (useDecay) pv = pv * decay;
    let d = load<f32>(g + o);
    if (useWd) d = d + wd * pv;
    const mm = load<f32>(m + o) * beta1 + oneMinusBeta1 * d;
    let vv = load<f32>(v + o) * beta2 + oneMinusBeta2 * d * d;
    store<f32>(m + o, mm);
    store<f32>(v + o, vv);
    if (amsgrad) {
      vv = max(load<f32>(vmax + o), vv);
      store<f32>(vmax + o, vv);
    }
    const denom = Mathf.sqrt(vv) / bc2Sqrt + eps;
    store<f32>(p + o, pv + negStepSize * mm / denom);
  }
}

// ---- gradient utilities ----

/** One partial per chunk of CHUNK floats, as f64 at out + 8·chunk: kind 0 Σx², 1 Σ|x|, 2 max|x|
 *  (NaN propagates). The caller folds the partials in chunk order: the same total on any
 *  thread count. */
export function f32_norm_partials(x: usize, n: i32, kind: i32, out: usize, ith: i32, nth: i32): void {
  const chunks = (n + CHUNK - 1) / CHUNK;
  const cs = rangeStart(chunks, ith, nth), ce = rangeEnd(chunks, ith, nth);
  for (let c = cs; c < ce; c++) {
    const s = c * CHUNK, e = min(n, s + CHUNK);
    let acc = f32x4.splat(0);
    let i = s;
    for (; i + 4 <= e; i += 4) {
      const v = v128.load(x + (<usize>i << 2));
      if (kind == 0) acc = f32x4.add(acc, f32x4.mul(v, v));
      else if (kind == 1) acc = f32x4.add(acc, f32x4.abs(v));
      // pmax-style select would drop NaN; max keeps it (as torch's inf-norm does)
      else acc = f32x4.max(acc, f32x4.abs(v));
    }
    let r: f64;
    if (kind == 2) {
      let m: f32 = max(max(f32x4.extract_lane(acc, 0), f32x4.extract_lane(acc, 1)), max(f32x4.extract_lane(acc, 2), f32x4.extract_lane(acc, 3)));
      for (; i < e; i++) m = max(m, Mathf.abs(load<f32>(x + (<usize>i << 2))));
      r = <f64>m;
    } else {
      r = <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) + <f64>f32x4.extract_lane(acc, 2) + <f64>f32x4.extract_lane(acc, 3);
      for (; i < e; i++) {
        const v = <f64>load<f32>(x + (<usize>i << 2));
        r += kind == 0 ? v * v : Math.abs(v);
      }
    }
    store<f64>(out + (<usize>c << 3), r);
  }
}

/** x *= s (gradient clipping by norm). */
export function f32_scale_inplace(x: usize, n: i32, sc: f32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  const sv = f32x4.splat(sc);
  let i = s;
  for (; i + 4 <= e; i += 4) v128.store(x + (<usize>i << 2), f32x4.mul(v128.load(x + (<usize>i << 2)), sv));
  for (; i < e; i++) store<f32>(x + (<usize>i << 2), load<f32>(x + (<usize>i << 2)) * sc);
}

/** x = min(max(x, lo), hi), NaN kept (torch.clamp). */
export function f32_clamp_inplace(x: usize, n: i32, lo: f32, hi: f32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  const lv = f32x4.splat(lo), hv = f32x4.splat(hi);
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    v128.store(x + o, f32x4.min(f32x4.max(v128.load(x + o), lv), hv));
  }
  for (; i < e; i++) {
    const o = <usize>i << 2;
    store<f32>(x + o, min(max(load<f32>(x + o), lo), hi));
  }
}

/** g += l1·sign(w), sign(0) = 0: the gradient of l1·Σ|w| as autograd gives it. */
export function f32_l1_grad(w: usize, g: usize, n: i32, l1: f32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  const pos = f32x4.splat(l1), neg = f32x4.splat(-l1), zero = f32x4.splat(0);
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    const wv = v128.load(w + o);
    const t = v128.or(v128.and(pos, f32x4.gt(wv, zero)), v128.and(neg, f32x4.lt(wv, zero)));
    v128.store(g + o, f32x4.add(v128.load(g + o), t));
  }
  for (; i < e; i++) {
    const o = <usize>i << 2;
    const wv = load<f32>(w + o);
    const t: f32 = wv > 0 ? l1 : wv < 0 ? -l1 : 0;
    store<f32>(g + o, load<f32>(g + o) + t);
  }
}
