// Winograd convolution F(m x m, r x r) for stride-1 layers: F(2x2,3x3) and F(4x4,3x3) for 3x3
// kernels, F(2x2,5x5) for 5x5 ones (Lavin & Gray, "Fast algorithms for convolutional neural
// networks", CVPR 2016). The output is cut into m x m tiles; each tile's A x A input patch d
// (A = m + r - 1) becomes V = B^T d B, each r x r filter g becomes U = G g G^T (in f32), and for
// every one of the T = A^2 transform points t the tiles' outputs are the product M_t (O x tiles)
// = U_t (O x C) V_t (C x tiles); a tile's output is A^T M A. F(2,3) does 16 multiplies where
// im2col does 36 per tile; F(4,3) 36 where im2col does 144; F(2,5) 36 where im2col does 100.
// F(4,3) and F(2,5) interpolate at the same points (0, 1, -1, 2, -2 and infinity), so their
// patch transform B^T is the same: the 6-point code below serves both; G and A^T differ.
//
// Layout: U is packed like f32_gemm_pack_a's operand (T matrices O x C; f32_winograd_weight
// writes it so, and src/ops/packs.ts keeps it while the weight is unchanged); each work item is
// a block of NBT tiles (a multiple of NR, consecutive in (image, tile row, tile column) order)
// times a block of the output channels' row strips. The item transforms its tiles' patches for
// all C channels straight into packed B slivers (lanes = tiles), or finds them transformed by
// f32_winograd_input (few tiles: once for all items), runs the 6x8 micro-kernel of
// gemm_micro.ts per point, strip and sliver into its scratch (SPC strips at a time, point by
// point), then transforms those strips' outputs back and adds the bias.
//
// Determinism: every output is computed by one item; its sums over C run in the K blocks of
// kcOf(C) in one lane of the micro-kernel, and the transforms are fixed sequences of adds and
// multiplies on one lane. Neither depends on the item it falls in, so the split (NBT, MB, SPC,
// a shared V) may follow the thread count and the bits stay the same.
import { take } from "./common";
import { epSpan } from "./conv_epilogue";
import { MR, NR, EP_FIRST, kcOf } from "./gemm_micro";
import { microTile } from "./gemm_tail";

// ---- the weight transform ----

/** Point i of the 1-D filter transform G g (g0, g1, g2 -> m + 2 values), four filters at once. */
// @ts-ignore: decorator
@inline function filter1(g0: v128, g1: v128, g2: v128, i: i32, m: i32): v128 {
  if (i == 0) return m == 2 ? g0 : f32x4.mul(g0, f32x4.splat(0.25));
  if (i == m + 1) return g2;
  const even = f32x4.add(g0, g2);
  if (m == 2) return f32x4.mul(i == 1 ? f32x4.add(even, g1) : f32x4.sub(even, g1), f32x4.splat(0.5));
  if (i == 1) return f32x4.mul(f32x4.add(even, g1), f32x4.splat(<f32>(-1.0 / 6)));
  if (i == 2) return f32x4.mul(f32x4.sub(even, g1), f32x4.splat(<f32>(-1.0 / 6)));
  // g0/24 + g2/6 +- g1/12
  const e = f32x4.add(f32x4.mul(g0, f32x4.splat(<f32>(1.0 / 24))), f32x4.mul(g2, f32x4.splat(<f32>(1.0 / 6))));
  const o = f32x4.mul(g1, f32x4.splat(<f32>(1.0 / 12)));
  return i == 3 ? f32x4.add(e, o) : f32x4.sub(e, o);
}

/** Tap (ky, kx) of four filters (src, src + fs, ...; lanes from nf on zero), reversed with flip. */
// @ts-ignore: decorator
@inline function taps(src: usize, fs: usize, nf: i32, flip: i32, ky: i32, kx: i32): v128 {
  const p = src + (<usize>(flip ? (2 - ky) * 3 + 2 - kx : ky * 3 + kx) << 2);
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (nf > 1) v = f32x4.replace_lane(v, 1, load<f32>(p + fs));
  if (nf > 2) v = f32x4.replace_lane(v, 2, load<f32>(p + 2 * fs));
  if (nf > 3) v = f32x4.replace_lane(v, 3, load<f32>(p + 3 * fs));
  return v;
}

/** U_t = (G g G^T)[t] for the filters g of a convolution with O outputs and C inputs: g = w[o][c]
 *  (w: O x C x r x r) or, with flip, the input gradient's filters g[ky][kx] = w[c][o][r-1-ky][r-1-kx]
 *  (w: C x O x r x r); r = 3 (m = 2 or 4) or 5 (m = 2). Written straight in f32_gemm_pack_a's
 *  layout of T matrices O x C:
 *  (t, o, c) at ((t*S + o/MR)*C + c)*MR + o%MR, S = ceil(O/MR), rows O .. S*MR - 1 zero.
 *  Items: strips of MR rows, so that no two threads write the same cache line (the layout puts
 *  a strip's rows side by side at every point; with single rows as items, 512 x 512 filters took
 *  44 ms on two threads and 16 on one, now 12); four inputs c at a time (one per lane).
 *  scratch: W5_SCRATCH bytes per thread (F(2,5) only). */
export function f32_winograd_weight(w: usize, O: i32, C: i32, flip: i32, m: i32, r: i32, u: usize, scratch: usize, ith: i32, nth: i32): void {
  if (r == 5) {
    weight5(w, O, C, flip, u, scratch, ith, nth);
    return;
  }
  const A = m + 2, S = (O + MR - 1) / MR;
  const fs: usize = flip ? <usize>O * 36 : 36; // bytes from filter (o, c) to (o, c + 1)
  const ts = <usize>(S * C * MR) << 2; // from point t to t + 1
  for (let s = take(-1, nth); s < S; s = take(s, nth))
  for (let k = 0; k < MR; k++) {
    const o = s * MR + k;
    for (let c = 0; c < C; c += 4) {
      const nf = o < O ? min(4, C - c) : 0;
      const src = w + ((flip ? <usize>c * O + o : <usize>o * C + c) * 9 << 2);
      const g00 = nf ? taps(src, fs, nf, flip, 0, 0) : f32x4.splat(0), g01 = nf ? taps(src, fs, nf, flip, 0, 1) : g00;
      const g02 = nf ? taps(src, fs, nf, flip, 0, 2) : g00, g10 = nf ? taps(src, fs, nf, flip, 1, 0) : g00;
      const g11 = nf ? taps(src, fs, nf, flip, 1, 1) : g00, g12 = nf ? taps(src, fs, nf, flip, 1, 2) : g00;
      const g20 = nf ? taps(src, fs, nf, flip, 2, 0) : g00, g21 = nf ? taps(src, fs, nf, flip, 2, 1) : g00;
      const g22 = nf ? taps(src, fs, nf, flip, 2, 2) : g00;
      const nc = min(4, C - c);
      let d = u + ((<usize>(s * C + c) * MR + k) << 2);
      for (let i = 0; i < A; i++) {
        // row i of G g (one value per tap column), then its row transform
        const r0 = filter1(g00, g10, g20, i, m), r1 = filter1(g01, g11, g21, i, m), r2 = filter1(g02, g12, g22, i, m);
        for (let l = 0; l < A; l++) {
          const v = filter1(r0, r1, r2, l, m);
          store<f32>(d, f32x4.extract_lane(v, 0));
          if (nc > 1) store<f32>(d, f32x4.extract_lane(v, 1), MR * 4);
          if (nc > 2) store<f32>(d, f32x4.extract_lane(v, 2), MR * 8);
          if (nc > 3) store<f32>(d, f32x4.extract_lane(v, 3), MR * 12);
          d += ts;
        }
      }
    }
  }
}

