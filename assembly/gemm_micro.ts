// SGEMM core (micro-kernel, packing, blocking): C = alpha * op(A) * op(B) + beta * C (+ a row or column bias), row-major.
//
// The Goto/BLIS structure (Goto & van de Geijn, "Anatomy of high-performance matrix
// multiplication", ACM TOMS 2008): op(A) is packed once into MR-row strips (f32_gemm_pack_a, a
// kernel of its own so every thread shares the packed copy); each thread packs its KC x NC block
// of op(B) into NR-column slivers in its scratch; the micro-kernel keeps an MR x NR tile of C in
// 12 f32x4 registers (6 rows x 2 vectors) and streams the packed strip and sliver through them.
// Partial tiles run the same micro-kernel on zero-padded panels and keep only the valid part.
//
// Determinism: every C element is summed over K in fixed blocks of kcOf(K) (they depend on K
// only), in the same lane of the same micro-kernel, whatever thread computes it. How rows and
// columns are split between threads changes nothing in the arithmetic, so the split balances the
// work for nth freely and the result has the same bits on any thread count.
import { madd } from "./common";
import { stripTiles } from "./gemm_tail";

/** Micro-tile: MR rows x NR columns (12 accumulators + 2 B vectors + 1 A splat: 15 of the 16
 *  x64 vector registers). */
// @ts-ignore: decorator
@inline export const MR: i32 = 6;
// @ts-ignore: decorator
@inline export const NR: i32 = 8;
/** Longest K block (a 6 x 256 A strip is 6 KB: stays in L1 while the B slivers stream). */
// @ts-ignore: decorator
@inline export const KC_MAX: i32 = 256;
/** Slivers per packed B block (256 columns: KC_MAX x 256 floats = 256 KB, in L2). */
// @ts-ignore: decorator
@inline export const NC_SLIVERS: i32 = 32;

/** K block: K in equal blocks of at most KC_MAX (a function of K alone). */
// @ts-ignore: decorator
@inline export function kcOf(K: i32): i32 {
  const nb = (K + KC_MAX - 1) / KC_MAX;
  return (K + nb - 1) / nb;
}

/** Epilogue flags. */
// @ts-ignore: decorator
@inline export const EP_FIRST: i32 = 1; // first K block: C = alpha*acc (+ beta*C) (+ bias)
// @ts-ignore: decorator
@inline export const EP_BETA: i32 = 2; // first block reads C (beta != 0)
// @ts-ignore: decorator
@inline export const EP_ROWBIAS: i32 = 4; // + bias[row] (conv: one bias per output channel)
// @ts-ignore: decorator
@inline export const EP_COLBIAS: i32 = 8; // + bias[col] (linear: one bias per output feature)

/** One C element's epilogue in scalar code, rounded exactly as the vector path below. */
// @ts-ignore: decorator
@inline export function epilogue1(p: usize, acc: f32, alpha: f32, beta: f32, flags: i32, rb: f32, cb: f32): void {
  let t = alpha == 1 ? acc : acc * alpha;
  if (flags & EP_FIRST) {
    if (flags & EP_BETA) t = t + load<f32>(p) * beta;
    if (flags & EP_ROWBIAS) t = t + rb;
    if (flags & EP_COLBIAS) t = t + cb;
  } else t = load<f32>(p) + t;
  store<f32>(p, t);
}

// @ts-ignore: decorator
@inline export function epilogue4(p: usize, acc: v128, alpha: f32, beta: f32, flags: i32, rb: f32, cbp: usize): void {
  let t = alpha == 1 ? acc : f32x4.mul(acc, f32x4.splat(alpha));
  if (flags & EP_FIRST) {
    if (flags & EP_BETA) t = f32x4.add(t, f32x4.mul(v128.load(p), f32x4.splat(beta)));
    if (flags & EP_ROWBIAS) t = f32x4.add(t, f32x4.splat(rb));
    if (flags & EP_COLBIAS) t = f32x4.add(t, v128.load(cbp));
  } else t = f32x4.add(v128.load(p), t);
  v128.store(p, t);
}

/** The 6x8 micro-kernel: acc = sum over kc of strip (kc x MR) times sliver (kc x NR), then the
 *  epilogue into C rows c, c + ldc, ... (mr x nr valid; a tile narrower than NR goes through
 *  `tile`).
 *  rbias/cbias point at the row/column bias of this tile's first row/column. */
