// 2-D convolution, NCHW activations, OIHW weights, groups; forward, input gradient and weight
// gradient side by side. conv_transpose2d is the same three kernels with the roles swapped
// (its forward is conv2d's input gradient; see src/ops/conv.ts).
//
// Approach: im2col + the packed GEMM of gemm_micro.ts (Chellapilla, Puri & Simard, "High
// performance convolutional neural networks for document processing", 2006; Caffe's im2col),
// without ever building the whole column matrix: every work item expands only the block it
// needs, straight into the layout the micro-kernel reads, in the thread's scratch.
//  - forward: y[n, g] (Og x P) = W_g (Og x K) * col(x[n, g]) (K x P), K = Cg*KH*KW, P = HO*WO.
//    W is packed once per call (f32_gemm_pack_a, G matrices). Items are the positions of one
//    (image, group) in blocks of about equal size (at most 256); the block's columns of col are
//    expanded directly into NR-wide B slivers, K block by K block, and the bias is added in the
//    GEMM epilogue. Where that gives few items (one image's 14x14 or 7x7 map is one block), the
//    output channels' row strips are split into MB blocks as well (src/ops/conv.ts rowBlocks),
//    each block expanding its positions' columns itself.
//  - input gradient: for stride 1 with 12 or more channels per group, a forward convolution of
//    dy with the flipped weights (f32_conv2d_pack_flipped; src/ops/conv.ts says when). Else
//    dcol = W_g^T (K x Og) * dy[n, g] (Og x P), then col2im adds dcol back into dx. Items are
//    (image, group, block of input channels), so each item owns its slice of dx and adds into
//    it in a fixed order (chunk of 256 positions, sliver or run of positions, tap): no two
//    threads write one element. dcol is computed chunk by chunk into scratch.
//  - weight gradient: dW_g (Og x K) = sum over images and positions of dy[n, g] * col^T. Items
//    are (group, block of KB columns of K, range of the (image, position chunk) sequence). Each
//    item sums its range in order; the range count NCH depends on the shapes only and, when
//    above 1, partial sums go to a buffer that f32_conv2d_bwd_weight_reduce adds in range order.
//    B = col^T (positions x taps): on the padded path expanded straight into its packed slivers
//    (conv_pad.ts im2colPaddedT), else expanded into a column block and then packed.
//  - bias gradient: per output channel, images in order, positions in four lanes.
// Items are taken one by one from the job's counter (take, docs/kernels.md).
// A 1x1 convolution with stride 1 and no padding has x's own rows as its columns: the forward
// and the weight gradient pack them straight from x (gemm_micro.ts packB, as a GEMM packs B),
// with no padded copy or tap tables; the same values in the same slivers, so the same bits.
// With stride 1 along rows and outputs at least 7 wide, im2col and col2im read and add into a
// padded copy of the rows an item needs (conv_pad.ts): no bounds checks at all; so does im2col
// with stride 2 and 3 taps or more across, its rows stored as even columns then odd ones. Otherwise they
// go run by run (8 or 4 output positions on one row), tap by tap, with one bounds check per run
// and tap, none when the whole run's window is inside the image.
// Every split and every choice of path is a function of the shapes (or, where it changes no
// sum, of nth), so the results have the same bits on any thread count.
//
// Geometry is passed as a pointer to 17 i32: N C H W O G KH KW SH SW PH PW DH DW HO WO PADF
// (C and O are the channel counts of the convolution's input and output, H W and HO WO their
// sizes; padding is zero). PADF: floats of per-thread scratch for a padded block (conv_pad.ts),
// or 0 for the bounds-checked path.
import { rangeStart, rangeEnd, CHUNK, take } from "./common";
import { MR, NR, KC_MAX, NC_SLIVERS, EP_FIRST, EP_ROWBIAS, kcOf, packAStrip, packB, macroBlock } from "./gemm_micro";
import { stripTiles } from "./gemm_tail";
import { epSpan } from "./conv_epilogue";
import { padBlock, fillBlock, sliverTable, tapTable, im2colPadded, im2colPaddedT, col2imPadded } from "./conv_pad";

/** Positions per block: NC_SLIVERS slivers. */
// @ts-ignore: decorator
@inline const PB: i32 = NC_SLIVERS * NR;
/** Weight-gradient K columns per item (16 slivers). */
// @ts-ignore: decorator
@inline const KB: i32 = 128;

/** Input origin (top-left tap, before dilation) of output positions p0 .. p0+np-1:
 *  iy0[q] = oy*SH - PH, ix0[q] = ox*SW - PW. */
function posTables(p0: i32, np: i32, WO: i32, SH: i32, SW: i32, PH: i32, PW: i32, iy0: usize, ix0: usize): void {
  let oy = p0 / WO, ox = p0 - oy * WO;
  for (let q = 0; q < np; q++) {
    store<i32>(iy0 + (<usize>q << 2), oy * SH - PH);
    store<i32>(ix0 + (<usize>q << 2), ox * SW - PW);
    if (++ox == WO) {
      ox = 0;
      oy++;
    }
  }
}

