// The padded-block path of the convolutions (assembly/conv2d.ts), for stride 1 along rows (and
// for the forward and the weight gradient, stride 2 with each padded row stored as its even
// columns then its odd ones: evenOddRow) and outputs at least 7 wide: the input rows an item needs are copied once into scratch with their
// zero padding (a "padded block", row width Wp = W + 2*PW), so no tap of any position ever
// needs a bounds check. A sliver of 8 consecutive output positions then covers at most two
// output rows, i.e. at most two contiguous runs of the padded block per tap:
//   positions 0 .. r-1 at padded offsets A + i, positions r .. v-1 at B + i (B = start of the
//   second run minus r), positions v .. 7 past the end of the item (zero).
// so a tap of a sliver is two pairs of vector loads and a lane select, whatever the padding.
// On small images (LeNet's 14x14 with 5x5 taps, padding 2) almost every run of the bounds-
// checked path touches the border, so this is where the time went.
//
// Offsets are in floats from the padded block of channel 0 at tap (0, 0); tap (ci, ky, kx)
// adds ci*chStride + ky*DH*Wp + kx*DW.

import { NR, transpose4 } from "./gemm_micro";

/** Copies channels c0 .. c0+nch-1 (planes of H x W at `plane`), input rows iyLo ..
 *  iyLo+nrows-1, into dst as nch blocks of nrows x Wp floats: PW zero columns, the row, zero
 *  columns up to Wp; rows outside the image are zero. */
export function padBlock(plane: usize, c0: i32, nch: i32, H: i32, W: i32, iyLo: i32, nrows: i32, PW: i32, Wp: i32, dst: usize, SW: i32 = 1): void {
  const z = f32x4.splat(0);
  for (let c = 0; c < nch; c++) {
    const src = plane + (<usize>(c0 + c) * H * W << 2);
    for (let r = 0; r < nrows; r++) {
      const iy = iyLo + r;
      const d = dst + (<usize>(c * nrows + r) * Wp << 2);
      if (<u32>iy >= <u32>H) {
        let i = 0;
        for (; i + 4 <= Wp; i += 4) v128.store(d + (<usize>i << 2), z);
        for (; i < Wp; i++) store<f32>(d + (<usize>i << 2), 0);
        continue;
      }
      if (SW == 2) {
        evenOddRow(src + (<usize>(iy * W) << 2), W, PW, Wp, d);
        continue;
      }
      for (let i = 0; i < PW; i++) store<f32>(d + (<usize>i << 2), 0);
      const s = src + (<usize>(iy * W) << 2), dd = d + (<usize>PW << 2);
      let i = 0;
      for (; i + 4 <= W; i += 4) v128.store(dd + (<usize>i << 2), v128.load(s + (<usize>i << 2)));
      for (; i < W; i++) store<f32>(dd + (<usize>i << 2), load<f32>(s + (<usize>i << 2)));
      for (let j = PW + W; j < Wp; j++) store<f32>(d + (<usize>j << 2), 0);
    }
  }
}

/** A padded row (PW zeros, the W values at s, zeros up to Wp) for stride 2 along rows: its even
 *  columns first (we = ceil(Wp/2) of them), then its odd ones, so that tap kx of 8 consecutive
 *  outputs (padded columns 2*ox + kx) is 8 consecutive floats: at ox + kx/2 (kx even) or we + ox
 *  + (kx-1)/2 (odd). Vectors where 8 source values are inside, one value at a time at the ends. */
function evenOddRow(s: usize, W: i32, PW: i32, Wp: i32, d: usize): void {
  const we = (Wp + 1) >> 1, wo = Wp >> 1, od = d + (<usize>we << 2);
  // scalar below i0 = ceil(PW/2) (the left zeros), vectors while 8 source values are inside
  let i = 0;
  for (const i0 = min(we, (PW + 1) >> 1); i < i0; i++) evenOdd1(s, W, PW, i, wo, d, od);
  for (; i + 4 <= wo && 2 * i - PW + 8 <= W; i += 4) {
    const a = v128.load(s + (<usize>(2 * i - PW) << 2)), b = v128.load(s + (<usize>(2 * i - PW) << 2), 16);
    v128.store(d + (<usize>i << 2), f32x4.shuffle(a, b, 0, 2, 4, 6));
    v128.store(od + (<usize>i << 2), f32x4.shuffle(a, b, 1, 3, 5, 7));
  }
  for (; i < we; i++) evenOdd1(s, W, PW, i, wo, d, od);
}