/** F(2,5)'s filter transform G g of five vectors g0 .. g4 (at s, s + ss, ...; four filters, one
 *  per lane) into six (at d, d + ds, ...): g(p) = sum_k g_k p^k scaled by 1/4, -1/6, -1/6, 1/24,
 *  1/24 at p = 0, 1, -1, 2, -2, and g4 (the point at infinity). */
function filter5(s: usize, ss: usize, d: usize, ds: usize): void {
  const g0 = v128.load(s), g1 = v128.load(s + ss), g2 = v128.load(s + 2 * ss), g3 = v128.load(s + 3 * ss), g4 = v128.load(s + 4 * ss);
  const sixth = f32x4.splat(<f32>(-1.0 / 6));
  const even = f32x4.add(f32x4.add(g0, g2), g4), odd = f32x4.add(g1, g3);
  // (g0 + 4 g2 + 16 g4) / 24 and (2 g1 + 8 g3) / 24
  const e = f32x4.add(f32x4.add(f32x4.mul(g0, f32x4.splat(<f32>(1.0 / 24))), f32x4.mul(g2, f32x4.splat(<f32>(1.0 / 6)))),
    f32x4.mul(g4, f32x4.splat(<f32>(2.0 / 3))));
  const o = f32x4.add(f32x4.mul(g1, f32x4.splat(<f32>(1.0 / 12))), f32x4.mul(g3, f32x4.splat(<f32>(1.0 / 3))));
  v128.store(d, f32x4.mul(g0, f32x4.splat(0.25)));
  v128.store(d + ds, f32x4.mul(f32x4.add(even, odd), sixth));
  v128.store(d + 2 * ds, f32x4.mul(f32x4.sub(even, odd), sixth));
  v128.store(d + 3 * ds, f32x4.add(e, o));
  v128.store(d + 4 * ds, f32x4.sub(e, o));
  v128.store(d + 5 * ds, g4);
}

/** f32_winograd_weight for F(2x2, 5x5): the same items and layout, 36 points. The taps of four
 *  filters, the columns' transforms and a row's points go through the thread's scratch (25 + 30
 *  + 6 vectors), so that each transform is written once: tap by tap it cost the download a
 *  kilobyte. */
function weight5(w: usize, O: i32, C: i32, flip: i32, u: usize, scratch: usize, ith: i32, nth: i32): void {
  const S = (O + MR - 1) / MR;
  const fs: usize = flip ? <usize>O * 100 : 100; // bytes from filter (o, c) to (o, c + 1)
  const ts = <usize>(S * C * MR) << 2; // from point t to t + 1
  // tap (ky, kx) at g + (ky*5 + kx)*16; row i of G g, column kx at gg + (i*5 + kx)*16; a row's points at pt
  const g = scratch + <usize>ith * W5_SCRATCH, gg = g + 25 * 16, pt = gg + 30 * 16;
  for (let s = take(-1, nth); s < S; s = take(s, nth))
  for (let k = 0; k < MR; k++) {
    const o = s * MR + k;
    for (let c = 0; c < C; c += 4) {
      const nf = o < O ? min(4, C - c) : 0;
      const src = w + ((flip ? <usize>c * O + o : <usize>o * C + c) * 25 << 2);
      for (let t = 0; t < 25; t++) {
        // tap t of the four filters (reversed with flip) into lanes 0 .. nf - 1, the rest zero
        const p = src + (<usize>(flip ? 24 - t : t) << 2), q = g + (<usize>t << 4);
        v128.store(q, f32x4.splat(0));
        for (let l = 0; l < nf; l++) store<f32>(q + (<usize>l << 2), load<f32>(p + <usize>l * fs));
      }
      for (let kx = 0; kx < 5; kx++) filter5(g + (<usize>kx << 4), 80, gg + (<usize>kx << 4), 80);
      const nc = min(4, C - c);
      let d = u + ((<usize>(s * C + c) * MR + k) << 2);
      for (let i = 0; i < 6; i++) {
        filter5(gg + <usize>i * 80, 16, pt, 16);
        for (let l = 0; l < 6; l++) {
          const v = v128.load(pt + (<usize>l << 4));
          store<f32>(d, f32x4.extract_lane(v, 0));
          if (nc > 1) store<f32>(d, f32x4.extract_lane(v, 1), MR * 4);
          if (nc > 2) store<f32>(d, f32x4.extract_lane(v, 2), MR * 8);
          if (nc > 3) store<f32>(d, f32x4.extract_lane(v, 3), MR * 12);
          d += ts;
        }
      }
    }
  }
}

/** Bytes of f32_winograd_weight's scratch per thread (F(2,5): 61 vectors; src/ops/winograd.ts). */
// @ts-ignore: decorator
@inline export const W5_SCRATCH: i32 = 1024;

// ---- the 1-D transforms on four tiles at once (one per lane) ----

/** The input transform B^T d of A = 4 or 6 vectors (s, s + ss, ...) into (d, d + ds, ...). */
// @ts-ignore: decorator
@inline function input1(s: usize, ss: usize, d: usize, ds: usize, A: i32): void {
  if (A == 4) row4(v128.load(s), v128.load(s + ss), v128.load(s + 2 * ss), v128.load(s + 3 * ss), d, ds);
  else input6(v128.load(s), v128.load(s + ss), v128.load(s + 2 * ss), v128.load(s + 3 * ss), v128.load(s + 4 * ss), v128.load(s + 5 * ss), d, ds);
}

/** The output transform A^T M of six vectors (F(4,3), F(2,5)) into m vectors (F(2,3)'s is
 *  output4x4). */
// @ts-ignore: decorator
@inline function output1(s: usize, ss: usize, d: usize, ds: usize, m: i32): void {
  const m0 = v128.load(s), m1 = v128.load(s + ss), m2 = v128.load(s + 2 * ss);
  const m3 = v128.load(s + 3 * ss), m4 = v128.load(s + 4 * ss), m5 = v128.load(s + 5 * ss);
  const a = f32x4.add(m1, m2), b = f32x4.sub(m1, m2), c = f32x4.add(m3, m4), e = f32x4.sub(m3, m4);
  v128.store(d, f32x4.add(f32x4.add(m0, a), c));
  const y1 = f32x4.add(b, f32x4.mul(f32x4.splat(2), e));
  if (m == 2) {
    // F(2,5): the second row of A^T takes the point at infinity
    v128.store(d + ds, f32x4.add(y1, m5));
    return;
  }
  v128.store(d + ds, y1);
  v128.store(d + 2 * ds, f32x4.add(a, f32x4.mul(f32x4.splat(4), c)));
  v128.store(d + 3 * ds, f32x4.add(f32x4.add(b, f32x4.mul(f32x4.splat(8), e)), m5));
}

// ---- the forward ----

/** Floats between one point's transformed patches (V_t) and the next beyond their size. Without
 *  it V_t of a block is often a multiple of 4 KB (16 channels x 64 tiles; 128 channels x 8), so
 *  that the 36 points a patch's transform writes fall in one L1 set and evict each other: CIFAR
 *  ResNet-20's 16@32x32 forward at batch 128 took 14.7 ms on one thread, 10.3 with it (the same
 *  bits). src/ops/winograd.ts sizes V with the same value. */
// @ts-ignore: decorator
@inline export const V_PAD: i32 = 16;

// Scratch per thread (floats): V = T*(C*NBT + V_PAD) (packed slivers), M = T*SPC*MR*NBT, the
// block's tile origins (NBT/4 groups of 16 i32), patch, transform and row buffers 3*T*4 (src/ops/winograd.ts
// winogradForward).

/** Where lane l's tile starts (4 i32 at org + 16*l): its image plane (channel 0), the input row
 *  and column of its patch (output origin - padding) and its image; plane 0 past the last tile. */