/** Four input values SW apart from s. */
// @ts-ignore: decorator
@inline function gather4(s: usize, SW: i32): v128 {
  if (SW == 1) return v128.load(s);
  if (SW == 2) return f32x4.shuffle(v128.load(s), v128.load(s, 12), 0, 2, 5, 7);
  const st = <usize>SW << 2;
  let v = f32x4.splat(load<f32>(s));
  v = f32x4.replace_lane(v, 1, load<f32>(s + st));
  v = f32x4.replace_lane(v, 2, load<f32>(s + 2 * st));
  return f32x4.replace_lane(v, 3, load<f32>(s + 3 * st));
}

/** Expands rows k0 .. k0+kc of the column matrix (k = (ci*KH + ky)*KW + kx) for nq positions
 *  (origins in iy0/ix0) of one image-group whose channel 0 is at `plane`. Value (kk, q) goes to
 *  dst + kk*ldk + (q>>3)*lds + (q&7) floats: ldk = NR, lds = kc*NR writes packed B slivers,
 *  ldk = row length, lds = 8 writes plain rows. Positions nq .. nzero-1 are zero-filled.
 *  Runs of 8 (or 4) positions on one output row are expanded tap by tap with one bounds check
 *  per run and tap; runs across rows element by element. */
function im2col(plane: usize, H: i32, W: i32, KH: i32, KW: i32, DH: i32, DW: i32, SW: i32,
  k0: i32, kc: i32, iy0: usize, ix0: usize, nq: i32, nzero: i32, dst: usize, ldk: i32, lds: i32): void {
  const KK = KH * KW, HW = <usize>(H * W) << 2, dstep = <usize>ldk << 2;
  const ci0 = k0 / KK, ky0 = (k0 - ci0 * KK) / KW, kx0 = k0 - ci0 * KK - ky0 * KW;
  const zero = f32x4.splat(0);
  let q0 = 0;
  while (q0 < nzero) {
    let d = dst + (<usize>((q0 >> 3) * lds + (q0 & 7)) << 2);
    // a run: 8 (or 4) positions on one output row
    let R = 0;
    if (q0 + 8 <= nq && (q0 & 7) == 0 && load<i32>(iy0 + (<usize>q0 << 2)) == load<i32>(iy0 + (<usize>(q0 + 7) << 2))) R = 8;
    else if (q0 + 4 <= nq && load<i32>(iy0 + (<usize>q0 << 2)) == load<i32>(iy0 + (<usize>(q0 + 3) << 2))) R = 4;
    if (R) {
      const iyb = load<i32>(iy0 + (<usize>q0 << 2)), ixb = load<i32>(ix0 + (<usize>q0 << 2));
      const span = (R - 1) * SW;
      let src = plane + <usize>ci0 * HW;
      let ky = ky0, kx = kx0;
      if (iyb >= 0 && iyb + (KH - 1) * DH < H && ixb >= 0 && ixb + (KW - 1) * DW + span < W) {
        // every tap of the run is inside the image (most runs): no bounds checks
        let s0 = src + (<usize>(iyb * W + ixb) << 2);
        const ys = <usize>(DH * W) << 2, xs = <usize>DW << 2;
        let s = s0 + <usize>ky * ys + <usize>kx * xs;
        if (R == 8 && SW == 1) {
          // the common case (stride 1): a plain copy of 8 floats per tap
          for (let kk = 0; kk < kc; kk++) {
            v128.store(d, v128.load(s));
            v128.store(d, v128.load(s, 16), 16);
            d += dstep;
            s += xs;
            if (++kx == KW) {
              kx = 0;
              if (++ky == KH) {
                ky = 0;
                s0 += HW;
              }
              s = s0 + <usize>ky * ys;
            }
          }
        } else {
          for (let kk = 0; kk < kc; kk++) {
            v128.store(d, gather4(s, SW));
            if (R == 8) v128.store(d, gather4(s + (<usize>(4 * SW) << 2), SW), 16);
            d += dstep;
            s += xs;
            if (++kx == KW) {
              kx = 0;
              if (++ky == KH) {
                ky = 0;
                s0 += HW;
              }
              s = s0 + <usize>ky * ys;
            }
          }
        }
        q0 += R;
        continue;
      }
      for (let kk = 0; kk < kc; kk++) {
        const iy = iyb + ky * DH, ix = ixb + kx * DW;
        if (<u32>iy >= <u32>H) {
          v128.store(d, zero);
          if (R == 8) v128.store(d, zero, 16);
        } else {
          const row = src + (<usize>(iy * W) << 2);
          if (ix >= 0 && ix + span < W) {
            const s = row + (<usize>ix << 2);
            v128.store(d, gather4(s, SW));
            if (R == 8) v128.store(d, gather4(s + (<usize>(4 * SW) << 2), SW), 16);
          } else {
            for (let j = 0; j < R; j++) {
              const x = ix + j * SW;
              store<f32>(d + (<usize>j << 2), <u32>x < <u32>W ? load<f32>(row + (<usize>x << 2)) : 0);
            }
          }
        }
        d += dstep;
        if (++kx == KW) {
          kx = 0;
          if (++ky == KH) {
            ky = 0;
            src += HW;
          }
        }
      }
      q0 += R;
      continue;
    }
    // positions across rows or past nq, one at a time
    for (let j = 0; j < 4 && q0 + j < nzero; j++) {
      const q = q0 + j;
      let dd = d + (<usize>j << 2);
      if (q >= nq) {
        for (let kk = 0; kk < kc; kk++) {
          store<f32>(dd, 0);
          dd += dstep;
        }
        continue;
      }
      const iyb = load<i32>(iy0 + (<usize>q << 2)), ixb = load<i32>(ix0 + (<usize>q << 2));
      let src = plane + <usize>ci0 * HW;
      let ky = ky0, kx = kx0;
      for (let kk = 0; kk < kc; kk++) {
        const y = iyb + ky * DH, x = ixb + kx * DW;
        store<f32>(dd, <u32>y < <u32>H && <u32>x < <u32>W ? load<f32>(src + (<usize>(y * W + x) << 2)) : 0);
        dd += dstep;
        if (++kx == KW) {
          kx = 0;
          if (++ky == KH) {
            ky = 0;
            src += HW;
          }
        }
      }
    }
    q0 += 4;
  }
}