/** evenOddRow's column pair i: padded columns 2i (to d) and 2i + 1 (to od, if i < wo). */
// @ts-ignore: decorator
@inline function evenOdd1(s: usize, W: i32, PW: i32, i: i32, wo: i32, d: usize, od: usize): void {
  const x = 2 * i - PW;
  store<f32>(d + (<usize>i << 2), <u32>x < <u32>W ? load<f32>(s + (<usize>x << 2)) : 0);
  if (i < wo) store<f32>(od + (<usize>i << 2), <u32>(x + 1) < <u32>W ? load<f32>(s + (<usize>(x + 1) << 2)) : 0);
}

/** Fills n floats at dst with v (the start of an accumulation block). */
export function fillBlock(dst: usize, n: i32, v: f32): void {
  const vv = f32x4.splat(v);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), vv);
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), v);
}

/** Describes the slivers of positions p0 .. p0+np-1 (np > 0) of an output WO wide, in a padded
 *  block whose row 0 is output row oyLo's first input row: four i32 per sliver (A, B, r, v). */
export function sliverTable(p0: i32, np: i32, WO: i32, SH: i32, Wp: i32, oyLo: i32, tab: usize): void {
  const rowStep = SH * Wp;
  for (let j = 0, q = 0; q < np; j++, q += 8) {
    const p = p0 + q, oy = p / WO, ox = p - oy * WO;
    const v = min(8, np - q);
    const r = min(WO - ox, v);
    const A = (oy - oyLo) * rowStep + ox;
    const B = r < v ? (oy + 1 - oyLo) * rowStep - r : A; // the next row's first position is lane r
    const t = tab + (<usize>j << 4);
    store<i32>(t, A);
    store<i32>(t, B, 4);
    store<i32>(t, r, 8);
    store<i32>(t, v, 12);
  }
}

/** Lanes i of [base, base+1, base+2, base+3] with lo <= i < hi, as a mask. */
// @ts-ignore: decorator
@inline function lanes(base: i32, lo: i32, hi: i32): v128 {
  const i = i32x4.add(i32x4(0, 1, 2, 3), i32x4.splat(base));
  return v128.and(i32x4.ge_s(i, i32x4.splat(lo)), i32x4.lt_s(i, i32x4.splat(hi)));
}

/** Byte offsets of taps k0 .. k0+kc-1 (k = (ci*KH + ky)*KW + kx, ci counted from the padded
 *  block's channel 0) from the block's start, as kc i32 at `out`: the inner loops of im2col
 *  then read one offset per tap instead of stepping three counters. */
export function tapTable(chStride: i32, Wp: i32, KH: i32, KW: i32, DH: i32, DW: i32, k0: i32, kc: i32, out: usize, SW: i32 = 1): void {
  const KK = KH * KW, we = (Wp + 1) >> 1;
  let ci = k0 / KK, ky = (k0 - ci * KK) / KW, kx = k0 - ci * KK - ky * KW;
  for (let kk = 0; kk < kc; kk++) {
    // stride 2 along rows (DW 1): the even and odd columns of each row apart (evenOddRow)
    const col = SW == 2 ? (kx & 1 ? we + (kx >> 1) : kx >> 1) : kx * DW;
    store<i32>(out + (<usize>kk << 2), (ci * chStride + ky * DH * Wp + col) << 2);
    if (++kx == KW) {
      kx = 0;
      if (++ky == KH) {
        ky = 0;
        ci++;
      }
    }
  }
}