// @ts-ignore: decorator
@inline export function tileOrigins(q: i32, NT: i32, TH: i32, TW: i32, m: i32, C: i32, H: i32, W: i32, PH: i32, PW: i32, x: usize, org: usize): void {
  for (let l = 0; l < 4; l++) {
    const ql = q + l, o = org + (<usize>l << 4);
    if (ql >= NT) {
      store<i32>(o, 0);
      continue;
    }
    const n = ql / (TH * TW), r = ql - n * TH * TW, ty = r / TW, tx = r - ty * TW;
    store<i32>(o, <i32>(x + (<usize>n * C * H * W << 2)));
    store<i32>(o, ty * m - PH, 4);
    store<i32>(o, tx * m - PW, 8);
    store<i32>(o, n, 12);
  }
}

/** The 4x4 transpose of rows q0 .. q3: column j (q0[j], q1[j], q2[j], q3[j]) at d + 16*j. */
// @ts-ignore: decorator
@inline export function transpose4(q0: v128, q1: v128, q2: v128, q3: v128, d: usize): void {
  const t0 = f32x4.shuffle(q0, q1, 0, 4, 1, 5), t1 = f32x4.shuffle(q2, q3, 0, 4, 1, 5);
  const t2 = f32x4.shuffle(q0, q1, 2, 6, 3, 7), t3 = f32x4.shuffle(q2, q3, 2, 6, 3, 7);
  v128.store(d, f32x4.shuffle(t0, t1, 0, 1, 4, 5));
  v128.store(d, f32x4.shuffle(t0, t1, 2, 3, 6, 7), 16);
  v128.store(d, f32x4.shuffle(t2, t3, 0, 1, 4, 5), 32);
  v128.store(d, f32x4.shuffle(t2, t3, 2, 3, 6, 7), 48);
}

/** Where row yy of a tile's patch (A values from column x of plane p + off) can be read: in place
 *  when the patch is inside, zr (zeros) above or below the image, else copied into lb, whose
 *  columns outside the image are zero (the caller zeroes lb once per call: x is the lane's). */
function laneRow(p: usize, off: usize, yy: i32, x: i32, inside: bool, H: i32, W: i32, A: i32, lb: usize, zr: usize): usize {
  if (p == 0 || yy < 0 || yy >= H) return zr;
  const r = p + off + (<usize>(yy * W + x) << 2);
  if (inside) return r;
  const xs = max(0, -x), xe = min(A, W - x);
  for (let j = xs; j < xe; j++) store<f32>(lb + (<usize>j << 2), load<f32>(r + (<usize>j << 2)));
  return lb;
}

/** Row i of four patches from four rows (A values each at r0 .. r3) as A vectors (lane l = row
 *  l) at d, d + 16, ...: a 4x4 transpose and, for A = 6, two columns of another. */
// @ts-ignore: decorator
@inline function lanesRow(r0: usize, r1: usize, r2: usize, r3: usize, A: i32, d: usize): void {
  transpose4(v128.load(r0), v128.load(r1), v128.load(r2), v128.load(r3), d);
  if (A == 4) return;
  const s0 = v128.load64_zero(r0, 16), s1 = v128.load64_zero(r1, 16), s2 = v128.load64_zero(r2, 16), s3 = v128.load64_zero(r3, 16);
  const u0 = f32x4.shuffle(s0, s1, 0, 4, 1, 5), u1 = f32x4.shuffle(s2, s3, 0, 4, 1, 5);
  v128.store(d, f32x4.shuffle(u0, u1, 0, 1, 4, 5), 64);
  v128.store(d, f32x4.shuffle(u0, u1, 2, 3, 6, 7), 80);
}

/** Whether a tile's A x A patch from (y, x) is inside the H x W image. */
// @ts-ignore: decorator
@inline function inside(p: usize, y: i32, x: i32, A: i32, H: i32, W: i32): bool {
  return p != 0 && y >= 0 && y + A <= H && x >= 0 && x + A <= W;
}

/** Where row yy of four side-by-side patches (span values from column x of plane p) can be
 *  read: in place when all inside, zr (zeros) above or below the image, else copied into rb,
 *  whose columns outside the image (0 .. xs - 1 and xe ..) stay zero for the whole call. */
// @ts-ignore: decorator
@inline function seqRow(p: usize, yy: i32, x: i32, H: i32, W: i32, xs: i32, xe: i32, span: i32, rb: usize, zr: usize): usize {
  if (yy < 0 || yy >= H || xs >= xe) return zr;
  const r = p + (<usize>(yy * W + x) << 2);
  if (xs == 0 && xe == span) return r;
  let j = xs;
  for (; j + 4 <= xe; j += 4) v128.store(rb + (<usize>j << 2), v128.load(r + (<usize>j << 2)));
  for (; j < xe; j++) store<f32>(rb + (<usize>j << 2), load<f32>(r + (<usize>j << 2)));
  return rb;
}

/** F(2,3)'s patches of four side-by-side tiles (row i's 10 values at ri: tile l's from ri + 8*l
 *  bytes) transformed into V as input4x4 does, each row's values gathered into the tiles'
 *  lanes by shuffles (e_j = (r[j], r[2 + j], r[4 + j], r[6 + j])), all in registers. */
// @ts-ignore: decorator
@inline function patch4x4(r0: usize, r1: usize, r2: usize, r3: usize, v: usize, ts: usize): void {
  // rows 1 and 2 serve every row of B^T d; rows 0 and 3 one each
  let q0 = v128.load(r1), q1 = v128.load(r1, 16), q2 = v128.load64_zero(r1, 32);
  const d10 = f32x4.shuffle(q0, q1, 0, 2, 4, 6), d11 = f32x4.shuffle(q0, q1, 1, 3, 5, 7);
  const d12 = f32x4.shuffle(d10, q2, 1, 2, 3, 4), d13 = f32x4.shuffle(d11, q2, 1, 2, 3, 5);
  q0 = v128.load(r2); q1 = v128.load(r2, 16); q2 = v128.load64_zero(r2, 32);
  const d20 = f32x4.shuffle(q0, q1, 0, 2, 4, 6), d21 = f32x4.shuffle(q0, q1, 1, 3, 5, 7);
  const d22 = f32x4.shuffle(d20, q2, 1, 2, 3, 4), d23 = f32x4.shuffle(d21, q2, 1, 2, 3, 5);
  q0 = v128.load(r0); q1 = v128.load(r0, 16); q2 = v128.load64_zero(r0, 32);
  let e0 = f32x4.shuffle(q0, q1, 0, 2, 4, 6), e1 = f32x4.shuffle(q0, q1, 1, 3, 5, 7);
  row4(f32x4.sub(e0, d20), f32x4.sub(e1, d21), f32x4.sub(f32x4.shuffle(e0, q2, 1, 2, 3, 4), d22), f32x4.sub(f32x4.shuffle(e1, q2, 1, 2, 3, 5), d23), v, ts);
  row4(f32x4.add(d10, d20), f32x4.add(d11, d21), f32x4.add(d12, d22), f32x4.add(d13, d23), v + 4 * ts, ts);
  row4(f32x4.sub(d20, d10), f32x4.sub(d21, d11), f32x4.sub(d22, d12), f32x4.sub(d23, d13), v + 8 * ts, ts);
  q0 = v128.load(r3); q1 = v128.load(r3, 16); q2 = v128.load64_zero(r3, 32);
  e0 = f32x4.shuffle(q0, q1, 0, 2, 4, 6); e1 = f32x4.shuffle(q0, q1, 1, 3, 5, 7);
  row4(f32x4.sub(d10, e0), f32x4.sub(d11, e1), f32x4.sub(d12, f32x4.shuffle(e0, q2, 1, 2, 3, 4)), f32x4.sub(d13, f32x4.shuffle(e1, q2, 1, 2, 3, 5)), v + 12 * ts, ts);
}