/** The inverse of im2col: adds rows 0 .. rows-1 of a plain column block (row stride ld floats,
 *  nq positions, k = (ci*KH + ky)*KW + kx from channel 0 at `plane`) into the image, run by
 *  run of positions as im2col reads them. */
function col2imAdd(plane: usize, H: i32, W: i32, KH: i32, KW: i32, DH: i32, DW: i32, SW: i32,
  rows: i32, iy0: usize, ix0: usize, nq: i32, col: usize, ld: i32): void {
  const HW = <usize>(H * W) << 2, cstep = <usize>ld << 2;
  let q0 = 0;
  while (q0 < nq) {
    let c = col + (<usize>q0 << 2);
    let R = 1;
    if (q0 + 8 <= nq && load<i32>(iy0 + (<usize>q0 << 2)) == load<i32>(iy0 + (<usize>(q0 + 7) << 2))) R = 8;
    else if (q0 + 4 <= nq && load<i32>(iy0 + (<usize>q0 << 2)) == load<i32>(iy0 + (<usize>(q0 + 3) << 2))) R = 4;
    const iyb = load<i32>(iy0 + (<usize>q0 << 2)), ixb = load<i32>(ix0 + (<usize>q0 << 2));
    const span = (R - 1) * SW;
    let dst = plane;
    let ky = 0, kx = 0;
    if (R > 1 && iyb >= 0 && iyb + (KH - 1) * DH < H && ixb >= 0 && ixb + (KW - 1) * DW + span < W) {
      // every tap of the run is inside the image: no bounds checks
      let d0 = plane + (<usize>(iyb * W + ixb) << 2);
      const ys = <usize>(DH * W) << 2, xs = <usize>DW << 2, st = <usize>SW << 2;
      let d = d0;
      for (let kk = 0; kk < rows; kk++) {
        if (SW == 1) {
          v128.store(d, f32x4.add(v128.load(d), v128.load(c)));
          if (R == 8) v128.store(d, f32x4.add(v128.load(d, 16), v128.load(c, 16)), 16);
        } else {
          // stride > 1: the run's targets are SW apart in one row
          let e = d;
          for (let j = 0; j < R; j++) {
            store<f32>(e, load<f32>(e) + load<f32>(c + (<usize>j << 2)));
            e += st;
          }
        }
        c += cstep;
        d += xs;
        if (++kx == KW) {
          kx = 0;
          if (++ky == KH) {
            ky = 0;
            d0 += HW;
          }
          d = d0 + <usize>ky * ys;
        }
      }
      q0 += R;
      continue;
    }
    for (let kk = 0; kk < rows; kk++) {
      const iy = iyb + ky * DH, ix = ixb + kx * DW;
      if (<u32>iy < <u32>H) {
        const row = dst + (<usize>(iy * W) << 2);
        if (SW == 1 && R > 1 && ix >= 0 && ix + span < W) {
          const d = row + (<usize>ix << 2);
          v128.store(d, f32x4.add(v128.load(d), v128.load(c)));
          if (R == 8) v128.store(d, f32x4.add(v128.load(d, 16), v128.load(c, 16)), 16);
        } else {
          for (let j = 0; j < R; j++) {
            const x = ix + j * SW;
            if (<u32>x < <u32>W) {
              const d = row + (<usize>x << 2);
              store<f32>(d, load<f32>(d) + load<f32>(c + (<usize>j << 2)));
            }
          }
        }
      }
      c += cstep;
      if (++kx == KW) {
        kx = 0;
        if (++ky == KH) {
          ky = 0;
          dst += HW;
        }
      }
    }
    q0 += R;
  }
}

// ---- forward ----

// Scratch per thread (floats): B block KC_MAX*PB, position tables 2*PB (i32), tile MR*NR.

/** y = conv2d(x, W) (+ bias); pw: W packed by f32_gemm_pack_a (G matrices Og x K). With ep
 *  (assembly/conv_epilogue.ts; 0 = none) each item applies conv2d_fused's epilogue to its block
 *  once its last K block is summed, while the block is still in cache. */
