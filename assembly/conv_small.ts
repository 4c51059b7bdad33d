// Small maps, images side by side (src/ops/conv_small.ts): where one image has only a few output
// positions (ResNet-18 on 32x32 inputs ends in 2x2 and 1x1 maps), the per-image kernels of
// conv2d.ts stream every weight once per image for a handful of columns. These kernels lay the
// columns of several images side by side, so that one GEMM (f32_gemm) covers them all: the
// weights are read once per chunk of images. Three helpers around that GEMM:
//   f32_conv2d_cols_batch   the column matrix cols[K][nimg*P] of images n0.. (im2col, zeros
//                           where a tap falls on padding)
//   f32_conv2d_col2im_batch dx = col2im(cols), every element summed over the taps in order
//   f32_conv2d_nop_onp      [nimg][O][P] <-> [O][nimg*P] (the GEMM's layout and the tensor's)
//   f32_conv2d_taps         the weights of the live taps only (or back), see below
// On maps this small some taps only ever meet padding (a 3x3 kernel with padding 1 on a 1x1
// map: only the centre): those taps are left out of the columns and the weights, so the GEMM
// does not multiply zeros (9x less work there).
// One group only (groups > 1 keep the per-image kernels). Items are rows, (image, channel)
// planes or images: a function of the shapes only, so the same bits on any thread count.
import { take } from "./common";

/** cols[k][j], k = c*L + l, j = (n - n0)*P + p: the input under tap t = taps[l] (ky = t / KW,
 *  kx = t % KW) of output position p of image n, or 0 on padding. taps: L tap numbers (i32), or
 *  0 for all KH*KW in order. Items: the K = C*L rows. */
export function f32_conv2d_cols_batch(geo: usize, x: usize, n0: i32, nimg: i32, taps: usize, L: i32, cols: usize, ith: i32, nth: i32): void {
  const C = load<i32>(geo, 4), H = load<i32>(geo, 8), W = load<i32>(geo, 12);
  const KH = load<i32>(geo, 24), KW = load<i32>(geo, 28);
  const SH = load<i32>(geo, 32), SW = load<i32>(geo, 36), PH = load<i32>(geo, 40), PW = load<i32>(geo, 44);
  const DH = load<i32>(geo, 48), DW = load<i32>(geo, 52), HO = load<i32>(geo, 56), WO = load<i32>(geo, 60);
  const K = C * L, P = HO * WO, J = nimg * P;
  for (let k = take(-1, nth); k < K; k = take(k, nth)) {
    const c = k / L, l = k - c * L, t = taps ? load<i32>(taps + (<usize>l << 2)) : l, ky = t / KW, kx = t - ky * KW;
    let dst = cols + (<usize>k * J << 2);
    for (let n = n0; n < n0 + nimg; n++) {
      const plane = x + (<usize>(n * C + c) * H * W << 2);
      for (let oy = 0; oy < HO; oy++) {
        const iy = oy * SH - PH + ky * DH;
        const inRow = <u32>iy < <u32>H;
        const iyIn: i32 = inRow ? iy : 0;
        const row = plane + (<usize>(iyIn * W) << 2);
        for (let ox = 0; ox < WO; ox++) {
          const ix = ox * SW - PW + kx * DW;
          store<f32>(dst, inRow && <u32>ix < <u32>W ? load<f32>(row + (<usize>ix << 2)) : 0);
          dst += 4;
        }
      }
    }
  }
}

/** dx[n][c] (images n0..n0+nimg) = init[c] (or 0) plus, tap by tap in order, the columns
 *  cols[c*L + l][(n - n0)*P + p] of tap taps[l] (or l, taps = 0) at the input positions they
 *  came from. Items: PLANES (image, channel) planes of one image (a plane is a few floats). */