/** The 1-D input transform of F(4,3) and F(2,5), B^T of six vectors in registers, stored at d,
 *  d + ds, ... (input1 is it on vectors in memory). */
// @ts-ignore: decorator
@inline function input6(d0: v128, d1: v128, d2: v128, d3: v128, d4: v128, d5: v128, d: usize, ds: usize): void {
  const two = f32x4.splat(2), four = f32x4.splat(4), five = f32x4.splat(5);
  const e42 = f32x4.sub(d4, d2), e31 = f32x4.mul(two, f32x4.sub(d3, d1));
  v128.store(d, f32x4.sub(f32x4.add(f32x4.mul(four, d0), d4), f32x4.mul(five, d2)));
  v128.store(d + ds, f32x4.sub(f32x4.add(d3, d4), f32x4.mul(four, f32x4.add(d1, d2))));
  v128.store(d + 2 * ds, f32x4.add(f32x4.sub(d4, d3), f32x4.mul(four, f32x4.sub(d1, d2))));
  v128.store(d + 3 * ds, f32x4.add(e42, e31));
  v128.store(d + 4 * ds, f32x4.sub(e42, e31));
  v128.store(d + 5 * ds, f32x4.add(f32x4.sub(f32x4.mul(four, d1), f32x4.mul(five, d3)), d5));
}

/** F(4,3)'s or F(2,5)'s patches of four side-by-side tiles (row i's 3m + 6 values at ri, tile
 *  l's from ri + 4*m*l bytes) into V (point (i, k) at v + (i*6 + k)*ts). B^T d down the columns
 *  is an operation on each value's column alone, so it runs on the rows as they lie, vector
 *  by vector (5 vectors for m = 4, 3 for m = 2: fewer than the six transposed columns), into
 *  tmp (row i's vectors at tmp + (i*5 + q)*16); then each row is gathered into the tiles'
 *  lanes (e_j = (r[j], r[m + j], r[2m + j], r[3m + j])) and times B in registers. Every value gets the operations of the general path in the same
 *  order: the same bits, with 36 fewer stores and loads. */
// @ts-ignore: decorator
@inline function patch6x6(r0: usize, r1: usize, r2: usize, r3: usize, r4: usize, r5: usize, m: i32, v: usize, ts: usize, tmp: usize): void {
  const nv = m == 4 ? 4 : 3;
  for (let q = 0; q < nv; q++) {
    const o = <usize>q << 4;
    input6(v128.load(r0 + o), v128.load(r1 + o), v128.load(r2 + o), v128.load(r3 + o), v128.load(r4 + o), v128.load(r5 + o), tmp + o, 80);
  }
  if (m == 4)
    // values 16 and 17 of each row
    input6(v128.load64_zero(r0, 64), v128.load64_zero(r1, 64), v128.load64_zero(r2, 64), v128.load64_zero(r3, 64),
      v128.load64_zero(r4, 64), v128.load64_zero(r5, 64), tmp + 64, 80);
  for (let i = 0; i < 6; i++) {
    const t = tmp + <usize>i * 80, d = v + <usize>(i * 6) * ts;
    const q0 = v128.load(t), q1 = v128.load(t, 16), q2 = v128.load(t, 32);
    if (m == 2) {
      // e_j = (r[j], r[2 + j], r[4 + j], r[6 + j])
      const e0 = f32x4.shuffle(q0, q1, 0, 2, 4, 6), e1 = f32x4.shuffle(q0, q1, 1, 3, 5, 7);
      input6(e0, e1, f32x4.shuffle(e0, q2, 1, 2, 3, 4), f32x4.shuffle(e1, q2, 1, 2, 3, 5), f32x4.shuffle(q1, q2, 0, 2, 4, 6),
        f32x4.shuffle(q1, q2, 1, 3, 5, 7), d, ts);
      continue;
    }
    // e_j = (r[j], r[4 + j], r[8 + j], r[12 + j]): transpose4's, and two columns of the next
    const q3 = v128.load(t, 48), q4 = v128.load(t, 64);
    const t0 = f32x4.shuffle(q0, q1, 0, 4, 1, 5), t1 = f32x4.shuffle(q2, q3, 0, 4, 1, 5);
    const t2 = f32x4.shuffle(q0, q1, 2, 6, 3, 7), t3 = f32x4.shuffle(q2, q3, 2, 6, 3, 7);
    const u0 = f32x4.shuffle(q1, q2, 0, 4, 1, 5), u1 = f32x4.shuffle(q3, q4, 0, 4, 1, 5);
    input6(f32x4.shuffle(t0, t1, 0, 1, 4, 5), f32x4.shuffle(t0, t1, 2, 3, 6, 7), f32x4.shuffle(t2, t3, 0, 1, 4, 5),
      f32x4.shuffle(t2, t3, 2, 3, 6, 7), f32x4.shuffle(u0, u1, 0, 1, 4, 5), f32x4.shuffle(u0, u1, 2, 3, 6, 7), d, ts);
  }
}

/** F(4,3)'s patches of two pairs of side-by-side tiles (lanes 0, 1: rows a0 .. a5, tile 1's
 *  from +16 bytes; lanes 2, 3: rows b0 .. b5) into V (point (i, k) at v + (i*6 + k)*ts), as
 *  patch6x6 does for four: B^T d down the columns on each pair's rows as they lie (10 values:
 *  three vectors, the last half used) into tmp (row i: a's three vectors at tmp + i*96, b's at
 *  + 48), then each row gathered into the four tiles' six columns and times B in registers.
 *  The same operations on every value as the general path: the same bits. */
// @ts-ignore: decorator
@inline function patchPairs(a0: usize, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize,
  b0: usize, b1: usize, b2: usize, b3: usize, b4: usize, b5: usize, v: usize, ts: usize, tmp: usize): void {
  for (let q = 0; q < 2; q++) {
    const o = <usize>q << 4;
    input6(v128.load(a0 + o), v128.load(a1 + o), v128.load(a2 + o), v128.load(a3 + o), v128.load(a4 + o), v128.load(a5 + o), tmp + o, 96);
    input6(v128.load(b0 + o), v128.load(b1 + o), v128.load(b2 + o), v128.load(b3 + o), v128.load(b4 + o), v128.load(b5 + o), tmp + 48 + o, 96);
  }
  input6(v128.load64_zero(a0, 32), v128.load64_zero(a1, 32), v128.load64_zero(a2, 32), v128.load64_zero(a3, 32),
    v128.load64_zero(a4, 32), v128.load64_zero(a5, 32), tmp + 32, 96);
  input6(v128.load64_zero(b0, 32), v128.load64_zero(b1, 32), v128.load64_zero(b2, 32), v128.load64_zero(b3, 32),
    v128.load64_zero(b4, 32), v128.load64_zero(b5, 32), tmp + 80, 96);
  for (let i = 0; i < 6; i++) {
    const t = tmp + <usize>i * 96;
    const qa0 = v128.load(t), qa1 = v128.load(t, 16), qa2 = v128.load(t, 32);
    const qb0 = v128.load(t, 48), qb1 = v128.load(t, 64), qb2 = v128.load(t, 80);
    // e_j = (a[j], a[4 + j], b[j], b[4 + j])
    const t0 = f32x4.shuffle(qa0, qa1, 0, 4, 1, 5), u0 = f32x4.shuffle(qb0, qb1, 0, 4, 1, 5);
    const t1 = f32x4.shuffle(qa0, qa1, 2, 6, 3, 7), u1 = f32x4.shuffle(qb0, qb1, 2, 6, 3, 7);
    const t2 = f32x4.shuffle(qa1, qa2, 0, 4, 1, 5), u2 = f32x4.shuffle(qb1, qb2, 0, 4, 1, 5);
    input6(f32x4.shuffle(t0, u0, 0, 1, 4, 5), f32x4.shuffle(t0, u0, 2, 3, 6, 7), f32x4.shuffle(t1, u1, 0, 1, 4, 5),
      f32x4.shuffle(t1, u1, 2, 3, 6, 7), f32x4.shuffle(t2, u2, 0, 1, 4, 5), f32x4.shuffle(t2, u2, 2, 3, 6, 7), v + <usize>(i * 6) * ts, ts);
  }
}