export function micro6x8(pa: usize, pb: usize, kc: i32, c: usize, ldc: i32, mr: i32, nr: i32,
  alpha: f32, beta: f32, flags: i32, rbias: usize, cbias: usize, tile: usize): void {
  let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  let c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(pb), b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa);
    c00 = madd(a, b0, c00); c01 = madd(a, b1, c01);
    a = v128.load32_splat(pa, 4);
    c10 = madd(a, b0, c10); c11 = madd(a, b1, c11);
    a = v128.load32_splat(pa, 8);
    c20 = madd(a, b0, c20); c21 = madd(a, b1, c21);
    a = v128.load32_splat(pa, 12);
    c30 = madd(a, b0, c30); c31 = madd(a, b1, c31);
    a = v128.load32_splat(pa, 16);
    c40 = madd(a, b0, c40); c41 = madd(a, b1, c41);
    a = v128.load32_splat(pa, 20);
    c50 = madd(a, b0, c50); c51 = madd(a, b1, c51);
    pa += 24;
    pb += 32;
  }
  if (directEpilogue(nr, alpha, flags)) {
    const first = flags != 0, rs = <usize>ldc << 2;
    c = tileRows4(c, rs, mr, first, c00, c01, c10, c11, c20, c21, c30, c31);
    if (mr > 4) tileRow(c += rs, c40, c41, first);
    if (mr > 5) tileRow(c += rs, c50, c51, first);
    return;
  }
  // otherwise through the tile (scale, beta, biases, a partial width)
  v128.store(tile, c00); v128.store(tile, c01, 16);
  v128.store(tile, c10, 32); v128.store(tile, c11, 48);
  v128.store(tile, c20, 64); v128.store(tile, c21, 80);
  v128.store(tile, c30, 96); v128.store(tile, c31, 112);
  v128.store(tile, c40, 128); v128.store(tile, c41, 144);
  v128.store(tile, c50, 160); v128.store(tile, c51, 176);
  tileEpilogue(c, ldc, mr, nr, alpha, beta, flags, rbias, cbias, tile);
}

/** The common cases of a tile's epilogue, with no test per vector: alpha 1, no beta, no bias, a
 *  full-width tile; the sums are stored (first K block: a GEMM or convolution without bias,
 *  Winograd's products) or added to C (later K blocks), rows mr.. (past the end of C) skipped.
 *  The same arithmetic as epilogue4. */
// @ts-ignore: decorator
@inline export function directEpilogue(nr: i32, alpha: f32, flags: i32): bool {
  return nr == NR && alpha == 1 && (flags & ~EP_FIRST) == 0;
}

/** Rows 0-3 (those below mr) of a tile in the direct epilogue; returns row 3's address. */
// @ts-ignore: decorator
@inline export function tileRows4(c: usize, rs: usize, mr: i32, first: bool, a0: v128, b0: v128, a1: v128, b1: v128,
  a2: v128, b2: v128, a3: v128, b3: v128): usize {
  tileRow(c, a0, b0, first);
  if (mr > 1) tileRow(c += rs, a1, b1, first);
  if (mr > 2) tileRow(c += rs, a2, b2, first);
  if (mr > 3) tileRow(c += rs, a3, b3, first);
  return c;
}

/** One full-width row of a tile: stored (first) or added to C. */
// @ts-ignore: decorator
@inline export function tileRow(p: usize, a: v128, b: v128, first: bool): void {
  if (first) {
    v128.store(p, a);
    v128.store(p, b, 16);
  } else {
    v128.store(p, f32x4.add(v128.load(p), a));
    v128.store(p, f32x4.add(v128.load(p, 16), b), 16);
  }
}

/** The epilogue of an mr x nr tile held in `tile` (rows NR floats apart): row vectors for a
 *  full-width tile, element by element otherwise (epilogue1 rounds as epilogue4). */
export function tileEpilogue(c: usize, ldc: i32, mr: i32, nr: i32, alpha: f32, beta: f32, flags: i32,
  rbias: usize, cbias: usize, tile: usize): void {
  for (let i = 0; i < mr; i++) {
    const rb = (flags & EP_ROWBIAS) ? load<f32>(rbias + (<usize>i << 2)) : 0;
    const t = tile + (<usize>(i * NR) << 2);
    if (nr == NR) {
      epilogue4(c, v128.load(t), alpha, beta, flags, rb, cbias);
      epilogue4(c + 16, v128.load(t, 16), alpha, beta, flags, rb, cbias + 16);
      c += <usize>ldc << 2;
      continue;
    }
    for (let j = 0; j < nr; j++) {
      const cb = (flags & EP_COLBIAS) ? load<f32>(cbias + (<usize>j << 2)) : 0;
      epilogue1(c + (<usize>j << 2), load<f32>(tile + (<usize>(i * NR + j) << 2)), alpha, beta, flags, rb, cb);
    }
    c += <usize>ldc << 2;
  }
}

