// The weight gradient of a 3x3 stride-1 convolution by Winograd F(m x m, 3x3), m = 2 or 4, and of
// a 5x5 one by F(2x2, 5x5): the forward's algorithm transposed (docs/kernels.md). The forward
// computes each m x m output tile as Y = A^T [U ⊙ V] A with U = G g G^T and V = B^T d B (d: the
// tile's (m+r-1) x (m+r-1) input patch, zeros outside the image), so
//   dU = sum over tiles of (A dY A^T) ⊙ V,    dg = G^T dU G,
// with dY zero at outputs past the map. For every one of the T = (m+r-1)^2 points t that is a
// GEMM over the tiles: dU_t (O x C) = Z_t (O x tiles) * V_t^T (tiles x C), Z = A dY A^T: per
// (o, c), 16 products per 2x2 tile where im2col's weight gradient does 36 (2.25x less
// arithmetic), 36 per 4x4 tile where it does 144 (4x), 36 per 2x2 tile of a 5x5 kernel where it
// does 100 (2.8x). F(2x2,3x3)'s transforms are exact in f32 but for G^T's halves, so its
// gradient is as accurate as im2col's; F(4x4,3x3)'s and F(2x2,5x5)'s G have 1/6 and 1/24 (a few
// times im2col's error, src/ops/winograd.ts says where "auto" takes them and why that is
// harmless).
//
// Work: the tiles (image, tile row, tile column) are cut into chunks of KC tiles; a range of
// consecutive chunks is summed by one item into its own partial dU (NCH ranges, a function of the
// shapes only), then f32_winograd_dw_finish adds the ranges in order and applies G^T . G. An
// item transforms its chunk's patches (all C channels) and dY tiles (its block of output-channel
// strips) into plain row-major matrices V_t (C x KC) and Z_t (O x KC), packs them as the GEMM
// kernels' operands and runs the micro-kernels. Blocks of strips change no sum, so they may
// follow the thread count: the same bits on any thread count.
import { take, rangeStart, rangeEnd } from "./common";
import { MR, NR, EP_FIRST, packAStrip, packB } from "./gemm_micro";
import { stripTiles } from "./gemm_tail";
import { tileOrigins, inputTile, sideBySide, pairsWhole, transpose4, V_PAD } from "./winograd";

/** A applied to m vectors (s, s + ss, ...) into A = m + r - 1 (d, d + ds, ...): the transpose of
 *  the forward's output transform A^T. F(2x2,3x3): points 0, 1, -1 and infinity; F(4x4,3x3) and
 *  F(2x2,5x5): 0, 1, -1, 2, -2 and infinity. */
// @ts-ignore: decorator
@inline function aTransform(s: usize, ss: usize, d: usize, ds: usize, m: i32, A: i32): void {
  const y0 = v128.load(s), y1 = v128.load(s + ss);
  if (A == 6 && m == 2) {
    // F(2,5): A^T's rows (1, 1, 1, 1, 1, 0) and (0, 1, -1, 2, -2, 1)
    const y2 = f32x4.add(y1, y1);
    v128.store(d, y0);
    v128.store(d + ds, f32x4.add(y0, y1));
    v128.store(d + 2 * ds, f32x4.sub(y0, y1));
    v128.store(d + 3 * ds, f32x4.add(y0, y2));
    v128.store(d + 4 * ds, f32x4.sub(y0, y2));
    v128.store(d + 5 * ds, y1);
    return;
  }
  if (m == 2) {
    v128.store(d, y0);
    v128.store(d + ds, f32x4.add(y0, y1));
    v128.store(d + 2 * ds, f32x4.sub(y0, y1));
    v128.store(d + 3 * ds, f32x4.neg(y1));
    return;
  }
  const y2 = v128.load(s + 2 * ss), y3 = v128.load(s + 3 * ss);
  const e = f32x4.add(y0, y2), od = f32x4.add(y1, y3);
  const e4 = f32x4.add(y0, f32x4.mul(y2, f32x4.splat(4))), o8 = f32x4.add(f32x4.add(y1, y1), f32x4.mul(y3, f32x4.splat(8)));
  v128.store(d, y0);
  v128.store(d + ds, f32x4.add(e, od));
  v128.store(d + 2 * ds, f32x4.sub(e, od));
  v128.store(d + 3 * ds, f32x4.add(e4, o8));
  v128.store(d + 4 * ds, f32x4.sub(e4, o8));
  v128.store(d + 5 * ds, y3);
}