/** F(2,3)'s B^T d B of a 4x4 patch of four tiles (d[i][j] at buf + (i*4 + j)*16) into V (point
 *  (i, k) at v + (i*4 + k)*ts): input1 down the columns, then along the rows, as in inputTile's
 *  general path and with the same operations, but in registers instead of through a buffer
 *  (F(2,3)'s forward on 16 channels is bound by its transforms' loads and stores). */
// @ts-ignore: decorator
@inline function input4x4(buf: usize, v: usize, ts: usize): void {
  const d00 = v128.load(buf), d01 = v128.load(buf, 16), d02 = v128.load(buf, 32), d03 = v128.load(buf, 48);
  const d10 = v128.load(buf, 64), d11 = v128.load(buf, 80), d12 = v128.load(buf, 96), d13 = v128.load(buf, 112);
  const d20 = v128.load(buf, 128), d21 = v128.load(buf, 144), d22 = v128.load(buf, 160), d23 = v128.load(buf, 176);
  const d30 = v128.load(buf, 192), d31 = v128.load(buf, 208), d32 = v128.load(buf, 224), d33 = v128.load(buf, 240);
  // B^T d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3 (column by column), then each row times B
  row4(f32x4.sub(d00, d20), f32x4.sub(d01, d21), f32x4.sub(d02, d22), f32x4.sub(d03, d23), v, ts);
  row4(f32x4.add(d10, d20), f32x4.add(d11, d21), f32x4.add(d12, d22), f32x4.add(d13, d23), v + 4 * ts, ts);
  row4(f32x4.sub(d20, d10), f32x4.sub(d21, d11), f32x4.sub(d22, d12), f32x4.sub(d23, d13), v + 8 * ts, ts);
  row4(f32x4.sub(d10, d30), f32x4.sub(d11, d31), f32x4.sub(d12, d32), f32x4.sub(d13, d33), v + 12 * ts, ts);
}

/** The 1-D input transform of F(2,3), B^T of four vectors in registers, stored at d, d + ds,
 *  ... (input1 is it on vectors in memory). */
// @ts-ignore: decorator
@inline function row4(t0: v128, t1: v128, t2: v128, t3: v128, d: usize, ds: usize): void {
  v128.store(d, f32x4.sub(t0, t2));
  v128.store(d + ds, f32x4.add(t1, t2));
  v128.store(d + 2 * ds, f32x4.sub(t2, t1));
  v128.store(d + 3 * ds, f32x4.sub(t1, t3));
}

/** Transforms the patches of 4 tiles (origins in org) of channels c0 .. c0 + C - 1 into V:
 *  point t of channel c0 + c at v + t*tstride + c*cstride bytes (lanes = the 4 tiles). */
export function inputTile(org: usize, C: i32, c0: i32, H: i32, W: i32, m: i32, r: i32, v: usize, tstride: usize, cstride: usize, buf: usize): void {
  const A = m + r - 1, HW = <usize>(H * W) << 2;
  const p0 = <usize>load<i32>(org), p1 = <usize>load<i32>(org, 16), p2 = <usize>load<i32>(org, 32), p3 = <usize>load<i32>(org, 48);
  const y0 = load<i32>(org, 4), y1 = load<i32>(org, 20), y2 = load<i32>(org, 36), y3 = load<i32>(org, 52);
  const x0 = load<i32>(org, 8), x1 = load<i32>(org, 24), x2 = load<i32>(org, 40), x3 = load<i32>(org, 56);
  const in0 = inside(p0, y0, x0, A, H, W), in1 = inside(p1, y1, x1, A, H, W);
  const in2 = inside(p2, y2, x2, A, H, W), in3 = inside(p3, y3, x3, A, H, W);
  // the four tiles side by side on one tile row (most tiles of a large map): each patch row is
  // read as vectors (patch4x4, patch6x6), in place where its 3m + A values are all inside the
  // image, else from a row buffer, a copy whose columns outside the image (0 .. xs - 1 and
  // xe ..) stay zero for the whole call (seqRow); a row above or below the image is zr, all
  // zeros. The reads go no further than the four patches' span, 3m + A values; the row
  // buffers and zr hold that rounded up to 4
  const seq = p0 != 0 && p1 == p0 && p2 == p0 && p3 == p0 && y1 == y0 && y2 == y0 && y3 == y0 &&
    x1 == x0 + m && x2 == x0 + 2 * m && x3 == x0 + 3 * m;
  const span = 3 * m + A, rbn = (span + 3) & ~3;
  const tmp = buf + (<usize>(A * A) << 4), zr = tmp + (<usize>(A * A) << 4);
  const xs = max(0, -x0), xe = max(xs, min(span, W - x0));
  // the lane-by-lane path's row buffers: 8 floats per lane (A <= 6 values), zero outside the image
  const lb = zr + (<usize>rbn << 2);
  for (let j = 0; j < rbn; j += 4) v128.store(zr + (<usize>j << 2), f32x4.splat(0));
  if (!seq) for (let j = 0; j < 32; j += 4) v128.store(lb + (<usize>j << 2), f32x4.splat(0));
  // F(2,3)'s four row buffers of 12 floats (its span is 10), in tmp, which that path leaves unused
  const rb4 = tmp;
  if (seq && A == 4) for (let j = 0; j < 48; j += 4) v128.store(rb4 + (<usize>j << 2), f32x4.splat(0));
  // F(4,3)'s and F(2,5)'s six row buffers of 20 floats (spans 18 and 12), in buf, which that
  // path leaves unused
  if (seq && A == 6) for (let j = 0; j < 120; j += 4) v128.store(buf + (<usize>j << 2), f32x4.splat(0));
  // F(4,3)'s two pairs of side-by-side tiles (maps 2 tiles wide, 8x8 and 7x7, and where a tile
  // row ends between the pairs): each pair's rows as one span of m + A values from its first
  // column, the columns outside the image (inside: xs2 .. xe2 for lanes 0, 1, xs3 .. xe3 for
  // lanes 2, 3) zero; twelve row buffers of 12 floats in buf
  const pairs = !seq && m == 4 && p0 != 0 && p2 != 0 && p1 == p0 && p3 == p2 && y1 == y0 && y3 == y2 &&
    x1 == x0 + m && x3 == x2 + m;
  const span2 = m + A, xs2 = max(0, -x0), xe2 = max(xs2, min(span2, W - x0)), xs3 = max(0, -x2), xe3 = max(xs3, min(span2, W - x2));
  if (pairs) for (let j = 0; j < 144; j += 4) v128.store(buf + (<usize>j << 2), f32x4.splat(0));
  for (let c = 0; c < C; c++) {
    const off = <usize>(c0 + c) * HW;
    // the patches, (i, j) at buf + (i*A + j)*16 bytes
    if (seq && A == 4) {
      // F(2,3): the four rows (each copy in its own row buffer) transformed in registers
      const r0 = seqRow(p0 + off, y0, x0, H, W, xs, xe, span, rb4, zr), r1 = seqRow(p0 + off, y0 + 1, x0, H, W, xs, xe, span, rb4 + 48, zr);
      const r2 = seqRow(p0 + off, y0 + 2, x0, H, W, xs, xe, span, rb4 + 96, zr), r3 = seqRow(p0 + off, y0 + 3, x0, H, W, xs, xe, span, rb4 + 144, zr);
      patch4x4(r0, r1, r2, r3, v + <usize>c * cstride, tstride);
      continue;
    }
    if (seq) {
      // F(4,3) and F(2,5): B^T d on the six rows as they lie (each copy in its own row buffer,
      // in buf), then each row of that transposed and times B in registers
      const q = p0 + off;
      patch6x6(seqRow(q, y0, x0, H, W, xs, xe, span, buf, zr), seqRow(q, y0 + 1, x0, H, W, xs, xe, span, buf + 80, zr),
        seqRow(q, y0 + 2, x0, H, W, xs, xe, span, buf + 160, zr), seqRow(q, y0 + 3, x0, H, W, xs, xe, span, buf + 240, zr),
        seqRow(q, y0 + 4, x0, H, W, xs, xe, span, buf + 320, zr), seqRow(q, y0 + 5, x0, H, W, xs, xe, span, buf + 400, zr),
        m, v + <usize>c * cstride, tstride, tmp);
      continue;
    } else if (pairs) {
      const a = p0 + off, b = p2 + off;
      patchPairs(seqRow(a, y0, x0, H, W, xs2, xe2, span2, buf, zr), seqRow(a, y0 + 1, x0, H, W, xs2, xe2, span2, buf + 48, zr),
        seqRow(a, y0 + 2, x0, H, W, xs2, xe2, span2, buf + 96, zr), seqRow(a, y0 + 3, x0, H, W, xs2, xe2, span2, buf + 144, zr),
        seqRow(a, y0 + 4, x0, H, W, xs2, xe2, span2, buf + 192, zr), seqRow(a, y0 + 5, x0, H, W, xs2, xe2, span2, buf + 240, zr),
        seqRow(b, y2, x2, H, W, xs3, xe3, span2, buf + 288, zr), seqRow(b, y2 + 1, x2, H, W, xs3, xe3, span2, buf + 336, zr),
        seqRow(b, y2 + 2, x2, H, W, xs3, xe3, span2, buf + 384, zr), seqRow(b, y2 + 3, x2, H, W, xs3, xe3, span2, buf + 432, zr),
        seqRow(b, y2 + 4, x2, H, W, xs3, xe3, span2, buf + 480, zr), seqRow(b, y2 + 5, x2, H, W, xs3, xe3, span2, buf + 528, zr),
        v + <usize>c * cstride, tstride, tmp);
      continue;
    } else {
      // four tiles anywhere (rows of tiles end inside the group, small maps): row i of each
      // patch in place, from its lane's row buffer (columns outside the image zero) or zr, and
      // the four rows transposed (lanesRow)
      for (let i = 0; i < A; i++) {
        const r0 = laneRow(p0, off, y0 + i, x0, in0, H, W, A, lb, zr);
        const r1 = laneRow(p1, off, y1 + i, x1, in1, H, W, A, lb + 32, zr);
        const r2 = laneRow(p2, off, y2 + i, x2, in2, H, W, A, lb + 64, zr);
        const r3 = laneRow(p3, off, y3 + i, x3, in3, H, W, A, lb + 96, zr);
        lanesRow(r0, r1, r2, r3, A, buf + (<usize>(i * A) << 4));
      }
    }
    // B^T d down the columns, then (B^T d) B along the rows, row i's points straight into V
    const vc = v + <usize>c * cstride;
    if (A == 4) {
      input4x4(buf, vc, tstride);
      continue;
    }
    for (let j = 0; j < A; j++) input1(buf + (<usize>j << 4), <usize>A << 4, tmp + (<usize>j << 4), <usize>A << 4, A);
    for (let i = 0; i < A; i++) input1(tmp + (<usize>(i * A) << 4), 16, vc + <usize>(i * A) * tstride, tstride, A);
  }
}

