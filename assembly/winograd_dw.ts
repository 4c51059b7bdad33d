// The weight gradient of a 3x3 stride-1 convolution by Winograd F(2x2, 3x3): the forward's
// algorithm transposed (docs/kernels.md). The forward computes each 2x2 output tile as
// Y = A^T [U ⊙ V] A with U = G g G^T and V = B^T d B (d: the tile's 4x4 input patch, zeros
// outside the image), so
//   dU = sum over tiles of (A dY A^T) ⊙ V,    dg = G^T dU G,
// with dY zero at outputs past the map. For every one of the 16 points t that is a GEMM over the
// tiles: dU_t (O x C) = Z_t (O x tiles) * V_t^T (tiles x C), Z = A dY A^T: 16 products per tile
// and (o, c) where im2col's weight gradient does 36 (4 positions x 9 taps): 2.25x less
// arithmetic. F(2x2, 3x3) and not F(4x4, 3x3): its transforms are exact in f32 but for G^T's
// halves, so the gradient is as accurate as im2col's (F(4x4)'s 1/6 and 1/24 would add error to a
// sum over every tile of the batch).
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
import { tileOrigins, inputTile, sideBySide, V_PAD } from "./winograd";

/** Points of F(2x2, 3x3): 4x4. */
// @ts-ignore: decorator
@inline const T: i32 = 16;

/** Z = A dY A^T of four tiles (lanes; origins in org as tileOrigins writes them) of output
 *  channel o, dY zero past the HO x WO map: point (i, j) at z + (i*4 + j)*ts bytes. */
function gradTile(org: usize, row: bool, dy: usize, O: i32, o: i32, HO: i32, WO: i32, PH: i32, PW: i32, z: usize, ts: usize): void {
  let y00 = f32x4.splat(0), y01 = y00, y10 = y00, y11 = y00;
  if (row) {
    // four whole tiles side by side: two rows of 8 outputs, even and odd columns apart
    const n = load<i32>(org, 12), oy = load<i32>(org, 4) + PH, ox = load<i32>(org, 8) + PW;
    const r0 = dy + ((<usize>(n * O + o) * HO * WO + <usize>oy * WO + ox) << 2), r1 = r0 + (<usize>WO << 2);
    const a0 = v128.load(r0), a1 = v128.load(r0, 16), b0 = v128.load(r1), b1 = v128.load(r1, 16);
    y00 = f32x4.shuffle(a0, a1, 0, 2, 4, 6);
    y01 = f32x4.shuffle(a0, a1, 1, 3, 5, 7);
    y10 = f32x4.shuffle(b0, b1, 0, 2, 4, 6);
    y11 = f32x4.shuffle(b0, b1, 1, 3, 5, 7);
  } else {
    for (let l = 0; l < 4; l++) {
      const og = org + (<usize>l << 4);
      if (load<i32>(og) == 0) continue; // past the last tile
      const n = load<i32>(og, 12), oy = load<i32>(og, 4) + PH, ox = load<i32>(og, 8) + PW;
      const p = dy + ((<usize>(n * O + o) * HO * WO + <usize>oy * WO + ox) << 2);
      const right = ox + 1 < WO, down = oy + 1 < HO;
      const v00 = load<f32>(p), v01 = right ? load<f32>(p, 4) : 0;
      const v10 = down ? load<f32>(p + (<usize>WO << 2)) : 0, v11 = right && down ? load<f32>(p + (<usize>WO << 2), 4) : 0;
      if (l == 0) {
        y00 = f32x4.replace_lane(y00, 0, v00); y01 = f32x4.replace_lane(y01, 0, v01);
        y10 = f32x4.replace_lane(y10, 0, v10); y11 = f32x4.replace_lane(y11, 0, v11);
      } else if (l == 1) {
        y00 = f32x4.replace_lane(y00, 1, v00); y01 = f32x4.replace_lane(y01, 1, v01);
        y10 = f32x4.replace_lane(y10, 1, v10); y11 = f32x4.replace_lane(y11, 1, v11);
      } else if (l == 2) {
        y00 = f32x4.replace_lane(y00, 2, v00); y01 = f32x4.replace_lane(y01, 2, v01);
        y10 = f32x4.replace_lane(y10, 2, v10); y11 = f32x4.replace_lane(y11, 2, v11);
      } else {
        y00 = f32x4.replace_lane(y00, 3, v00); y01 = f32x4.replace_lane(y01, 3, v01);
        y10 = f32x4.replace_lane(y10, 3, v10); y11 = f32x4.replace_lane(y11, 3, v11);
      }
    }
  }
  // A dY: rows (y0), (y0 + y1), (y0 - y1), (-y1); then each row (u, v) -> (u, u + v, u - v, -v)
  zRow(y00, y01, z, ts);
  zRow(f32x4.add(y00, y10), f32x4.add(y01, y11), z + 4 * ts, ts);
  zRow(f32x4.sub(y00, y10), f32x4.sub(y01, y11), z + 8 * ts, ts);
  zRow(f32x4.neg(y10), f32x4.neg(y11), z + 12 * ts, ts);
}

// @ts-ignore: decorator
@inline function zRow(u: v128, v: v128, z: usize, ts: usize): void {
  v128.store(z, u);
  v128.store(z + ts, f32x4.add(u, v));
  v128.store(z + 2 * ts, f32x4.sub(u, v));
  v128.store(z + 3 * ts, f32x4.neg(v));
}

