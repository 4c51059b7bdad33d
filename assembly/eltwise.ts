// Element-wise kernels: forward and backward side by side.
import { chunkStart, chunkEnd } from "./common";

/** y[i] = v */
export function f32_fill(y: usize, n: i32, v: f32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  const vv = f32x4.splat(v);
  let i = s;
  for (; i + 4 <= e; i += 4) v128.store(y + (<usize>i << 2), vv);
  for (; i < e; i++) store<f32>(y + (<usize>i << 2), v);
}

/** y = x */
export function f32_copy(x: usize, y: usize, n: i32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  memory.copy(y + (<usize>s << 2), x + (<usize>s << 2), <usize>(e - s) << 2);
}

/** y = a + b */
export function f32_add(a: usize, b: usize, y: usize, n: i32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < e; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(a + o) + load<f32>(b + o));
  }
}

/** y += x (gradient accumulation) */
export function f32_acc(x: usize, y: usize, n: i32, ith: i32, nth: i32): void {
  f32_add(y, x, y, n, ith, nth);
}

/** ReLU forward: y = max(x, 0) */
export function f32_relu_fwd(x: usize, y: usize, n: i32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  const z = f32x4.splat(0);
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.max(v128.load(x + o), z));
  }
  for (; i < e; i++) {
    const o = <usize>i << 2;
    // f32.max is one lane of f32x4.max (NaN stays NaN): the same bits wherever an element sits
    store<f32>(y + o, max<f32>(load<f32>(x + o), 0));
  }
}

/** ReLU backward: dx = dy where x > 0 (PyTorch: gradient 0 at x == 0) */
export function f32_relu_bwd(x: usize, dy: usize, dx: usize, n: i32, ith: i32, nth: i32): void {
  const s = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  const z = f32x4.splat(0);
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    v128.store(dx + o, v128.and(v128.load(dy + o), f32x4.gt(v128.load(x + o), z)));
  }
  for (; i < e; i++) {
    const o = <usize>i << 2;
    store<f32>(dx + o, load<f32>(x + o) > 0 ? load<f32>(dy + o) : 0);
  }
}