/** F(2,3)'s A^T M A + b of four tiles (point (i, l) at s + (i*4 + l)*ts) into buf ((i, j) at
 *  buf + (i*2 + j)*16): output1 down the columns, then along the rows, then the bias, as in
 *  outputTile's general path and with the same operations, in registers. */
// @ts-ignore: decorator
@inline function output4x4(s: usize, ts: usize, bv: v128, buf: usize): void {
  // column l: (m0 + m1) + m2 and (m1 - m2) - m3
  let m0 = v128.load(s), m1 = v128.load(s + 4 * ts), m2 = v128.load(s + 8 * ts), m3 = v128.load(s + 12 * ts);
  const a0 = f32x4.add(f32x4.add(m0, m1), m2), b0 = f32x4.sub(f32x4.sub(m1, m2), m3);
  m0 = v128.load(s + ts); m1 = v128.load(s + 5 * ts); m2 = v128.load(s + 9 * ts); m3 = v128.load(s + 13 * ts);
  const a1 = f32x4.add(f32x4.add(m0, m1), m2), b1 = f32x4.sub(f32x4.sub(m1, m2), m3);
  m0 = v128.load(s + 2 * ts); m1 = v128.load(s + 6 * ts); m2 = v128.load(s + 10 * ts); m3 = v128.load(s + 14 * ts);
  const a2 = f32x4.add(f32x4.add(m0, m1), m2), b2 = f32x4.sub(f32x4.sub(m1, m2), m3);
  m0 = v128.load(s + 3 * ts); m1 = v128.load(s + 7 * ts); m2 = v128.load(s + 11 * ts); m3 = v128.load(s + 15 * ts);
  const a3 = f32x4.add(f32x4.add(m0, m1), m2), b3 = f32x4.sub(f32x4.sub(m1, m2), m3);
  v128.store(buf, f32x4.add(f32x4.add(f32x4.add(a0, a1), a2), bv));
  v128.store(buf, f32x4.add(f32x4.sub(f32x4.sub(a1, a2), a3), bv), 16);
  v128.store(buf, f32x4.add(f32x4.add(f32x4.add(b0, b1), b2), bv), 32);
  v128.store(buf, f32x4.add(f32x4.sub(f32x4.sub(b1, b2), b3), bv), 48);
}

/** Row i of F(4,3)'s or F(2,5)'s A^T M A + b from row i of A^T M (six vectors at s): output1
 *  along the row and the bias, as outputTile's general path does, in registers; then its m
 *  vectors stored at d, or with toY transposed into the four tiles' 4m consecutive outputs
 *  at d (outputRow; for m = 4, tiles 2 and 3 at d2: d + 32 for four side by side). */
// @ts-ignore: decorator
@inline function rowOut6(s: usize, m: i32, bv: v128, d: usize, d2: usize, toY: bool): void {
  const m0 = v128.load(s), m1 = v128.load(s, 16), m2 = v128.load(s, 32), m3 = v128.load(s, 48), m4 = v128.load(s, 64), m5 = v128.load(s, 80);
  const a = f32x4.add(m1, m2), b = f32x4.sub(m1, m2), c = f32x4.add(m3, m4), e = f32x4.sub(m3, m4);
  const y0 = f32x4.add(f32x4.add(f32x4.add(m0, a), c), bv), y1 = f32x4.add(b, f32x4.mul(f32x4.splat(2), e));
  if (m == 2) {
    const z1 = f32x4.add(f32x4.add(y1, m5), bv);
    if (toY) {
      v128.store(d, f32x4.shuffle(y0, z1, 0, 4, 1, 5));
      v128.store(d, f32x4.shuffle(y0, z1, 2, 6, 3, 7), 16);
    } else {
      v128.store(d, y0);
      v128.store(d, z1, 16);
    }
    return;
  }
  const z1 = f32x4.add(y1, bv), z2 = f32x4.add(f32x4.add(a, f32x4.mul(f32x4.splat(4), c)), bv);
  const z3 = f32x4.add(f32x4.add(f32x4.add(b, f32x4.mul(f32x4.splat(8), e)), m5), bv);
  if (toY) {
    // transpose4, tiles 2 and 3 at d2
    const t0 = f32x4.shuffle(y0, z1, 0, 4, 1, 5), t1 = f32x4.shuffle(z2, z3, 0, 4, 1, 5);
    const t2 = f32x4.shuffle(y0, z1, 2, 6, 3, 7), t3 = f32x4.shuffle(z2, z3, 2, 6, 3, 7);
    v128.store(d, f32x4.shuffle(t0, t1, 0, 1, 4, 5));
    v128.store(d, f32x4.shuffle(t0, t1, 2, 3, 6, 7), 16);
    v128.store(d2, f32x4.shuffle(t2, t3, 0, 1, 4, 5));
    v128.store(d2, f32x4.shuffle(t2, t3, 2, 3, 6, 7), 16);
  } else {
    v128.store(d, y0);
    v128.store(d, z1, 16);
    v128.store(d, z2, 32);
    v128.store(d, z3, 48);
  }
}