const PLANES = 16;
export function f32_conv2d_col2im_batch(geo: usize, cols: usize, n0: i32, nimg: i32, taps: usize, L: i32, dx: usize, init: usize, ith: i32, nth: i32): void {
  const C = load<i32>(geo, 4), H = load<i32>(geo, 8), W = load<i32>(geo, 12);
  const KH = load<i32>(geo, 24), KW = load<i32>(geo, 28);
  const SH = load<i32>(geo, 32), SW = load<i32>(geo, 36), PH = load<i32>(geo, 40), PW = load<i32>(geo, 44);
  const DH = load<i32>(geo, 48), DW = load<i32>(geo, 52), HO = load<i32>(geo, 56), WO = load<i32>(geo, 60);
  const P = HO * WO, J = nimg * P, HW = H * W, CB = (C + PLANES - 1) / PLANES;
  for (let it = take(-1, nth); it < nimg * CB; it = take(it, nth)) {
    const nl = it / CB, c0 = (it - nl * CB) * PLANES;
    for (let c = c0; c < min(C, c0 + PLANES); c++) col2imPlane(cols, nl, c, C, H, W, KW, SH, SW, PH, PW, DH, DW, HO, WO, P, J, taps, L,
      dx + (<usize>((n0 + nl) * C + c) * HW << 2), init ? load<f32>(init + (<usize>c << 2)) : 0);
  }
}

/** One (image, channel) plane of f32_conv2d_col2im_batch: v, then the taps in order. */
// @ts-ignore: decorator
@inline function col2imPlane(cols: usize, nl: i32, c: i32, C: i32, H: i32, W: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32,
  DH: i32, DW: i32, HO: i32, WO: i32, P: i32, J: i32, taps: usize, L: i32, plane: usize, v: f32): void {
  for (let i = 0; i < H * W; i++) store<f32>(plane + (<usize>i << 2), v);
  for (let l = 0; l < L; l++) {
    const t = taps ? load<i32>(taps + (<usize>l << 2)) : l, ky = t / KW, kx = t - ky * KW;
    let src = cols + ((<usize>(c * L + l) * J + <usize>nl * P) << 2);
    for (let oy = 0; oy < HO; oy++) {
      const iy = oy * SH - PH + ky * DH;
      if (<u32>iy >= <u32>H) {
        src += <usize>WO << 2;
        continue;
      }
      const row = plane + (<usize>(iy * W) << 2);
      for (let ox = 0; ox < WO; ox++) {
        const ix = ox * SW - PW + kx * DW;
        if (<u32>ix < <u32>W) {
          const d = row + (<usize>ix << 2);
          store<f32>(d, load<f32>(d) + load<f32>(src));
        }
        src += 4;
      }
    }
  }
}

/** toOnp = 1: dst[o][n*P + p] = src[n][o][p]; toOnp = 0: dst[n][o][p] = src[o][n*P + p]
 *  (nimg images of O channels of P values). Items: the images. */
export function f32_conv2d_nop_onp(src: usize, dst: usize, nimg: i32, O: i32, P: i32, toOnp: i32, ith: i32, nth: i32): void {
  const J = nimg * P;
  for (let n = take(-1, nth); n < nimg; n = take(n, nth)) {
    for (let o = 0; o < O; o++) {
      const a = src + (<usize>(toOnp ? (n * O + o) * P : o * J + n * P) << 2);
      const b = dst + (<usize>(toOnp ? o * J + n * P : (n * O + o) * P) << 2);
      memory.copy(b, a, <usize>P << 2);
    }
  }
}

/** The taps of rows of KK taps: gather = 1: dst[r][l] = src[r][taps[l]] (rows of L);
 *  gather = 0: dst[r][t] = src[r][l] where t = taps[l], 0 at the other taps (rows of KK).
 *  Items: blocks of TAP_ROWS rows (a row is a few floats: one item per row would spend its
 *  time on the shared work counter; 262,144 rows for a 512x512 layer). */
const TAP_ROWS = 256;
export function f32_conv2d_taps(src: usize, dst: usize, rows: i32, KK: i32, taps: usize, L: i32, gather: i32, ith: i32, nth: i32): void {
  const items = (rows + TAP_ROWS - 1) / TAP_ROWS;
  for (let it = take(-1, nth); it < items; it = take(it, nth)) {
    for (let r = it * TAP_ROWS; r < min(rows, (it + 1) * TAP_ROWS); r++) {
      const a = src + (<usize>(r * (gather ? KK : L)) << 2), b = dst + (<usize>(r * (gather ? L : KK)) << 2);
      if (!gather) for (let t = 0; t < KK; t++) store<f32>(b + (<usize>t << 2), 0);
      for (let l = 0; l < L; l++) {
        const t = load<i32>(taps + (<usize>l << 2));
        if (gather) store<f32>(b + (<usize>l << 2), load<f32>(a + (<usize>t << 2)));
        else store<f32>(b + (<usize>t << 2), load<f32>(a + (<usize>l << 2)));
      }
    }
  }
}