/** Z = A dY A^T of four tiles (lanes; origins in org as tileOrigins writes them) of output
 *  channel o, dY zero past the HO x WO map: point (i, j) at z + (i*A + j)*ts bytes (A = m + r - 1).
 *  The tiles' m x m outputs go to buf first ((i, j) at buf + (i*m + j)*16), A's columns then
 *  rows through buf + m*m*16 (buf: (m*m + 6*m) vectors). */
function gradTile(org: usize, row: bool, dy: usize, O: i32, o: i32, HO: i32, WO: i32, PH: i32, PW: i32, z: usize, ts: usize,
  m: i32, A: i32, buf: usize): void {
  if (row) {
    // four whole tiles side by side: each of their m rows is 4m consecutive outputs
    const n = load<i32>(org, 12), oy = load<i32>(org, 4) + PH, ox = load<i32>(org, 8) + PW;
    let r = dy + ((<usize>(n * O + o) * HO * WO + <usize>oy * WO + ox) << 2);
    for (let i = 0; i < m; i++) {
      const d = buf + (<usize>(i * m) << 4);
      if (m == 2) {
        const a0 = v128.load(r), a1 = v128.load(r, 16);
        v128.store(d, f32x4.shuffle(a0, a1, 0, 2, 4, 6));
        v128.store(d, f32x4.shuffle(a0, a1, 1, 3, 5, 7), 16);
      } else transpose4(v128.load(r), v128.load(r, 16), v128.load(r, 32), v128.load(r, 48), d);
      r += <usize>WO << 2;
    }
  } else if (m == 4 && pairsWhole(org, m, PH, PW, HO, WO)) {
    // two pairs of side-by-side tiles, whole (maps 2 tiles wide, or a tile row ending between
    // them): each row of a pair is 8 consecutive outputs
    const oy = load<i32>(org, 4) + PH, ox = load<i32>(org, 8) + PW, oy2 = load<i32>(org, 36) + PH, ox2 = load<i32>(org, 40) + PW;
    let ra = dy + ((<usize>(load<i32>(org, 12) * O + o) * HO * WO + <usize>oy * WO + ox) << 2);
    let rb = dy + ((<usize>(load<i32>(org, 44) * O + o) * HO * WO + <usize>oy2 * WO + ox2) << 2);
    for (let i = 0; i < m; i++) {
      transpose4(v128.load(ra), v128.load(ra, 16), v128.load(rb), v128.load(rb, 16), buf + (<usize>(i * m) << 4));
      ra += <usize>WO << 2;
      rb += <usize>WO << 2;
    }
  } else {
    for (let k = 0; k < m * m; k++) v128.store(buf + (<usize>k << 4), f32x4.splat(0));
    for (let l = 0; l < 4; l++) {
      const og = org + (<usize>l << 4);
      if (load<i32>(og) == 0) continue; // past the last tile
      const n = load<i32>(og, 12), oy = load<i32>(og, 4) + PH, ox = load<i32>(og, 8) + PW;
      const p = dy + ((<usize>(n * O + o) * HO * WO + <usize>oy * WO + ox) << 2);
      for (let i = 0; i < min(m, HO - oy); i++)
        for (let j = 0; j < min(m, WO - ox); j++)
          store<f32>(buf + (<usize>(i * m + j) << 4) + (<usize>l << 2), load<f32>(p + ((<usize>i * WO + j) << 2)));
    }
  }
  const tmp = buf + (<usize>(m * m) << 4), ms = <usize>m << 4;
  for (let j = 0; j < m; j++) aTransform(buf + (<usize>j << 4), ms, tmp + (<usize>j << 4), ms, m, A);
  for (let i = 0; i < A; i++) aTransform(tmp + <usize>i * ms, 16, z + <usize>(i * A) * ts, ts, m, A);
}