export function f32_conv2d_fwd(geo: usize, x: usize, pw: usize, bias: usize, y: usize, NBK: i32, MB: i32, ep: usize, scratch: usize, scratchBytes: i32, ith: i32, nth: i32): void {
  const N = load<i32>(geo), C = load<i32>(geo, 4), H = load<i32>(geo, 8), W = load<i32>(geo, 12);
  const O = load<i32>(geo, 16), G = load<i32>(geo, 20), KH = load<i32>(geo, 24), KW = load<i32>(geo, 28);
  const SH = load<i32>(geo, 32), SW = load<i32>(geo, 36), PH = load<i32>(geo, 40), PW = load<i32>(geo, 44);
  const DH = load<i32>(geo, 48), DW = load<i32>(geo, 52), HO = load<i32>(geo, 56), WO = load<i32>(geo, 60);
  const Cg = C / G, Og = O / G, K = Cg * KH * KW, P = HO * WO;
  const S = (Og + MR - 1) / MR, J = (P + NR - 1) / NR;
  const pb = scratch + <usize>ith * scratchBytes;
  const iy0 = pb + (<usize>(KC_MAX * PB) << 2), ix0 = iy0 + (<usize>PB << 2), tile = ix0 + (<usize>PB << 2);
  const kcb = kcOf(K);
  const flags = bias ? EP_ROWBIAS : 0;
  const padf = load<i32>(geo, 64), Wp = W + 2 * PW, pad = tile + (<usize>(MR * NR) << 2);
  const direct = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0;
  // items: the slivers of each (image, group) in NBK blocks of about equal size (at most
  // NC_SLIVERS: NBK >= ceil(J / NC_SLIVERS), and at most J), times MB blocks of the output
  // channels' row strips (MB > 1 where the positions alone give too few items: one image's 7x7
  // or 14x14 maps are one block), taken one by one; an item of a row block expands its
  // positions' columns itself. src/ops/conv.ts forwardSplit picks NBK and MB.
  const T = N * G * NBK * MB;
  for (let it0 = take(-1, nth); it0 < T; it0 = take(it0, nth)) {
    const it = it0 / MB, mb = it0 - it * MB, s0 = mb * S / MB, s1 = (mb + 1) * S / MB;
    const ng = it / NBK, b = it - ng * NBK;
    const j = b * J / NBK, nsl = (b + 1) * J / NBK - j;
    const n = ng / G, g = ng - n * G;
    const p0 = j * NR, np = min(nsl * NR, P - p0);
    const plane = x + (<usize>(n * C + g * Cg) * H * W << 2);
    const a = pw + (<usize>g * S * K * MR << 2);
    const c = y + ((<usize>(n * O + g * Og) * P + p0) << 2);
    let nrows = 0;
    if (direct) {
      // a 1x1 convolution, stride 1, no padding: the columns are x's own rows, packed as a GEMM's B
    } else if (padf) {
      const oyLo = p0 / WO;
      nrows = ((p0 + np - 1) / WO - oyLo) * SH + (KH - 1) * DH + 1;
      padBlock(plane, 0, Cg, H, W, oyLo * SH - PH, nrows, PW, Wp, pad, SW);
      sliverTable(p0, np, WO, SH, Wp, oyLo, iy0);
    } else posTables(p0, np, WO, SH, SW, PH, PW, iy0, ix0);
    for (let pc = 0; pc < K; pc += kcb) {
      const kc = min(kcb, K - pc);
      if (direct) packB(plane, P, 0, pc, kc, p0, np, pb);
      else if (padf) {
        tapTable(nrows * Wp, Wp, KH, KW, DH, DW, pc, kc, ix0, SW);
        im2colPadded(pad, ix0, kc, iy0, nsl, pb, NR, kc * NR);
      }
      else im2col(plane, H, W, KH, KW, DH, DW, SW, pc, kc, iy0, ix0, np, nsl * NR, pb, NR, kc * NR);
      macroBlock(a, K, pc, s0, s1, pb, kc, nsl, c, P, Og, np, 1, 0, pc == 0 ? flags | EP_FIRST : flags & ~EP_FIRST,
        bias + (<usize>(g * Og) << 2), 0, tile);
    }
    if (ep)
      for (let r = s0 * MR, re = min(s1 * MR, Og); r < re; r++) {
        const o = g * Og + r;
        epSpan(ep, o, y, (<usize>(n * O + o) * P + p0) << 2, np);
      }
  }
}

// ---- input gradient ----

/** Packs the weights of the convolution that computes a stride-1 convolution's input gradient
 *  as a forward one (src/ops/conv.ts): for each group, the Cg x (Og*KH*KW) matrix
 *  W'[c, (o*KH + ky)*KW + kx] = W[g*Og + o, c, KH-1-ky, KW-1-kx] (w: O x Cg x KH x KW), as
 *  f32_gemm_pack_a lays out its G matrices: MR-row strips over the whole K, rows past Cg zero. */
export function f32_conv2d_pack_flipped(w: usize, O: i32, Cg: i32, KH: i32, KW: i32, G: i32, dst: usize, ith: i32, nth: i32): void {
  const Og = O / G, KK = KH * KW, K = Og * KK, S = (Cg + MR - 1) / MR;
  for (let it = take(-1, nth); it < G * S; it = take(it, nth)) {
    const g = it / S, s = it - g * S;
    let d = dst + (<usize>it * K * MR << 2);
    for (let o = 0; o < Og; o++)
      for (let t = 0; t < KK; t++) {
        // tap t of W' is tap KK-1-t of W
        const src = w + ((<usize>((g * Og + o) * Cg) * KK + (KK - 1 - t)) << 2);
        for (let r = 0; r < MR; r++) {
          const c = s * MR + r;
          store<f32>(d + (<usize>r << 2), c < Cg ? load<f32>(src + (<usize>(c * KK) << 2)) : 0);
        }
        d += MR << 2;
      }
  }
}