/** im2col from a padded block: kc rows of the column matrix, tap kk at byte offset taps[kk]
 *  (tapTable), for nsl slivers described by tab. Sliver j, row kk goes to dst + j*lds + kk*ldk
 *  floats (8 floats; lanes past the item's end are zero): lds = kc*8, ldk = 8 writes packed B
 *  slivers; lds = 8, ldk = row length writes plain rows. */
export function im2colPadded(src: usize, taps: usize, kc: i32, tab: usize, nsl: i32, dst: usize, ldk: i32, lds: i32): void {
  const dstep = <usize>ldk << 2, tend = taps + (<usize>kc << 2);
  for (let j = 0; j < nsl; j++) {
    const t = tab + (<usize>j << 4);
    const A = src + (<usize>load<i32>(t) << 2), B = src + (<usize>load<i32>(t, 4) << 2), r = load<i32>(t, 8), v = load<i32>(t, 12);
    let d = dst + (<usize>(j * lds) << 2);
    if (r == 8) {
      // one run of 8 (most slivers): a plain copy per tap
      for (let tt = taps; tt < tend; tt += 4) {
        const a = A + <usize>load<i32>(tt);
        v128.store(d, v128.load(a));
        v128.store(d, v128.load(a, 16), 16);
        d += dstep;
      }
      continue;
    }
    // two runs and/or a short end: select lane by lane, zero past the end
    const m0 = lanes(0, 0, r), m1 = lanes(4, 0, r), v0 = lanes(0, 0, v), v1 = lanes(4, 0, v);
    for (let tt = taps; tt < tend; tt += 4) {
      const o = <usize>load<i32>(tt), a = A + o, b = B + o;
      v128.store(d, v128.and(v128.bitselect(v128.load(a), v128.load(b), m0), v0));
      v128.store(d, v128.and(v128.bitselect(v128.load(a, 16), v128.load(b, 16), m1), v1), 16);
      d += dstep;
    }
  }
}

/** im2col from a padded block straight into the packed B of its transpose, for the weight
 *  gradient (B = col^T: kc positions x nk taps): tap sliver s (taps 8s .. 8s+7, past nk zero)
 *  at dst + s*8*kc floats, position p's 8 taps at + p*8, which is what im2colPadded into plain
 *  rows followed by packB(transB = 1) writes, without the kc x nk column block in between (it
 *  does not fit L1 and was written and read back once per chunk). 8 taps x 8 positions at a time
 *  go through blk (64 floats, in L1) and 4x4 transposes. tab: the positions' sliver table
 *  (nsl = ceil(kc/8) entries). */
export function im2colPaddedT(src: usize, taps: usize, nk: i32, tab: usize, nsl: i32, kc: i32, dst: usize, blk: usize): void {
  const z = f32x4.splat(0);
  for (let s = 0; s * 8 < nk; s++) {
    const nt = min(8, nk - s * 8);
    const tb = taps + (<usize>(s * 8) << 2);
    const ds = dst + (<usize>(s * 8 * kc) << 2);
    // rows of blk past nt stay zero (transpose4 reads them as zeros anyway; the tail reads them)
    for (let tt = nt; tt < 8; tt++) {
      v128.store(blk + (<usize>tt << 5), z);
      v128.store(blk + (<usize>tt << 5), z, 16);
    }
    for (let j = 0; j < nsl; j++) {
      const t = tab + (<usize>j << 4);
      const A = src + (<usize>load<i32>(t) << 2), B = src + (<usize>load<i32>(t, 4) << 2), r = load<i32>(t, 8), v = load<i32>(t, 12);
      // blk row tt: tap tt's 8 positions, what im2colPadded(src, tb, nt, t, 1, blk, 8, 8)
      // writes; inline here: the call per 8x8 block made the 16-channel weight gradient 4-8%
      // slower (measured)
      if (r == 8) {
        for (let tt = 0; tt < nt; tt++) {
          const a = A + <usize>load<i32>(tb + (<usize>tt << 2)), d = blk + (<usize>tt << 5);
          v128.store(d, v128.load(a));
          v128.store(d, v128.load(a, 16), 16);
        }
      } else {
        const m0 = lanes(0, 0, r), m1 = lanes(4, 0, r), v0 = lanes(0, 0, v), v1 = lanes(4, 0, v);
        for (let tt = 0; tt < nt; tt++) {
          const o = <usize>load<i32>(tb + (<usize>tt << 2)), a = A + o, b = B + o, d = blk + (<usize>tt << 5);
          v128.store(d, v128.and(v128.bitselect(v128.load(a), v128.load(b), m0), v0));
          v128.store(d, v128.and(v128.bitselect(v128.load(a, 16), v128.load(b, 16), m1), v1), 16);
        }
      }
      const d = ds + (<usize>(j * 8 * NR) << 2);
      if (v == 8) {
        // q & 1: positions 4-7; q >> 1: taps 4-7 (one copy of the inlined transpose)
        for (let q = 0; q < 4; q++)
          transpose4(blk + (<usize>(q & 1) << 4) + (<usize>(q >> 1) << 7), 32, d + (<usize>((q & 1) * 4 * NR) << 2) + (<usize>(q >> 1) << 4), nt - 4 * (q >> 1));
      } else {
        // the chunk's last positions: only v of them (the sliver holds exactly kc)
        for (let p = 0; p < v; p++)
          for (let c = 0; c < NR; c++) store<f32>(d + (<usize>(p * NR + c) << 2), load<f32>(blk + (<usize>(c * 8 + p) << 2)));
      }
    }
  }
}