/** Input channels per inputTile call in f32_winograd_dw (its four groups of tiles take turns). */
// @ts-ignore: decorator
@inline const DW_CB: i32 = 4;

/** Partial sums of dU (NCH ranges of T matrices O x C, V_PAD floats apart: matrix t of range r at
 *  part + (r*T + t)*(O*C + V_PAD) floats) for
 *  input x and output gradient dy; chunks of KC tiles (a multiple of 4); items = NCH ranges x
 *  OBN blocks of output-channel strips x CBN blocks of input-channel slivers (so that a chunk's
 *  transforms stay about 1 MB whatever the channels: KC stays long). Scratch per thread
 *  (floats): V T*(CBMAX*KC + V_PAD), Z T*(OBMAX*KC + V_PAD), packed A MR*KC, packed B CBMAX*KC, tile MR*NR, tile
 *  origins of four groups 64 (i32), patch buffers 3*T*4; CBMAX = ceil(ceil(C/NR)/CBN)*NR, OBMAX likewise. */
export function f32_winograd_dw(geo: usize, x: usize, dy: usize, part: usize, NCH: i32, KC: i32, OBN: i32, CBN: i32, m: i32,
  scratch: usize, scratchBytes: i32, ith: i32, nth: i32): void {
  const N = load<i32>(geo), C = load<i32>(geo, 4), H = load<i32>(geo, 8), W = load<i32>(geo, 12), O = load<i32>(geo, 16);
  const PH = load<i32>(geo, 40), PW = load<i32>(geo, 44), HO = load<i32>(geo, 56), WO = load<i32>(geo, 60);
  const KS = load<i32>(geo, 24), A = m + KS - 1, T = A * A; // kernel size 3 or 5
  const TH = (HO + m - 1) / m, TW = (WO + m - 1) / m, NT = N * TH * TW;
  const L = (NT + KC - 1) / KC, S = (O + MR - 1) / MR, NSL = (C + NR - 1) / NR;
  const OBMAX = (S + OBN - 1) / OBN * MR, CBMAX = (NSL + CBN - 1) / CBN * NR;
  // a point's V and Z are V_PAD floats further apart than their size (at sizes of multiples of
  // 4 KB the points of one tile group fall in one L1 set)
  const vts = <usize>(CBMAX * KC + V_PAD) << 2, zts = <usize>(OBMAX * KC + V_PAD) << 2; // bytes from point t to t + 1
  const v = scratch + <usize>ith * scratchBytes;
  const z = v + <usize>T * vts;
  const pa = z + <usize>T * zts;
  const pb = pa + (<usize>(MR * KC) << 2);
  const tile = pb + (<usize>(CBMAX * KC) << 2);
  const org = tile + (<usize>(MR * NR) << 2);
  const buf = org + 256;
  // point t of range r's partial sums at part + (r*T + t)*PS floats (PS: V_PAD past O*C, as V)
  const OC = <usize>O * C, PS = OC + V_PAD, HW = <usize>H * W;
  const blocks = OBN * CBN;
  for (let it = take(-1, nth); it < NCH * blocks; it = take(it, nth)) {
    const r = it / blocks, b = it - r * blocks, ob = b / CBN, cb = b - ob * CBN;
    const s0 = ob * S / OBN, s1 = (ob + 1) * S / OBN, o0 = s0 * MR, o1 = min(O, s1 * MR);
    const c0 = cb * NSL / CBN * NR, c1 = min(C, (cb + 1) * NSL / CBN * NR), cn = c1 - c0, nsl = (cn + NR - 1) / NR;
    const dst = part + ((<usize>r * <usize>T * PS + c0) << 2);
    const l0 = rangeStart(L, r, NCH), l1 = rangeEnd(L, r, NCH);
    if (l0 >= l1) {
      // more ranges than chunks: this one adds nothing
      for (let t = 0; t < T; t++)
        for (let o = o0; o < o1; o++) for (let c = 0; c < cn; c++) store<f32>(dst + ((<usize>t * PS + <usize>o * C + c) << 2), 0);
      continue;
    }
    const xc = x + (HW * c0 << 2); // channel c0 of image 0
    for (let l = l0; l < l1; l++) {
      const q0 = l * KC, kc = min(KC, NT - q0), kc4 = (kc + 3) & ~3;
      // V_t (cn x kc4) and Z_t (rows o0..o1 of O x kc4), four tiles per vector; lanes past the
      // last tile are zeros
      // four groups of four tiles at a time, channel block by channel block: each point's line
      // of V_t or Z_t (16 tiles of one channel) is filled while it is in L1 (group by group over
      // all channels, 16 channels' 36 points each way were 72 KB of lines between two writes to one)
      for (let k = 0; k < kc4; k += 16) {
        const ng = min(4, (kc4 - k) >> 2);
        for (let g = 0; g < ng; g++) tileOrigins(q0 + k + 4 * g, NT, TH, TW, m, C, H, W, PH, PW, xc, org + (<usize>g << 6));
        for (let cb = 0; cb < cn; cb += DW_CB)
          for (let g = 0; g < ng; g++)
            inputTile(org + (<usize>g << 6), min(DW_CB, cn - cb), cb, H, W, m, KS, v + (<usize>(cb * KC + k + 4 * g) << 2), vts, <usize>KC << 2, buf);
        for (let o = o0; o < o1; o++)
          for (let g = 0; g < ng; g++) {
            const og = org + (<usize>g << 6);
            gradTile(og, sideBySide(og, m, PH, PW, HO, WO), dy, O, o, HO, WO, PH, PW, z + ((<usize>(o - o0) * KC + k + 4 * g) << 2), zts, m, A, buf);
          }
      }
      const flags = l == l0 ? EP_FIRST : 0;
      for (let t = 0; t < T; t++) {
        packB(v + <usize>t * vts, KC, 1, 0, kc4, 0, cn, pb); // B = V_t^T: kc4 tiles x cn
        for (let s = s0; s < s1; s++) {
          const mr = min(MR, O - s * MR);
          packAStrip(z + <usize>t * zts, KC, 0, s * MR - o0, mr, 0, kc4, pa);
          stripTiles(pa, pb, kc4, nsl, dst + ((<usize>t * PS + <usize>(s * MR) * C) << 2), C, mr, cn, 1, 0, flags, 0, 0, tile);
        }
      }
    }
  }
}

