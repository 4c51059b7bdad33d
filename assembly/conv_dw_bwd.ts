// Depthwise convolution's weight gradient (groups = channels = outputs, stride 1 or 2 along
// rows, as the forward in conv_dw.ts): dw[c][tap] = sum over images and output positions of
// dy[n][c][p] * x[n][c][under tap of p]. Through the GEMM path each group is a one-row GEMM
// (3-6x the forward's time); here each channel is one item: its planes are copied with their
// zero padding into scratch (padBlock) and every tap is a dot product of dy's rows with the
// padded input's, four positions at a time. (The input gradient at stride 1 is the forward
// kernel on dy with the taps reversed: src/ops/conv.ts.)
//
// Order of summation, per weight: images in order, rows in order, along a row four lanes of
// partial sums (positions 4k + lane) and a scalar sum of the row ends, lanes added 0+1+2+3 and
// then the ends: fixed by the shapes, so the same bits on any thread count.
import { take, madd } from "./common";
import { padBlock } from "./conv_pad";
import { taps4 } from "./conv_dw";

/** dw = the weight gradient of a depthwise conv: geo as f32_conv2d_fwd's; w layout [C, 1, KH,
 *  KW]. Items: the C channels. Scratch per thread: the padded plane (rows x (W + 2*PW) floats,
 *  plus 16) after KH*KW accumulators of 4 lanes and KH*KW of 1 (src/ops/conv.ts sizes it). */
export function f32_conv2d_dw_bwd_weight(geo: usize, x: usize, dy: usize, dw: usize, scratch: usize, scratchBytes: i32, ith: i32, nth: i32): void {
  const N = load<i32>(geo), C = load<i32>(geo, 4), H = load<i32>(geo, 8), W = load<i32>(geo, 12);
  const KH = load<i32>(geo, 24), KW = load<i32>(geo, 28), SH = load<i32>(geo, 32), SW = load<i32>(geo, 36);
  const PH = load<i32>(geo, 40), PW = load<i32>(geo, 44), DH = load<i32>(geo, 48), DW = load<i32>(geo, 52);
  const HO = load<i32>(geo, 56), WO = load<i32>(geo, 60);
  const Wp = W + 2 * PW, rows = (HO - 1) * SH + (KH - 1) * DH + 1, KK = KH * KW;
  const base = scratch + <usize>ith * scratchBytes;
  const vacc = base, sacc = vacc + (<usize>(KK * 16)), pad = base + (<usize>((KK * 20 + 63) & ~63));
  const wo4 = WO & ~3;
  for (let c = take(-1, nth); c < C; c = take(c, nth)) {
    if (KH == 3 && KW == 3) {
      // nine taps at once: nine independent chains of madds, one dy load for all nine (the
      // generic loop below has one chain per pass and waits on each madd); the same sums
      if (SW == 1) dw3x3(x, dy, dw, c, N, C, H, W, HO, WO, PH, PW, SH, DH, DW, Wp, rows, pad, 1);
      else dw3x3(x, dy, dw, c, N, C, H, W, HO, WO, PH, PW, SH, DH, DW, Wp, rows, pad, 2);
      continue;
    }
    for (let t = 0; t < KK; t++) {
      v128.store(vacc + (<usize>t << 4), f32x4.splat(0));
      store<f32>(sacc + (<usize>t << 2), 0);
    }
    for (let n = 0; n < N; n++) {
      const plane = (<usize>(n * C + c)) * H * W;
      padBlock(x + (plane << 2), 0, 1, H, W, -PH, rows, PW, Wp, pad);
      const g = dy + ((<usize>(n * C + c)) * HO * WO << 2);
      for (let ky = 0; ky < KH; ky++)
        for (let kx = 0; kx < KW; kx++) {
          const t = ky * KW + kx;
          let acc = v128.load(vacc + (<usize>t << 4));
          let s = load<f32>(sacc + (<usize>t << 2));
          for (let oy = 0; oy < HO; oy++) {
            const src = pad + (<usize>((oy * SH + ky * DH) * Wp + kx * DW) << 2), d = g + (<usize>(oy * WO) << 2);
            if (SW == 1) for (let ox = 0; ox < wo4; ox += 4) acc = madd(v128.load(d + (<usize>ox << 2)), v128.load(src + (<usize>ox << 2)), acc);
            else for (let ox = 0; ox < wo4; ox += 4) acc = madd(v128.load(d + (<usize>ox << 2)), taps4(src + (<usize>(ox * 2) << 2), 2), acc);
            for (let ox = wo4; ox < WO; ox++) s += load<f32>(d + (<usize>ox << 2)) * load<f32>(src + (<usize>(ox * SW) << 2));
          }
          v128.store(vacc + (<usize>t << 4), acc);
          store<f32>(sacc + (<usize>t << 2), s);
        }
    }
    for (let t = 0; t < KK; t++) {
      const a = v128.load(vacc + (<usize>t << 4));
      store<f32>(dw + (<usize>(c * KK + t) << 2), hsum(a) + load<f32>(sacc + (<usize>t << 2)));
    }
  }
}