/** Row i of four side-by-side output tiles (m vectors at s, lane l = tile l) as 4m consecutive
 *  floats at d: the inverse of the input side's gather into lanes. */
// @ts-ignore: decorator
@inline function outputRow(s: usize, m: i32, d: usize): void {
  if (m == 2) {
    const e0 = v128.load(s), e1 = v128.load(s, 16);
    v128.store(d, f32x4.shuffle(e0, e1, 0, 4, 1, 5));
    v128.store(d, f32x4.shuffle(e0, e1, 2, 6, 3, 7), 16);
    return;
  }
  transpose4(v128.load(s), v128.load(s, 16), v128.load(s, 32), v128.load(s, 48), d);
}

/** Whether the four tiles of org lie side by side on one tile row (consecutive, one image),
 *  each m x m block whole inside the HO x WO output. */
export function sideBySide(org: usize, m: i32, PH: i32, PW: i32, HO: i32, WO: i32): bool {
  const p = load<i32>(org), yy = load<i32>(org, 4), xx = load<i32>(org, 8);
  if (p == 0 || load<i32>(org, 48) != p || load<i32>(org, 52) != yy || load<i32>(org, 56) != xx + 3 * m) return false;
  return yy + PH + m <= HO && xx + PW + 4 * m <= WO;
}

/** Whether the four tiles of org are two pairs of side-by-side tiles (lanes 0, 1 and lanes 2,
 *  3), each m x 2m block whole inside the HO x WO output. */
export function pairsWhole(org: usize, m: i32, PH: i32, PW: i32, HO: i32, WO: i32): bool {
  const p = load<i32>(org), q = load<i32>(org, 32), ya = load<i32>(org, 4), yb = load<i32>(org, 36), xa = load<i32>(org, 8), xb = load<i32>(org, 40);
  if (p == 0 || q == 0 || load<i32>(org, 16) != p || load<i32>(org, 48) != q) return false;
  if (load<i32>(org, 20) != ya || load<i32>(org, 52) != yb || load<i32>(org, 24) != xa + m || load<i32>(org, 56) != xb + m) return false;
  return ya + PH + m <= HO && yb + PH + m <= HO && xa + PW + 2 * m <= WO && xb + PW + 2 * m <= WO;
}

/** Transforms back row r of one strip's products for 4 tiles (lanes; origins in org, as
 *  output positions = patch origin + padding) and writes the outputs inside HO x WO of
 *  channel o, plus bias b. Point t of the row at s + t*tstride. row: sideBySide(org). With ep,
 *  conv2d_fused's epilogue (conv_epilogue.ts) on each output row just written, in L1. */
function outputTile(org: usize, row: bool, s: usize, tstride: usize, m: i32, A: i32, o: i32, O: i32, PH: i32, PW: i32,
  HO: i32, WO: i32, y: usize, b: f32, buf: usize, ep: usize): void {
  const tmp = buf + (<usize>(A * A) << 4);
  // A^T M down the columns (m x A), then along the rows (m x m) into buf, plus the bias
  const bv = f32x4.splat(b);
  if (A == 4) output4x4(s, tstride, bv, buf);
  else {
    for (let l = 0; l < A; l++) output1(s + <usize>l * tstride, <usize>A * tstride, tmp + (<usize>l << 4), <usize>A << 4, m);
    if (row) {
      // the four tiles side by side, whole: each output row straight from its row of tmp
      const n = load<i32>(org, 12), oy = load<i32>(org, 4) + PH, ox = load<i32>(org, 8) + PW;
      let dst = y + ((<usize>(n * O + o) * HO * WO + <usize>oy * WO + ox) << 2);
      for (let i = 0; i < m; i++) {
        rowOut6(tmp + (<usize>(i * A) << 4), m, bv, dst, dst + 32, true);
        if (ep) epSpan(ep, o, y, dst - y, 4 * m);
        dst += <usize>WO << 2;
      }
      return;
    }
    if (m == 4 && pairsWhole(org, m, PH, PW, HO, WO)) {
      // two pairs of side-by-side tiles, whole: each output row of a pair is 8 consecutive floats
      const oy = load<i32>(org, 4) + PH, ox = load<i32>(org, 8) + PW, oy2 = load<i32>(org, 36) + PH, ox2 = load<i32>(org, 40) + PW;
      let da = y + ((<usize>(load<i32>(org, 12) * O + o) * HO * WO + <usize>oy * WO + ox) << 2);
      let db = y + ((<usize>(load<i32>(org, 44) * O + o) * HO * WO + <usize>oy2 * WO + ox2) << 2);
      for (let i = 0; i < m; i++) {
        rowOut6(tmp + (<usize>(i * A) << 4), m, bv, da, db, true);
        if (ep) {
          epSpan(ep, o, y, da - y, 2 * m);
          epSpan(ep, o, y, db - y, 2 * m);
        }
        da += <usize>WO << 2;
        db += <usize>WO << 2;
      }
      return;
    }
    for (let i = 0; i < m; i++) rowOut6(tmp + (<usize>(i * A) << 4), m, bv, buf + (<usize>(i * m) << 4), 0, false);
  }
  if (row) {
    // the four tiles side by side, whole: each output row of the four is 4m consecutive floats
    const n = load<i32>(org, 12), oy = load<i32>(org, 4) + PH, ox = load<i32>(org, 8) + PW;
    let dst = y + ((<usize>(n * O + o) * HO * WO + <usize>oy * WO + ox) << 2);
    for (let i = 0; i < m; i++) {
      outputRow(buf + (<usize>(i * m) << 4), m, dst);
      if (ep) epSpan(ep, o, y, dst - y, 4 * m);
      dst += <usize>WO << 2;
    }
    return;
  }
  // tiles anywhere: output row i of the four tiles transposed into lr (lane l's m values at lr +
  // 16*l), then stored as a vector (m = 4) or two floats (m = 2) where the tile's row is whole
  const lr = tmp;
  for (let i = 0; i < m; i++) {
    const w0 = v128.load(buf + (<usize>(i * m) << 4)), w1 = v128.load(buf + (<usize>(i * m) << 4), 16);
    const w2 = m == 4 ? v128.load(buf + (<usize>(i * m) << 4), 32) : w0, w3 = m == 4 ? v128.load(buf + (<usize>(i * m) << 4), 48) : w1;
    transpose4(w0, w1, w2, w3, lr);
    for (let l = 0; l < 4; l++) {
      const og = org + (<usize>l << 4);
      if (load<i32>(og) == 0) continue;
      const n = load<i32>(og, 12);
      const oy = load<i32>(og, 4) + PH, ox = load<i32>(og, 8) + PW;
      if (i >= HO - oy) continue;
      const cols = min(m, WO - ox), lv = lr + (<usize>l << 4);
      const dst = y + ((<usize>(n * O + o) * HO * WO + <usize>(oy + i) * WO + ox) << 2);
      if (cols == m) {
        if (m == 4) v128.store(dst, v128.load(lv));
        else store<u64>(dst, load<u64>(lv));
      } else for (let j = 0; j < cols; j++) store<f32>(dst + (<usize>j << 2), load<f32>(lv + (<usize>j << 2)));
      if (ep) epSpan(ep, o, y, dst - y, cols);
    }
  }
}