// Scratch per thread (floats), rows = ceil(Cg/NB)*KH*KW: A strips ceil(rows/MR)*MR*Og,
// B block KC_MAX*PB, dcol rows*PB, position tables 2*PB (i32), tile MR*NR.

/** dx = conv2d's input gradient for dy (the Cg input channels of a group in NB blocks, block b
 *  = channels b*Cg/NB .. (b+1)*Cg/NB); with `init` (C floats, or 0) dx starts from
 *  init[channel] instead of zero (conv_transpose2d's bias). Items are (group, channel block,
 *  image), block-major: the items a thread takes come in increasing order, so it packs a
 *  block's rows of W_g^T once and keeps them for the block's next images (a large layer's W
 *  does not stay in cache from one image to the next; repacking it per image cost 8%). */
export function f32_conv2d_bwd_input(geo: usize, dy: usize, w: usize, dx: usize, init: usize, NB: i32, scratch: usize, scratchBytes: i32, ith: i32, nth: i32): void {
  const N = load<i32>(geo), C = load<i32>(geo, 4), H = load<i32>(geo, 8), W = load<i32>(geo, 12);
  const O = load<i32>(geo, 16), G = load<i32>(geo, 20), KH = load<i32>(geo, 24), KW = load<i32>(geo, 28);
  const SH = load<i32>(geo, 32), PH = load<i32>(geo, 40), PW = load<i32>(geo, 44);
  const DH = load<i32>(geo, 48), HO = load<i32>(geo, 56), WO = load<i32>(geo, 60);
  const Cg = C / G, Og = O / G, KK = KH * KW, K = Cg * KK, P = HO * WO;
  const rowsMax = (Cg + NB - 1) / NB * KK, SM = (rowsMax + MR - 1) / MR;
  const pa = scratch + <usize>ith * scratchBytes;
  const pb = pa + (<usize>(SM * MR * Og) << 2);
  const dcol = pb + (<usize>(KC_MAX * PB) << 2);
  const iy0 = dcol + (<usize>(rowsMax * PB) << 2), ix0 = iy0 + (<usize>PB << 2), tile = ix0 + (<usize>PB << 2);
  const kcb = kcOf(Og);
  // padded path: dx of the item's channels is summed in a padded block of all the rows the
  // outputs touch (Hp x Wp per channel), then cropped into dx
  const padf = load<i32>(geo, 64), Wp = W + 2 * PW, Hp = (HO - 1) * SH + (KH - 1) * DH + 1;
  const pad = tile + (<usize>(MR * NR) << 2), chs = Hp * Wp;
  const T = G * NB * N;
  let packed = -1; // the (group, block) whose rows pa holds
  for (let it = take(-1, nth); it < T; it = take(it, nth)) {
    const gb = it / N, n = it - gb * N, g = gb / NB, cb = gb - g * NB;
    const c0 = cb * Cg / NB, nc = (cb + 1) * Cg / NB - c0, rows = nc * KK, S = (rows + MR - 1) / MR;
    const plane = dx + (<usize>(n * C + g * Cg + c0) * H * W << 2);
    for (let ci = 0; ci < nc; ci++) {
      const v = init ? load<f32>(init + (<usize>(g * Cg + c0 + ci) << 2)) : 0;
      if (padf) fillBlock(pad + (<usize>(ci * chs) << 2), chs, v);
      else fillBlock(plane + (<usize>ci * H * W << 2), H * W, v);
    }
    if (Og > 0) {
      if (gb != packed) {
        // W_g^T rows c0*KK.. (columns of W_g), all Og of them: strips of Og floats
        const wg = w + ((<usize>(g * Og) * K + c0 * KK) << 2);
        for (let s = 0; s < S; s++) packAStrip(wg, K, 1, s * MR, min(MR, rows - s * MR), 0, Og, pa + (<usize>(s * Og * MR) << 2));
        packed = gb;
      }
      const dyg = dy + (<usize>(n * O + g * Og) * P << 2);
      for (let p0 = 0; p0 < P; p0 += PB) {
        const np = min(PB, P - p0), nsl = (np + NR - 1) / NR;
        for (let pc = 0; pc < Og; pc += kcb) {
          const kc = min(kcb, Og - pc);
          packB(dyg, P, 0, pc, kc, p0, np, pb);
          macroBlock(pa, Og, pc, 0, S, pb, kc, nsl, dcol, PB, rows, np, 1, 0, pc == 0 ? EP_FIRST : 0, 0, 0, tile);
        }
        col2imChunk(geo, pad, plane, rows, p0, np, dcol, iy0, ix0);
      }
    }
    if (padf) cropBlock(pad, nc, Hp, Wp, PH, PW, H, W, plane, init ? init + (<usize>(g * Cg + c0) << 2) : 0);
  }
}