/** f32_conv2d_dw_bwd_weight for a 3x3 kernel, channel c, the stride along rows SW as a
 *  constant: the same order of summation per weight as the generic loop. */
// @ts-ignore: decorator
@inline function dw3x3(x: usize, dy: usize, dw: usize, c: i32, N: i32, C: i32, H: i32, W: i32, HO: i32, WO: i32, PH: i32, PW: i32,
  SH: i32, DH: i32, DW: i32, Wp: i32, rows: i32, pad: usize, SW: i32): void {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0;
  let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0, s4: f32 = 0, s5: f32 = 0, s6: f32 = 0, s7: f32 = 0, s8: f32 = 0;
  const wo4 = WO & ~3;
  const r1 = <usize>(DH * Wp) << 2, r2 = r1 << 1, k1 = <usize>DW << 2, k2 = k1 << 1;
  for (let n = 0; n < N; n++) {
    padBlock(x + ((<usize>(n * C + c)) * H * W << 2), 0, 1, H, W, -PH, rows, PW, Wp, pad);
    const g = dy + ((<usize>(n * C + c)) * HO * WO << 2);
    for (let oy = 0; oy < HO; oy++) {
      const src = pad + (<usize>(oy * SH * Wp) << 2), d = g + (<usize>(oy * WO) << 2);
      for (let ox = 0; ox < wo4; ox += 4) {
        const v = v128.load(d + (<usize>ox << 2)), p = src + (<usize>(ox * SW) << 2);
        a0 = madd(v, taps4(p, SW), a0);
        a1 = madd(v, taps4(p + k1, SW), a1);
        a2 = madd(v, taps4(p + k2, SW), a2);
        a3 = madd(v, taps4(p + r1, SW), a3);
        a4 = madd(v, taps4(p + r1 + k1, SW), a4);
        a5 = madd(v, taps4(p + r1 + k2, SW), a5);
        a6 = madd(v, taps4(p + r2, SW), a6);
        a7 = madd(v, taps4(p + r2 + k1, SW), a7);
        a8 = madd(v, taps4(p + r2 + k2, SW), a8);
      }
      for (let ox = wo4; ox < WO; ox++) {
        const v = load<f32>(d + (<usize>ox << 2)), p = src + (<usize>(ox * SW) << 2);
        s0 += v * load<f32>(p);
        s1 += v * load<f32>(p + k1);
        s2 += v * load<f32>(p + k2);
        s3 += v * load<f32>(p + r1);
        s4 += v * load<f32>(p + r1 + k1);
        s5 += v * load<f32>(p + r1 + k2);
        s6 += v * load<f32>(p + r2);
        s7 += v * load<f32>(p + r2 + k1);
        s8 += v * load<f32>(p + r2 + k2);
      }
    }
  }
  const o = dw + (<usize>(c * 9) << 2);
  store<f32>(o, hsum(a0) + s0);
  store<f32>(o, hsum(a1) + s1, 4);
  store<f32>(o, hsum(a2) + s2, 8);
  store<f32>(o, hsum(a3) + s3, 12);
  store<f32>(o, hsum(a4) + s4, 16);
  store<f32>(o, hsum(a5) + s5, 20);
  store<f32>(o, hsum(a6) + s6, 24);
  store<f32>(o, hsum(a7) + s7, 28);
  store<f32>(o, hsum(a8) + s8, 32);
}

/** Lanes added 0 + 1 + 2 + 3, in that order. */
// @ts-ignore: decorator
@inline function hsum(a: v128): f32 {
  return f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3);
}