/** dw (O x C x r x r) = G^T (sum of the NCH partial dU in order) G. Items: output channels;
 *  four input channels at a time, one per lane (each lane's sums and transforms are the scalar
 *  ones: the same bits): the T points' partial sums added in range order into buf, G^T down the
 *  columns into tmp, then along the rows into the taps (scratch: 2 KB per thread). Lanes past
 *  C read the next row's sums or V_PAD and are not stored. */
export function f32_winograd_dw_finish(part: usize, NCH: i32, O: i32, C: i32, dw: usize, m: i32, r: i32, scratch: usize, ith: i32, nth: i32): void {
  const A = m + r - 1, T = A * A, as = <usize>A << 4, RR = r * r;
  const ts = (<usize>O * C + V_PAD) << 2, rs = ts * <usize>T;
  const buf = scratch + <usize>ith * 2048, tmp = buf + (<usize>T << 4), out = tmp + (<usize>(r * A) << 4);
  for (let o = take(-1, nth); o < O; o = take(o, nth)) {
    for (let c = 0; c < C; c += 4) {
      const p = part + ((<usize>o * C + c) << 2);
      for (let t = 0; t < T; t++) {
        let u = f32x4.splat(0), q = p + <usize>t * ts;
        for (let k = 0; k < NCH; k++) {
          u = f32x4.add(u, v128.load(q));
          q += rs;
        }
        v128.store(buf + (<usize>t << 4), u);
      }
      for (let j = 0; j < A; j++) gtTransform(buf + (<usize>j << 4), as, tmp + (<usize>j << 4), as, m, r);
      for (let i = 0; i < r; i++) gtTransform(tmp + <usize>i * as, 16, out + (<usize>(i * r) << 4), 16, m, r);
      const d = dw + ((<usize>o * C + c) * RR << 2);
      for (let l = 0; l < min(4, C - c); l++)
        for (let k = 0; k < RR; k++) store<f32>(d + (<usize>(l * RR + k) << 2), load<f32>(out + (<usize>k << 4) + (<usize>l << 2)));
    }
  }
}