// Input gradient in two passes, for convolutions with few (image, group, channel) items (an
// RGB first layer on one image has 3): f32_conv2d_bwd_input_cols computes the whole column
// matrix dcol = W_g^T * dy[n, g] for every (image, group) into `cols` ([N*G][Cg*KH*KW][P]),
// items being (image, group, block of PB positions), so both threads share the GEMM, the bulk
// of the work; f32_conv2d_col2im then adds it into dx, items (image, group, channel). Each dx
// element gets the same additions in the same order as in f32_conv2d_bwd_input (position
// chunk, sliver or run, tap), and each dcol element the same sum: the bits are the same.

/** dcol for every (image, group) by blocks of PB positions: block b of image-group ng at
 *  cols + (ng*NPB + b)*K*PB floats, row r of it r*PB further on, K = Cg*KH*KW. Scratch per
 *  thread (floats): A strips ceil(K/MR)*MR*KC_MAX, B block KC_MAX*PB, tile MR*NR. */
export function f32_conv2d_bwd_input_cols(geo: usize, dy: usize, w: usize, cols: usize, scratch: usize, scratchBytes: i32, ith: i32, nth: i32): void {
  const N = load<i32>(geo), C = load<i32>(geo, 4), O = load<i32>(geo, 16), G = load<i32>(geo, 20);
  const KH = load<i32>(geo, 24), KW = load<i32>(geo, 28), HO = load<i32>(geo, 56), WO = load<i32>(geo, 60);
  const Cg = C / G, Og = O / G, K = Cg * KH * KW, P = HO * WO, S = (K + MR - 1) / MR;
  const pa = scratch + <usize>ith * scratchBytes;
  const pb = pa + (<usize>(S * MR * KC_MAX) << 2);
  const tile = pb + (<usize>(KC_MAX * PB) << 2);
  const kcb = kcOf(Og), NPB = (P + PB - 1) / PB, T = N * G * NPB;
  for (let it = take(-1, nth); it < T; it = take(it, nth)) {
    const ng = it / NPB, p0 = (it - ng * NPB) * PB, np = min(PB, P - p0), nsl = (np + NR - 1) / NR;
    const g = ng % G;
    const dyg = dy + (<usize>ng * Og * P << 2); // (n*G + g)*Og = n*O + g*Og
    const wg = w + (<usize>(g * Og) * K << 2);
    // block-major: each item's K x PB block is contiguous (rows PB apart, as in the one-pass
    // kernel's scratch), not K rows P apart (hundreds of pages touched per tile)
    const dcol = cols + (<usize>it * K * PB << 2);
    if (Og == 0) {
      for (let r = 0; r < K; r++) fillBlock(dcol + (<usize>r * PB << 2), np, 0);
      continue;
    }
    for (let pc = 0; pc < Og; pc += kcb) {
      const kc = min(kcb, Og - pc);
      for (let s = 0; s < S; s++) packAStrip(wg, K, 1, s * MR, min(MR, K - s * MR), pc, kc, pa + (<usize>(s * kc * MR) << 2));
      packB(dyg, P, 0, pc, kc, p0, np, pb);
      macroBlock(pa, kc, 0, 0, S, pb, kc, nsl, dcol, PB, K, np, 1, 0, pc == 0 ? EP_FIRST : 0, 0, 0, tile);
    }
  }
}

/** dx += col2im(cols) (cols from f32_conv2d_bwd_input_cols), dx starting from init[channel]
 *  (or zero). Scratch per thread (floats): position tables 2*PB (i32), then the padded block
 *  of one channel (PADF floats) on the padded path. */
export function f32_conv2d_col2im(geo: usize, cols: usize, dx: usize, init: usize, scratch: usize, scratchBytes: i32, ith: i32, nth: i32): void {
  const N = load<i32>(geo), C = load<i32>(geo, 4), H = load<i32>(geo, 8), W = load<i32>(geo, 12);
  const G = load<i32>(geo, 20), KH = load<i32>(geo, 24), KW = load<i32>(geo, 28);
  const SH = load<i32>(geo, 32), SW = load<i32>(geo, 36), PH = load<i32>(geo, 40), PW = load<i32>(geo, 44);
  const DH = load<i32>(geo, 48), DW = load<i32>(geo, 52), HO = load<i32>(geo, 56), WO = load<i32>(geo, 60);
  const padf = load<i32>(geo, 64);
  const Cg = C / G, KK = KH * KW, K = Cg * KK, P = HO * WO;
  const iy0 = scratch + <usize>ith * scratchBytes, ix0 = iy0 + (<usize>PB << 2), pad = ix0 + (<usize>PB << 2);
  const Wp = W + 2 * PW, Hp = (HO - 1) * SH + (KH - 1) * DH + 1, chs = Hp * Wp;
  const T = N * C;
  for (let it = take(-1, nth); it < T; it = take(it, nth)) {
    const ng = it / Cg, ci = it - ng * Cg, g = ng % G;
    const plane = dx + (<usize>it * H * W << 2); // channel (n, g*Cg + ci) = image-channel it
    const v = init ? load<f32>(init + (<usize>(g * Cg + ci) << 2)) : 0;
    if (padf) fillBlock(pad, chs, v);
    else fillBlock(plane, H * W, v);
    const NPB = (P + PB - 1) / PB;
    for (let p0 = 0, blk = 0; p0 < P; p0 += PB, blk++) {
      const np = min(PB, P - p0);
      const col = cols + (<usize>((ng * NPB + blk) * K + ci * KK) * PB << 2);
      col2imChunk(geo, pad, plane, KK, p0, np, col, iy0, ix0);
    }
    if (padf) cropBlock(pad, 1, Hp, Wp, PH, PW, H, W, plane, init ? init + (<usize>(g * Cg + ci) << 2) : 0);
  }
}

