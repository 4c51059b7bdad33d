// Depthwise convolution forward (groups = channels = outputs, stride 1 or 2 along rows): each output
// channel reads one input channel, so there is no sum over channels to share between outputs
// and a GEMM would have one row per group (a sixth of its 6-row tile used). Here each (image,
// channel) plane is copied with its zero padding into scratch (padBlock) and every output row is
// computed four positions at a time, tap by tap.
//
// Same bits as the GEMM path (src/ops/conv.ts picks this kernel where it applies): there an
// output is acc = madd(w_k, x_k, acc) over the taps k = ky*KW + kx in order, from acc = 0, the
// padding read as 0, then + bias; here too, with the same madd.
import { take, madd } from "./common";
import { padBlock } from "./conv_pad";
import { storePart } from "./vmath";
import { epSpan } from "./conv_epilogue";

/** Four outputs' inputs of one tap: four neighbours (stride 1) or every second of eight
 *  (stride 2). */
// @ts-ignore: decorator
@inline export function taps4(p: usize, SW: i32): v128 {
  if (SW == 1) return v128.load(p);
  return v128.shuffle<f32>(v128.load(p), v128.load(p, 16), 0, 2, 4, 6);
}

/** The first n lanes of v at p (all four when n >= 4). */
// @ts-ignore: decorator
@inline function storeLanes(p: usize, n: i32, v: v128): void {
  if (n >= 4) v128.store(p, v);
  else storePart(p, n, v);
}

/** y = depthwise conv(x, w) (+ bias): geo as f32_conv2d_fwd's (N, C, H, W, O, G, KH, KW, SH, SW,
 *  PH, PW, DH, DW, HO, WO), SW 1 or 2; w as OIHW ([C, 1, KH, KW]). Items: the N*C planes.
 *  Scratch per thread: the padded plane, rows x (W + 2*PW) floats, plus 16. */
export function f32_conv2d_dw_fwd(geo: usize, x: usize, w: usize, bias: usize, y: usize, ep: usize, scratch: usize, scratchBytes: i32, ith: i32, nth: i32): void {
  const N = load<i32>(geo), C = load<i32>(geo, 4), H = load<i32>(geo, 8), W = load<i32>(geo, 12);
  const KH = load<i32>(geo, 24), KW = load<i32>(geo, 28), SH = load<i32>(geo, 32), SW = load<i32>(geo, 36);
  const PH = load<i32>(geo, 40), PW = load<i32>(geo, 44), DH = load<i32>(geo, 48), DW = load<i32>(geo, 52);
  const HO = load<i32>(geo, 56), WO = load<i32>(geo, 60);
  const Wp = W + 2 * PW, rows = (HO - 1) * SH + (KH - 1) * DH + 1, KK = KH * KW;
  const pad = scratch + <usize>ith * scratchBytes;
  // lanes past a row's end read on into the next row (or the 16 spare floats): values whose
  // results are not stored
  for (let it = take(-1, nth); it < N * C; it = take(it, nth)) {
    const c = it % C;
    padBlock(x + (<usize>it * H * W << 2), 0, 1, H, W, -PH, rows, PW, Wp, pad);
    const wc = w + (<usize>(c * KK) << 2);
    const b = bias ? f32x4.splat(load<f32>(bias + (<usize>c << 2))) : f32x4.splat(0);
    const out = y + (<usize>it * HO * WO << 2);
    // SW as a constant in each copy: a stride tested in the inner loop costs a third
    if (SW == 1) dwPlane(pad, wc, b, bias != 0, out, HO, WO, Wp, SH, KH, KW, DH, DW, 1);
    else dwPlane(pad, wc, b, bias != 0, out, HO, WO, Wp, SH, KH, KW, DH, DW, 2);
    // conv2d_fused's epilogue on the plane just written (ep: conv_epilogue.ts)
    if (ep) epSpan(ep, c, y, <usize>it * HO * WO << 2, HO * WO);
  }
}

/** One plane: out (HO x WO) from the padded plane at pad (rows of Wp), channel weights wc,
 *  bias vector b (when hasBias). */