/** y = conv2d(x, W) (+ bias) for an r x r kernel, stride 1, dilation 1, one group, by F(m x m,
 *  r x r); pu: U as f32_winograd_weight writes it (f32_gemm_pack_a's layout of T matrices
 *  O x C). Items: blocks of NBT tiles (a multiple of NR) times MB blocks of row strips. With
 *  vin, the blocks' V as f32_winograd_input wrote it (transformed once, not once per item). */
export function f32_winograd_fwd(geo: usize, x: usize, pu: usize, bias: usize, y: usize, m: i32, r: i32, NBT: i32, MB: i32, SPC: i32, ep: usize,
  vin: usize, scratch: usize, scratchBytes: i32, ith: i32, nth: i32): void {
  const N = load<i32>(geo), C = load<i32>(geo, 4), H = load<i32>(geo, 8), W = load<i32>(geo, 12), O = load<i32>(geo, 16);
  const PH = load<i32>(geo, 40), PW = load<i32>(geo, 44), HO = load<i32>(geo, 56), WO = load<i32>(geo, 60);
  const A = m + r - 1, T = A * A;
  const TH = (HO + m - 1) / m, TW = (WO + m - 1) / m, NT = N * TH * TW;
  const NB = (NT + NBT - 1) / NBT, S = (O + MR - 1) / MR;
  // V: the item's own (in its scratch, transformed here) or block b of vin's
  const own = scratch + <usize>ith * scratchBytes;
  const mt = own + (vin ? 0 : <usize>(T * (C * NBT + V_PAD)) << 2);
  const org = mt + (<usize>(T * SPC * MR * NBT) << 2);
  const buf = org + (<usize>NBT << 4);
  const kcb = kcOf(C);
  for (let it = take(-1, nth); it < NB * MB; it = take(it, nth)) {
    const b = it / MB, mb = it - b * MB, s0 = mb * S / MB, s1 = (mb + 1) * S / MB;
    const q0 = b * NBT, nt = min(NBT, NT - q0), nsl = (nt + NR - 1) / NR;
    // V: point t, sliver j at v + (t*nsl + j)*C*NR floats; 4-tile groups past nt are zeros
    const vt = <usize>(nsl * C * NR + V_PAD) << 2;
    const v = vin ? vin + (<usize>b * T * (C * NBT + V_PAD) << 2) : own;
    // the block's groups of four tiles: their origins once (64 bytes each), for both transforms
    for (let g = 0; g < 2 * nsl; g++) tileOrigins(q0 + 4 * g, min(NT, q0 + nt), TH, TW, m, C, H, W, PH, PW, x, org + (<usize>g << 6));
    if (!vin) for (let g = 0; g < 2 * nsl; g++)
      inputTile(org + (<usize>g << 6), C, 0, H, W, m, r, v + <usize>(g >> 1) * C * NR * 4 + (<usize>(g & 1) << 4), vt, <usize>NR << 2, buf);
    // the item's strips SPC at a time: every point's products for them (point t's patches V_t
    // read once for SPC strips, the filters U_t of consecutive strips one run), then their
    // transforms back. M: point t, row r of the chunk, tile q at mt + ((t*rows + r)*ldm + q)
    const ldm = nsl * NR;
    for (let sc = s0; sc < s1; sc += SPC) {
      const se = min(s1, sc + SPC), rows = (se - sc) * MR, mts = <usize>(rows * ldm) << 2;
      for (let t = 0; t < T; t++)
        for (let s = sc; s < se; s++) {
          const a = pu + (<usize>(t * S + s) * C * MR << 2);
          const ms = mt + <usize>t * mts + (<usize>((s - sc) * MR * ldm) << 2);
          // the last strip's rows past O are never read back: a 4-row strip (16 channels) by
          // the 4-row kernel, the same madds per output
          const mr = min(MR, O - s * MR);
          for (let pc = 0; pc < C; pc += kcb) {
            const kc = min(kcb, C - pc);
            for (let j = 0; j < nsl; j++)
              microTile(a + (<usize>(pc * MR) << 2), v + <usize>t * vt + (<usize>(j * C + pc) * NR << 2), kc,
                ms + (<usize>(j * NR) << 2), ldm, mr, NR, 1, 0, pc == 0 ? EP_FIRST : 0, 0, 0, buf);
          }
        }
      // channel by channel, then along its row of tiles: the 36 points' lines of M (16 tiles
      // each) are read by four groups in a row, while they are in L1
      for (let k = 0; k < min(rows, O - sc * MR); k++) {
        const o = sc * MR + k, bo = bias ? load<f32>(bias + (<usize>o << 2)) : 0;
        for (let g = 0; g < 2 * nsl; g++) {
          const og = org + (<usize>g << 6);
          outputTile(og, sideBySide(og, m, PH, PW, HO, WO), mt + (<usize>(k * ldm + 4 * g) << 2), mts, m, A, o, O, PH, PW, HO, WO, y,
            bo, buf, ep);
        }
      }
    }
  }
}

/** The patches' transform alone, for f32_winograd_fwd's vin: V of tile block b (NBT tiles) at
 *  v + b*T*C*NBT floats, laid out as an item's own V (point t, sliver j at (t*nsl + j)*C*NR floats,
 *  nsl the block's slivers; tiles past the last are zeros). Items: slivers (two groups of 4
 *  tiles, which share cache lines) times blocks of CB channels (a multiple of 2: whole lines);
 *  each channel's values are inputTile's whatever the item. */
export function f32_winograd_input(geo: usize, x: usize, v: usize, m: i32, r: i32, NBT: i32, CB: i32,
  scratch: usize, scratchBytes: i32, ith: i32, nth: i32): void {
  const N = load<i32>(geo), C = load<i32>(geo, 4), H = load<i32>(geo, 8), W = load<i32>(geo, 12);
  const PH = load<i32>(geo, 40), PW = load<i32>(geo, 44), HO = load<i32>(geo, 56), WO = load<i32>(geo, 60);
  const T = (m + r - 1) * (m + r - 1), HW = <usize>(H * W) << 2;
  const TH = (HO + m - 1) / m, TW = (WO + m - 1) / m, NT = N * TH * TW;
  const NB = (NT + NBT - 1) / NBT, SB = NBT / NR, NCB = (C + CB - 1) / CB;
  const org = scratch + <usize>ith * scratchBytes, buf = org + 64;
  for (let it = take(-1, nth); it < NB * SB * NCB; it = take(it, nth)) {
    const b = it / (SB * NCB), rem = it - b * SB * NCB, j = rem / NCB, cb = rem - j * NCB;
    const q0 = b * NBT, nt = min(NBT, NT - q0), nsl = (nt + NR - 1) / NR;
    if (j >= nsl) continue;
    const c0 = cb * CB, nc = min(CB, C - c0);
    for (let h = 0; h < 2; h++) {
      tileOrigins(q0 + NR * j + 4 * h, q0 + nt, TH, TW, m, C, H, W, PH, PW, x + <usize>c0 * HW, org);
      const vb = v + (<usize>b * T * (C * NBT + V_PAD) << 2) + (<usize>(j * C + c0) * NR << 2) + (<usize>h << 4);
      inputTile(org, nc, 0, H, W, m, r, vb, <usize>(nsl * C * NR + V_PAD) << 2, <usize>NR << 2, buf);
    }
  }
}