/** Partial sums of dU (NCH ranges of T matrices O x C, V_PAD floats apart: matrix t of range r at
 *  part + (r*T + t)*(O*C + V_PAD) floats) for
 *  input x and output gradient dy; chunks of KC tiles (a multiple of 4); items = NCH ranges x
 *  OBN blocks of output-channel strips x CBN blocks of input-channel slivers (so that a chunk's
 *  transforms stay about 1 MB whatever the channels: KC stays long). Scratch per thread
 *  (floats): V T*(CBMAX*KC + V_PAD), Z T*(OBMAX*KC + V_PAD), packed A MR*KC, packed B CBMAX*KC, tile MR*NR, tile
 *  origins 16 (i32), patch buffers 3*T*4; CBMAX = ceil(ceil(C/NR)/CBN)*NR, OBMAX likewise. */
export function f32_winograd_dw(geo: usize, x: usize, dy: usize, part: usize, NCH: i32, KC: i32, OBN: i32, CBN: i32,
  scratch: usize, scratchBytes: i32, ith: i32, nth: i32): void {
  const N = load<i32>(geo), C = load<i32>(geo, 4), H = load<i32>(geo, 8), W = load<i32>(geo, 12), O = load<i32>(geo, 16);
  const PH = load<i32>(geo, 40), PW = load<i32>(geo, 44), HO = load<i32>(geo, 56), WO = load<i32>(geo, 60);
  const TH = (HO + 1) / 2, TW = (WO + 1) / 2, NT = N * TH * TW;
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
  const buf = org + 64;
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
      for (let k = 0; k < kc4; k += 4) {
        tileOrigins(q0 + k, NT, TH, TW, 2, C, H, W, PH, PW, xc, org);
        inputTile(org, cn, H, W, 2, 3, v + (<usize>k << 2), vts, <usize>KC << 2, buf);
        const row = sideBySide(org, 2, PH, PW, HO, WO);
        for (let o = o0; o < o1; o++) gradTile(org, row, dy, O, o, HO, WO, PH, PW, z + ((<usize>(o - o0) * KC + k) << 2), zts);
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

/** dw (O x C x 3 x 3) = G^T (sum of the NCH partial dU in order) G. Items: output channels;
 *  four input channels at a time (one per lane: each lane's sums and transform are the scalar
 *  ones, the same bits), the rest one by one. */
export function f32_winograd_dw_finish(part: usize, NCH: i32, O: i32, C: i32, dw: usize, ith: i32, nth: i32): void {
  const ts = (<usize>O * C + V_PAD) << 2, rs = ts * <usize>T;
  for (let o = take(-1, nth); o < O; o = take(o, nth)) {
    for (let c = 0; c < C; c++) {
      let u0: f32 = 0, u1: f32 = 0, u2: f32 = 0, u3: f32 = 0, u4: f32 = 0, u5: f32 = 0, u6: f32 = 0, u7: f32 = 0;
      let u8: f32 = 0, u9: f32 = 0, u10: f32 = 0, u11: f32 = 0, u12: f32 = 0, u13: f32 = 0, u14: f32 = 0, u15: f32 = 0;
      let p = part + ((<usize>o * C + c) << 2);
      for (let r = 0; r < NCH; r++) {
        u0 += load<f32>(p); u1 += load<f32>(p + ts); u2 += load<f32>(p + 2 * ts); u3 += load<f32>(p + 3 * ts);
        u4 += load<f32>(p + 4 * ts); u5 += load<f32>(p + 5 * ts); u6 += load<f32>(p + 6 * ts); u7 += load<f32>(p + 7 * ts);
        u8 += load<f32>(p + 8 * ts); u9 += load<f32>(p + 9 * ts); u10 += load<f32>(p + 10 * ts); u11 += load<f32>(p + 11 * ts);
        u12 += load<f32>(p + 12 * ts); u13 += load<f32>(p + 13 * ts); u14 += load<f32>(p + 14 * ts); u15 += load<f32>(p + 15 * ts);
        p += rs;
      }
      const d = dw + ((<usize>o * C + c) * 9 << 2);
      colRow(d, gt0(u0, u4, u8), gt0(u1, u5, u9), gt0(u2, u6, u10), gt0(u3, u7, u11));
      colRow(d + 12, gt1(u4, u8), gt1(u5, u9), gt1(u6, u10), gt1(u7, u11));
      colRow(d + 24, gt2(u4, u8, u12), gt2(u5, u9, u13), gt2(u6, u10, u14), gt2(u7, u11, u15));
    }
  }
}

// @ts-ignore: decorator
@inline function gt0(a: f32, b: f32, c: f32): f32 { return a + (b + c) * 0.5; }
// @ts-ignore: decorator
@inline function gt1(b: f32, c: f32): f32 { return (b - c) * 0.5; }
// @ts-ignore: decorator
@inline function gt2(b: f32, c: f32, d: f32): f32 { return (b + c) * 0.5 + d; }

/** One row of 3 taps from the row's 4 points. */
// @ts-ignore: decorator
@inline function colRow(d: usize, a: f32, b: f32, c: f32, e: f32): void {
  store<f32>(d, gt0(a, b, c));
  store<f32>(d, gt1(b, c), 4);
  store<f32>(d, gt2(b, c, e), 8);
}