/** Packs rows m0..m0+mr of op(A), columns k0..k0+kc, as one MR-row strip: (r, k) at k*MR + r,
 *  rows mr..MR-1 zero. op(A) = A (M x K, row stride lda) or A^T (A stored K x M). */
export function packAStrip(a: usize, lda: i32, transA: i32, m0: i32, mr: i32, k0: i32, kc: i32, dst: usize): void {
  if (transA) {
    let src = a + ((<usize>k0 * lda + m0) << 2);
    const step = <usize>lda << 2;
    if (mr == MR) {
      for (let k = 0; k < kc; k++) {
        v128.store(dst, v128.load(src));
        store<u64>(dst, load<u64>(src, 16), 16);
        src += step;
        dst += MR << 2;
      }
      return;
    }
    for (let k = 0; k < kc; k++) {
      for (let r = 0; r < MR; r++) store<f32>(dst + (<usize>r << 2), r < mr ? load<f32>(src + (<usize>r << 2)) : 0);
      src += step;
      dst += MR << 2;
    }
    return;
  }
  let k = 0;
  {
    // 4 k at a time: a 4x4 transpose for rows 0-3, rows 4-5 interleaved in pairs (rows past
    // mr zero)
    const rs = <usize>lda << 2;
    let s = a + ((<usize>m0 * lda + k0) << 2);
    const z = f32x4.splat(0);
    for (; k + 4 <= kc; k += 4) {
      const x0 = v128.load(s), x1 = mr > 1 ? v128.load(s + rs) : z, x2 = mr > 2 ? v128.load(s + 2 * rs) : z;
      const x3 = mr > 3 ? v128.load(s + 3 * rs) : z, x4 = mr > 4 ? v128.load(s + 4 * rs) : z, x5 = mr > 5 ? v128.load(s + 5 * rs) : z;
      const t0 = f32x4.shuffle(x0, x1, 0, 4, 1, 5), t1 = f32x4.shuffle(x2, x3, 0, 4, 1, 5);
      const t2 = f32x4.shuffle(x0, x1, 2, 6, 3, 7), t3 = f32x4.shuffle(x2, x3, 2, 6, 3, 7);
      const u0 = f32x4.shuffle(x4, x5, 0, 4, 1, 5), u1 = f32x4.shuffle(x4, x5, 2, 6, 3, 7);
      const d = dst + (<usize>(k * MR) << 2);
      v128.store(d, f32x4.shuffle(t0, t1, 0, 1, 4, 5));
      v128.store_lane<u64>(d, u0, 0, 16);
      v128.store(d, f32x4.shuffle(t0, t1, 2, 3, 6, 7), 24);
      v128.store_lane<u64>(d, u0, 1, 40);
      v128.store(d, f32x4.shuffle(t2, t3, 0, 1, 4, 5), 48);
      v128.store_lane<u64>(d, u1, 0, 64);
      v128.store(d, f32x4.shuffle(t2, t3, 2, 3, 6, 7), 72);
      v128.store_lane<u64>(d, u1, 1, 88);
      s += 16;
    }
  }
  for (let r = 0; r < MR; r++) {
    const d = dst + (<usize>r << 2);
    if (r >= mr) {
      for (let kk = k; kk < kc; kk++) store<f32>(d + (<usize>(kk * MR) << 2), 0);
      continue;
    }
    const src = a + ((<usize>(m0 + r) * lda + k0) << 2);
    for (let kk = k; kk < kc; kk++) store<f32>(d + (<usize>(kk * MR) << 2), load<f32>(src + (<usize>kk << 2)));
  }
}

/** Packs rows k0..k0+kc, columns n0..n0+nc of op(B) as NR-column slivers: sliver j at
 *  dst + j*kc*NR floats, (k, c) at k*NR + c, columns past nc zero. op(B) = B (K x N, row
 *  stride ldb) or B^T (B stored N x K). */