/** Adds `rows` rows of a column block (positions p0 .. p0+np-1, rows PB floats apart) into dx:
 *  into the padded block `pad` (channel stride Hp*Wp) on the padded path (PADF > 0), else into
 *  the planes at `plane`. Both input-gradient kernels go through here, so the one-pass and the
 *  two-pass one add in the same order. iy0/ix0: PB i32 each of scratch for the position tables. */
function col2imChunk(geo: usize, pad: usize, plane: usize, rows: i32, p0: i32, np: i32, col: usize, iy0: usize, ix0: usize): void {
  const H = load<i32>(geo, 8), W = load<i32>(geo, 12), KH = load<i32>(geo, 24), KW = load<i32>(geo, 28);
  const SH = load<i32>(geo, 32), SW = load<i32>(geo, 36), PH = load<i32>(geo, 40), PW = load<i32>(geo, 44);
  const DH = load<i32>(geo, 48), DW = load<i32>(geo, 52), HO = load<i32>(geo, 56), WO = load<i32>(geo, 60);
  const nsl = (np + NR - 1) / NR;
  if (load<i32>(geo, 64)) {
    const Wp = W + 2 * PW, Hp = (HO - 1) * SH + (KH - 1) * DH + 1;
    sliverTable(p0, np, WO, SH, Wp, 0, iy0);
    col2imPadded(pad, Hp * Wp, Wp, KH, KW, DH, DW, rows, iy0, nsl, col, PB);
  } else {
    posTables(p0, np, WO, SH, SW, PH, PW, iy0, ix0);
    col2imAdd(plane, H, W, KH, KW, DH, DW, SW, rows, iy0, ix0, np, col, PB);
  }
}

/** Copies the image part of nc padded blocks (Hp x Wp, image row iy at block row iy + PH,
 *  column ix at ix + PW) into nc planes H x W; rows past the block (no output reaches them)
 *  get the start value, init[ci] (init: nc floats, or 0 for zero). */
function cropBlock(pad: usize, nc: i32, Hp: i32, Wp: i32, PH: i32, PW: i32, H: i32, W: i32, plane: usize, init: usize): void {
  for (let ci = 0; ci < nc; ci++) {
    const b = pad + (<usize>(ci * Hp * Wp) << 2), d = plane + (<usize>(ci * H * W) << 2);
    const fill = init ? load<f32>(init + (<usize>ci << 2)) : 0;
    for (let iy = 0; iy < H; iy++) {
      const dr = d + (<usize>(iy * W) << 2);
      if (iy + PH >= Hp) {
        fillBlock(dr, W, fill);
        continue;
      }
      const sr = b + (<usize>((iy + PH) * Wp + PW) << 2);
      let i = 0;
      for (; i + 4 <= W; i += 4) v128.store(dr + (<usize>i << 2), v128.load(sr + (<usize>i << 2)));
      for (; i < W; i++) store<f32>(dr + (<usize>i << 2), load<f32>(sr + (<usize>i << 2)));
    }
  }
}

// ---- weight gradient ----

// Scratch per thread (floats): A strip MR*KC_MAX, B slivers KB*KC_MAX, col rows KB*KC_MAX,
// position tables 2*KC_MAX (i32), tile MR*NR. Position chunks are KC_MAX long.

