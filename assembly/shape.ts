// Kernels for the shape and reduction ops (see docs/kernels.md): strided row copies (cat and
// its backward), bias add and its gradient, full sums, scaling by a scalar.
import { rangeStart, rangeEnd, chunkStart, chunkEnd, CHUNK } from "./common";
import { sumF64 } from "./vmath";

/** dst[r * dstStride + i] = src[r * srcStride + i] for i < len (strides in floats). Items: rows
 *  cut into chunks of CHUNK floats, so that one long row (cat along dim 0) is shared too. */
export function f32_copy_rows(src: usize, dst: usize, rows: i32, len: i32, srcStride: i32, dstStride: i32, ith: i32, nth: i32): void {
  const per = (len + CHUNK - 1) / CHUNK;
  const s = rangeStart(rows * per, ith, nth), e = rangeEnd(rows * per, ith, nth);
  for (let it = s; it < e; it++) {
    const r = it / per, c = (it - r * per) * CHUNK;
    const n = min(CHUNK, len - c);
    memory.copy(dst + ((<usize>r * dstStride + c) << 2), src + ((<usize>r * srcStride + c) << 2), <usize>n << 2);
  }
}

/** y[n, c, i] = x[n, c, i] + b[c] for x [N, C, inner]. Items: planes (n, c); inner == 1
 *  ([N, C], after a linear layer): rows n, SIMD along the channels. */
export function f32_bias_add_fwd(x: usize, b: usize, y: usize, N: i32, C: i32, inner: i32, ith: i32, nth: i32): void {
  if (inner == 1) {
    const s = rangeStart(N, ith, nth), e = rangeEnd(N, ith, nth);
    for (let n = s; n < e; n++) {
      const base = (<usize>n * C) << 2;
      let c = 0;
      for (; c + 4 <= C; c += 4) {
        const o = <usize>c << 2;
        v128.store(y + base + o, f32x4.add(v128.load(x + base + o), v128.load(b + o)));
      }
      for (; c < C; c++) {
        const o = <usize>c << 2;
        store<f32>(y + base + o, load<f32>(x + base + o) + load<f32>(b + o));
      }
    }
    return;
  }
  const s = rangeStart(N * C, ith, nth), e = rangeEnd(N * C, ith, nth);
  for (let p = s; p < e; p++) {
    const bv = load<f32>(b + (<usize>(p % C) << 2));
    const bs = f32x4.splat(bv);
    const xp = x + ((<usize>p * inner) << 2), yp = y + ((<usize>p * inner) << 2);
    let i = 0;
    for (; i + 4 <= inner; i += 4) {
      const o = <usize>i << 2;
      v128.store(yp + o, f32x4.add(v128.load(xp + o), bs));
    }
    for (; i < inner; i++) {
      const o = <usize>i << 2;
      store<f32>(yp + o, load<f32>(xp + o) + bv);
    }
  }
}

/** db[c] = sum over n and inner of dy[n, c, i], in f64, n in order. Items: channels. */
export function f32_bias_add_bwd(dy: usize, db: usize, N: i32, C: i32, inner: i32, ith: i32, nth: i32): void {
  const s = rangeStart(C, ith, nth), e = rangeEnd(C, ith, nth);
  for (let c = s; c < e; c++) {
    let acc: f64 = 0;
    for (let n = 0; n < N; n++) acc += sumF64(dy + ((<usize>(n * C + c) * inner) << 2), inner);
    store<f32>(db + (<usize>c << 2), <f32>acc);
  }
}

/** Partial sums of x in chunks of CHUNK floats: partials[k] (f64) = sum of chunk k. The chunks do
 *  not depend on the thread count; f32_sum_finish adds them in order. */
export function f32_sum_chunks(x: usize, n: i32, partials: usize, ith: i32, nth: i32): void {
  const chunks = (n + CHUNK - 1) / CHUNK;
  const s = rangeStart(chunks, ith, nth), e = rangeEnd(chunks, ith, nth);
  for (let k = s; k < e; k++) {
    const c = k * CHUNK;
    store<f64>(partials + (<usize>k << 3), sumF64(x + (<usize>c << 2), min(CHUNK, n - c)));
  }
}

/** y[0] = (sum of the partials in order) / div, rounded once to f32 (div: 1 for a sum, the count
 *  for a mean). Thread 0 only. */
export function f32_sum_finish(partials: usize, chunks: i32, y: usize, div: f64, ith: i32, nth: i32): void {
  if (ith != 0) return;
  let s: f64 = 0;
  for (let k = 0; k < chunks; k++) s += load<f64>(partials + (<usize>k << 3));
  store<f32>(y, <f32>(s / div));
}

/** y = x * s */
export function f32_scale(x: usize, y: usize, n: i32, sc: f32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  const v = f32x4.splat(sc);
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.mul(v128.load(x + o), v));
  }
  for (; i < e; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(x + o) * sc);
  }
}
