// The epilogue of conv2d_fused (src/ops/fused.ts): what batch norm in eval mode, the residual
// add and the ReLU do after a convolution, applied by the convolution kernels themselves to an
// output block whose values are final and still in cache (f32_conv2d_fwd, f32_winograd_fwd,
// f32_conv2d_dw_fwd), instead of three more passes over the output.
//
// Same bits as the unfused ops: each step is the one f32 operation, in the same order, that
// batch norm's eval forward (f32_batchnorm_fwd with mean 0: v*s then + t, a mul and an add,
// never a fused multiply-add, on either build), f32_add (+ residual) and f32_relu_fwd (max(v, 0)) do. The scalar tail does the same
// operations as one vector lane (f32.max is f32x4.max's lane: NaN stays NaN, -0 gives +0).
//
// The epilogue is described by 4 words at ep: scale, shift, residual (pointers, 0 = none; scale
// and shift per output channel, residual shaped like the output) and relu (0 or 1).
import { rangeStart, rangeEnd } from "./common";

/** Applies the epilogue of output channel o to the n floats at y + off (residual at res + off). */
// @ts-ignore: decorator
@inline export function epSpan(ep: usize, o: i32, y: usize, off: usize, n: i32): void {
  const sc = load<u32>(ep), sh = load<u32>(ep, 4), res = load<u32>(ep, 8), relu = load<u32>(ep, 12);
  const s: f32 = sc ? load<f32>(<usize>sc + (<usize>o << 2)) : 1;
  const t: f32 = sh ? load<f32>(<usize>sh + (<usize>o << 2)) : 0;
  const sv = f32x4.splat(s), tv = f32x4.splat(t), z = f32x4.splat(0);
  const p = y + off, r = <usize>res + off;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const q = <usize>i << 2;
    let v = v128.load(p + q);
    if (sc) v = f32x4.mul(v, sv);
    if (sh) v = f32x4.add(v, tv);
    if (res) v = f32x4.add(v, v128.load(r + q));
    if (relu) v = f32x4.max(v, z);
    v128.store(p + q, v);
  }
  for (; i < n; i++) {
    const q = <usize>i << 2;
    let v = load<f32>(p + q);
    if (sc) v = v * s;
    if (sh) v = v + t;
    if (res) v = v + load<f32>(r + q);
    if (relu) v = max<f32>(v, 0);
    store<f32>(p + q, v);
  }
}

/** The epilogue as a pass of its own, over y [N, O, P] (items: the N*O rows), for a conv path
 *  that cannot apply it while its blocks are in cache: still one pass instead of three, with
 *  the same bits (epSpan per row). */
export function f32_conv_epilogue(ep: usize, y: usize, N: i32, O: i32, P: i32, ith: i32, nth: i32): void {
  const s = rangeStart(N * O, ith, nth), e = rangeEnd(N * O, ith, nth);
  for (let r = s; r < e; r++) epSpan(ep, r % O, y, <usize>r * P << 2, P);
}