/** G^T applied to A = m + r - 1 vectors (s, s + ss, ...: one per point) into the r taps (d,
 *  d + ds, ...). F(2x2,3x3)'s G rows: (1, 0, 0), (1, 1, 1)/2, (1, -1, 1)/2, (0, 0, 1); F(4x4,3x3)'s:
 *  (1, 0, 0)/4, -(1, 1, 1)/6, -(1, -1, 1)/6, (1, 2, 4)/24, (1, -2, 4)/24, (0, 0, 1); F(2x2,5x5)'s
 *  (1, 0, 0, 0, 0)/4, -(1, 1, 1, 1, 1)/6, -(1, -1, 1, -1, 1)/6, (1, 2, 4, 8, 16)/24,
 *  (1, -2, 4, -8, 16)/24, (0, 0, 0, 0, 1). */
function gtTransform(s: usize, ss: usize, d: usize, ds: usize, m: i32, r: i32): void {
  const u0 = v128.load(s), u1 = v128.load(s + ss), u2 = v128.load(s + 2 * ss), u3 = v128.load(s + 3 * ss);
  const a = f32x4.add(u1, u2), b = f32x4.sub(u1, u2);
  if (m == 2 && r == 3) {
    const h = f32x4.splat(0.5);
    v128.store(d, f32x4.add(u0, f32x4.mul(a, h)));
    v128.store(d + ds, f32x4.mul(b, h));
    v128.store(d + 2 * ds, f32x4.add(f32x4.mul(a, h), u3));
    return;
  }
  const u4 = v128.load(s + 4 * ss), u5 = v128.load(s + 5 * ss);
  const c = f32x4.add(u3, u4), e = f32x4.sub(u3, u4), sixth = f32x4.splat(<f32>(1.0 / 6));
  v128.store(d, f32x4.add(f32x4.sub(f32x4.mul(u0, f32x4.splat(0.25)), f32x4.mul(a, sixth)), f32x4.mul(c, f32x4.splat(<f32>(1.0 / 24)))));
  if (r == 5) {
    // taps 1-4: -(u1 -+ u2)/6 + (u3 -+ u4)*(1/12, 1/6, 1/3, 2/3), tap 4 + u5
    const bs = f32x4.mul(b, sixth), as6 = f32x4.mul(a, sixth);
    v128.store(d + ds, f32x4.sub(f32x4.mul(e, f32x4.splat(<f32>(1.0 / 12))), bs));
    v128.store(d + 2 * ds, f32x4.sub(f32x4.mul(c, sixth), as6));
    v128.store(d + 3 * ds, f32x4.sub(f32x4.mul(e, f32x4.splat(<f32>(1.0 / 3))), bs));
    v128.store(d + 4 * ds, f32x4.add(f32x4.sub(f32x4.mul(c, f32x4.splat(<f32>(2.0 / 3))), as6), u5));
    return;
  }
  v128.store(d + ds, f32x4.sub(f32x4.mul(e, f32x4.splat(<f32>(1.0 / 12))), f32x4.mul(b, sixth)));
  v128.store(d + 2 * ds, f32x4.add(f32x4.mul(f32x4.sub(c, a), sixth), u5));
}