export function packB(b: usize, ldb: i32, transB: i32, k0: i32, kc: i32, n0: i32, nc: i32, dst: usize): void {
  if (!transB) {
    // row by row: reads each row of B sequentially (prefetch friendly), writes every sliver
    const full = nc & ~(NR - 1);
    const ss = <usize>(kc * NR) << 2; // sliver stride
    for (let k = 0; k < kc; k++) {
      const src = b + ((<usize>(k0 + k) * ldb + n0) << 2);
      let d = dst + (<usize>(k * NR) << 2);
      for (let j = 0; j < full; j += NR) {
        v128.store(d, v128.load(src + (<usize>j << 2)));
        v128.store(d, v128.load(src + (<usize>j << 2), 16), 16);
        d += ss;
      }
      if (full < nc) for (let c = 0; c < NR; c++) store<f32>(d + (<usize>c << 2), full + c < nc ? load<f32>(src + (<usize>(full + c) << 2)) : 0);
    }
    return;
  }
  // B stored N x K: column c of a sliver is row n0+j+c of B, contiguous in k.
  for (let j = 0; j < nc; j += NR) {
    const nr = min(NR, nc - j);
    let d = dst + (<usize>(j * kc) << 2);
    const src = b + ((<usize>(n0 + j) * ldb + k0) << 2);
    const rs = <usize>ldb << 2;
    let k = 0;
    // 4 k at a time: two 4x4 transposes per step (columns past nr zero)
    for (; k + 4 <= kc; k += 4) {
      const o = <usize>k << 2;
      transpose4(src + o, rs, d, nr);
      transpose4(src + o + 4 * rs, rs, d + 16, nr - 4);
      d += 4 * NR << 2;
    }
    for (; k < kc; k++) {
      for (let c = 0; c < NR; c++)
        store<f32>(d + (<usize>c << 2), c < nr ? load<f32>(src + <usize>c * rs + (<usize>k << 2)) : 0);
      d += NR << 2;
    }
  }
}

/** Reads a 4x4 block (rows src, src+rs, ...; rows from `rows` on read as zeros) and writes its
 *  transpose as 4 vectors NR floats apart (dst, dst + NR*4, ...). */
// @ts-ignore: decorator
@inline export function transpose4(src: usize, rs: usize, dst: usize, rows: i32): void {
  const z = f32x4.splat(0);
  const r0 = rows > 0 ? v128.load(src) : z, r1 = rows > 1 ? v128.load(src + rs) : z;
  const r2 = rows > 2 ? v128.load(src + 2 * rs) : z, r3 = rows > 3 ? v128.load(src + 3 * rs) : z;
  const t0 = f32x4.shuffle(r0, r1, 0, 4, 1, 5), t1 = f32x4.shuffle(r2, r3, 0, 4, 1, 5);
  const t2 = f32x4.shuffle(r0, r1, 2, 6, 3, 7), t3 = f32x4.shuffle(r2, r3, 2, 6, 3, 7);
  v128.store(dst, f32x4.shuffle(t0, t1, 0, 1, 4, 5));
  v128.store(dst, f32x4.shuffle(t0, t1, 2, 3, 6, 7), NR << 2);
  v128.store(dst, f32x4.shuffle(t2, t3, 0, 1, 4, 5), NR << 3);
  v128.store(dst, f32x4.shuffle(t2, t3, 2, 3, 6, 7), 3 * NR << 2);
}

/** Strips s0..s1 of packed A (pa: strip 0, whole-K strips) times the packed B block pb (slivers
 *  of kc rows starting at K offset pc) into C at c (row 0 of strip 0, column 0 of the block);
 *  m, n: valid rows and columns from there. */
// @ts-ignore: decorator
@inline export function macroBlock(pa: usize, K: i32, pc: i32, s0: i32, s1: i32, pb: usize, kc: i32, nsl: i32,
  c: usize, ldc: i32, m: i32, n: i32, alpha: f32, beta: f32, flags: i32, rbias: usize, cbias: usize, tile: usize): void {
  for (let s = s0; s < s1; s++) {
    const a = pa + ((<usize>s * K + pc) * MR << 2);
    const mr = min(MR, m - s * MR);
    const crow = c + (<usize>(s * MR) * ldc << 2);
    const rb = rbias + (<usize>(s * MR) << 2);
    stripTiles(a, pb, kc, nsl, crow, ldc, mr, n, alpha, beta, flags, rb, cbias, tile);
  }
}