/** dW (or NCH partial sums of it, O*K floats apart, when NCH > 1) for input x and dy. */
export function f32_conv2d_bwd_weight(geo: usize, x: usize, dy: usize, dw: usize, NCH: i32, scratch: usize, scratchBytes: i32, ith: i32, nth: i32): void {
  const N = load<i32>(geo), C = load<i32>(geo, 4), H = load<i32>(geo, 8), W = load<i32>(geo, 12);
  const O = load<i32>(geo, 16), G = load<i32>(geo, 20), KH = load<i32>(geo, 24), KW = load<i32>(geo, 28);
  const SH = load<i32>(geo, 32), SW = load<i32>(geo, 36), PH = load<i32>(geo, 40), PW = load<i32>(geo, 44);
  const DH = load<i32>(geo, 48), DW = load<i32>(geo, 52), HO = load<i32>(geo, 56), WO = load<i32>(geo, 60);
  const Cg = C / G, Og = O / G, K = Cg * KH * KW, P = HO * WO;
  const S = (Og + MR - 1) / MR;
  const pa = scratch + <usize>ith * scratchBytes;
  const pb = pa + (<usize>(MR * KC_MAX) << 2);
  const col = pb + (<usize>(KB * KC_MAX) << 2);
  const iy0 = col + (<usize>(KB * KC_MAX) << 2), ix0 = iy0 + (<usize>KC_MAX << 2), tile = ix0 + (<usize>KC_MAX << 2);
  const KK = KH * KW, padf = load<i32>(geo, 64), Wp = W + 2 * PW, pad = tile + (<usize>(MR * NR) << 2);
  const direct = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0;
  const NK = (K + KB - 1) / KB;
  const CPI = (P + KC_MAX - 1) / KC_MAX; // position chunks per image
  const L = N * CPI; // the (image, chunk) sequence
  const T = G * NK * NCH;
  for (let it = take(-1, nth); it < T; it = take(it, nth)) {
    const r = it / (G * NK), gk = it - r * (G * NK);
    const g = gk / NK, kb = gk - g * NK;
    const k0 = kb * KB, nk = min(KB, K - k0), nsl = (nk + NR - 1) / NR;
    const c = dw + ((<usize>r * O * K + <usize>(g * Og) * K + k0) << 2);
    const l0 = rangeStart(L, r, NCH), l1 = rangeEnd(L, r, NCH);
    if (l0 >= l1) {
      // an empty range (more ranges than chunks) contributes zeros
      for (let i = 0; i < Og; i++)
        for (let j = 0; j < nk; j++) store<f32>(c + ((<usize>i * K + j) << 2), 0);
      continue;
    }
    for (let l = l0; l < l1; l++) {
      const n = l / CPI, p0 = (l - n * CPI) * KC_MAX, kc = min(KC_MAX, P - p0);
      const plane = x + (<usize>(n * C + g * Cg) * H * W << 2);
      // B = col^T: kc positions x nk taps
      if (direct) packB(plane, P, 1, p0, kc, k0, nk, pb); // 1x1, stride 1, no padding: x's own rows
      else if (padf) {
        // straight from the padded block into B, 8 positions x 8 taps at a time
        const oyLo = p0 / WO, nrows = ((p0 + kc - 1) / WO - oyLo) * SH + (KH - 1) * DH + 1;
        const ci0 = k0 / KK, nch = (k0 + nk - 1) / KK - ci0 + 1;
        padBlock(plane, ci0, nch, H, W, oyLo * SH - PH, nrows, PW, Wp, pad, SW);
        sliverTable(p0, kc, WO, SH, Wp, oyLo, iy0);
        tapTable(nrows * Wp, Wp, KH, KW, DH, DW, k0 - ci0 * KK, nk, ix0, SW);
        im2colPaddedT(pad, ix0, nk, iy0, (kc + 7) >> 3, kc, pb, col);
      } else {
        // col: nk rows of kc positions, then transposed into B
        posTables(p0, kc, WO, SH, SW, PH, PW, iy0, ix0);
        im2col(plane, H, W, KH, KW, DH, DW, SW, k0, nk, iy0, ix0, kc, kc, col, kc, 8);
        packB(col, kc, 1, 0, kc, 0, nk, pb);
      }
      const dyg = dy + ((<usize>(n * O + g * Og) * P + p0) << 2);
      const flags = l == l0 ? EP_FIRST : 0;
      for (let s = 0; s < S; s++) {
        const mr = min(MR, Og - s * MR);
        packAStrip(dyg, P, 0, s * MR, mr, 0, kc, pa);
        const crow = c + (<usize>(s * MR) * K << 2);
        stripTiles(pa, pb, kc, nsl, crow, K, mr, nk, 1, 0, flags, 0, 0, tile);
      }
    }
  }
}

/** dw = partial[0] + partial[1] + ... (NCH partial sums of n floats each, in order). */
export function f32_conv2d_bwd_weight_reduce(partial: usize, NCH: i32, n: i32, dw: usize, ith: i32, nth: i32): void {
  const T = (n + CHUNK - 1) / CHUNK; // items: chunks of CHUNK floats
  for (let it = take(-1, nth); it < T; it = take(it, nth)) reduceChunk(partial, NCH, n, it * CHUNK, min(n, (it + 1) * CHUNK), dw);
}

// @ts-ignore: decorator
@inline function reduceChunk(partial: usize, NCH: i32, n: i32, b: i32, e: i32, dw: usize): void {
  const stride = <usize>n << 2;
  let i = b;
  for (; i + 4 <= e; i += 4) {
    let p = partial + (<usize>i << 2);
    let acc = v128.load(p);
    for (let r = 1; r < NCH; r++) {
      p += stride;
      acc = f32x4.add(acc, v128.load(p));
    }
    v128.store(dw + (<usize>i << 2), acc);
  }
  for (; i < e; i++) {
    let p = partial + (<usize>i << 2);
    let acc = load<f32>(p);
    for (let r = 1; r < NCH; r++) {
      p += stride;
      acc += load<f32>(p);
    }
    store<f32>(dw + (<usize>i << 2), acc);
  }
}

// ---- bias gradient ----

/** db[o] = sum over images and positions of dy[n, o, :]: images in order, positions in four
 *  lanes (then a scalar tail), lanes added in a fixed order. */
export function f32_conv2d_bwd_bias(dy: usize, N: i32, O: i32, P: i32, db: usize, ith: i32, nth: i32): void {
  for (let o = take(-1, nth); o < O; o = take(o, nth)) {
    let acc = f32x4.splat(0);
    let tail: f32 = 0;
    for (let n = 0; n < N; n++) {
      const p = dy + (<usize>(n * O + o) * P << 2);
      let i = 0;
      for (; i + 4 <= P; i += 4) acc = f32x4.add(acc, v128.load(p + (<usize>i << 2)));
      for (; i < P; i++) tail += load<f32>(p + (<usize>i << 2));
    }
    store<f32>(db + (<usize>o << 2),
      ((f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1)) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3))) + tail);
  }
}