/** col2im into a padded block: adds rows 0 .. rows-1 of a plain column block (row kk of
 *  sliver j at col + kk*ld + j*8 floats) into the padded block, in the order row (tap), sliver.
 *  Tap by tap, not sliver by sliver: the next tap of a sliver reads the 8 floats just written,
 *  shifted by one, and a load that partly overlaps a pending store waits for it (store
 *  forwarding fails), about 3x the time on LeNet's 5x5 taps; consecutive slivers of one tap
 *  write disjoint runs. Lanes outside a run add +0 (the value is unchanged). */
export function col2imPadded(dst: usize, chStride: i32, Wp: i32, KH: i32, KW: i32, DH: i32, DW: i32,
  rows: i32, tab: usize, nsl: i32, col: usize, ld: i32): void {
  const cs = <usize>chStride << 2, ys = <usize>(DH * Wp) << 2, xs = <usize>DW << 2, cstep = <usize>ld << 2;
  let plane = dst, row = dst, s = dst, crow = col;
  let ky = 0, kx = 0;
  for (let kk = 0; kk < rows; kk++) {
    for (let j = 0; j < nsl; j++) {
      const t = tab + (<usize>j << 4);
      const A = <usize>load<i32>(t) << 2, r = load<i32>(t, 8);
      const c = crow + (<usize>(j * 8) << 2);
      const x0 = v128.load(c), x1 = v128.load(c, 16);
      let d = s + A;
      if (r == 8) {
        // one run of 8 (most slivers)
        v128.store(d, f32x4.add(v128.load(d), x0));
        v128.store(d, f32x4.add(v128.load(d, 16), x1), 16);
        continue;
      }
      // the first run (lanes < r), then the second (r <= lane < v)
      const B = <usize>load<i32>(t, 4) << 2, v = load<i32>(t, 12);
      v128.store(d, f32x4.add(v128.load(d), v128.and(x0, lanes(0, 0, r))));
      v128.store(d, f32x4.add(v128.load(d, 16), v128.and(x1, lanes(4, 0, r))), 16);
      d = s + B;
      v128.store(d, f32x4.add(v128.load(d), v128.and(x0, lanes(0, r, v))));
      v128.store(d, f32x4.add(v128.load(d, 16), v128.and(x1, lanes(4, r, v))), 16);
    }
    crow += cstep;
    s += xs;
    if (++kx == KW) {
      kx = 0;
      if (++ky == KH) {
        ky = 0;
        plane += cs;
        row = plane;
      } else row += ys;
      s = row;
    }
  }
}