// @ts-ignore: decorator
@inline function dwPlane(pad: usize, wc: usize, b: v128, hasBias: bool, out: usize, HO: i32, WO: i32, Wp: i32, SH: i32, KH: i32, KW: i32, DH: i32, DW: i32, SW: i32): void {
  const bias = hasBias;
  const ox16 = WO & ~15;
  for (let oy = 0; oy < HO; oy++) {
    const row = pad + (<usize>(oy * SH * Wp) << 2), dst = out + (<usize>(oy * WO) << 2);
    // sixteen positions at a time: four independent chains of madds (one chain waits on
    // each madd's latency; four keep the unit busy), each position's taps still in order
    for (let ox = 0; ox < ox16; ox += 16) {
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      for (let ky = 0; ky < KH; ky++) {
        const src = row + (<usize>(ky * DH * Wp + ox * SW) << 2), wk = wc + (<usize>(ky * KW) << 2);
        const step = <usize>(16 * SW);
        for (let kx = 0; kx < KW; kx++) {
          const wv = v128.load32_splat(wk + (<usize>kx << 2)), s = src + (<usize>(kx * DW) << 2);
          a0 = madd(wv, taps4(s, SW), a0);
          a1 = madd(wv, taps4(s + step, SW), a1);
          a2 = madd(wv, taps4(s + 2 * step, SW), a2);
          a3 = madd(wv, taps4(s + 3 * step, SW), a3);
        }
      }
      const d = dst + (<usize>ox << 2);
      v128.store(d, bias ? f32x4.add(a0, b) : a0);
      v128.store(d, bias ? f32x4.add(a1, b) : a1, 16);
      v128.store(d, bias ? f32x4.add(a2, b) : a2, 32);
      v128.store(d, bias ? f32x4.add(a3, b) : a3, 48);
    }
  }
  // the columns past the last sixteen (all of a map under 16 wide): four rows at a time
  let oy = 0;
  const rs = <usize>(SH * Wp) << 2, os = <usize>WO << 2;
  for (; oy + 4 <= HO; oy += 4) {
    const row = pad + (<usize>(oy * SH * Wp) << 2), dst = out + (<usize>(oy * WO) << 2);
    for (let ox = ox16; ox < WO; ox += 4) {
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      for (let ky = 0; ky < KH; ky++) {
        const src = row + (<usize>(ky * DH * Wp + ox * SW) << 2), wk = wc + (<usize>(ky * KW) << 2);
        for (let kx = 0; kx < KW; kx++) {
          const wv = v128.load32_splat(wk + (<usize>kx << 2)), s = src + (<usize>(kx * DW) << 2);
          a0 = madd(wv, taps4(s, SW), a0);
          a1 = madd(wv, taps4(s + rs, SW), a1);
          a2 = madd(wv, taps4(s + 2 * rs, SW), a2);
          a3 = madd(wv, taps4(s + 3 * rs, SW), a3);
        }
      }
      const d = dst + (<usize>ox << 2), n = WO - ox;
      storeLanes(d, n, bias ? f32x4.add(a0, b) : a0);
      storeLanes(d + os, n, bias ? f32x4.add(a1, b) : a1);
      storeLanes(d + 2 * os, n, bias ? f32x4.add(a2, b) : a2);
      storeLanes(d + 3 * os, n, bias ? f32x4.add(a3, b) : a3);
    }
  }
  for (; oy < HO; oy++) {
    const row = pad + (<usize>(oy * SH * Wp) << 2), dst = out + (<usize>(oy * WO) << 2);
    for (let ox = ox16; ox < WO; ox += 4) {
      let acc = f32x4.splat(0);
      for (let ky = 0; ky < KH; ky++) {
        const src = row + (<usize>(ky * DH * Wp + ox * SW) << 2), wk = wc + (<usize>(ky * KW) << 2);
        for (let kx = 0; kx < KW; kx++)
          acc = madd(v128.load32_splat(wk + (<usize>kx << 2)), taps4(src + (<usize>(kx * DW) << 2), SW), acc);
      }
      storeLanes(dst + (<usize>ox << 2), WO - ox, bias ? f32x4.add(acc, b) : acc);
    }
  }
}
