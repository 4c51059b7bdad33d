// Micro-kernels for the last strip of A when it has 4 rows or fewer (M = 50 leaves 2 rows of
// its 9th strip, M = 20 and M = 64 leave 2 and 4): the 6x8 kernel would do all 6 rows' work
// for them. Two rows go two slivers at a time (2x16) where there are two. They read the same packed strip (6 floats per k, the first 2 or 4 used) and sliver,
// and every C element gets the same madds in the same order as in micro6x8, so which kernel
// computes a tile changes no bit. The epilogue goes through the tile (gemm_micro.ts tileEpilogue,
// shared with micro6x8 for scaled, beta and bias epilogues and partial widths).
import { madd } from "./common";
import { MR, NR, micro6x8, tileEpilogue, directEpilogue, tileRows4 } from "./gemm_micro";

/** One strip of A (mr valid rows) times nsl slivers of a packed B block (sliver j at pb +
 *  j*kc*NR floats; n valid columns) into C row c: the 6x8 kernel per sliver, or for a strip of
 *  1 or 2 rows the 2x16 kernel on pairs of full slivers (with only 4 accumulators the 2x8
 *  kernel waits on its madds' latency; 8 chains keep the multiply-add units busy). */
// @ts-ignore: decorator
@inline export function stripTiles(a: usize, pb: usize, kc: i32, nsl: i32, c: usize, ldc: i32, mr: i32, n: i32,
  alpha: f32, beta: f32, flags: i32, rbias: usize, cbias: usize, tile: usize): void {
  const ss = <usize>(kc * NR) << 2;
  let j = 0;
  if (mr <= 2)
    for (; j + 2 <= nsl && (j + 2) * NR <= n; j += 2)
      micro2x16(a, pb + <usize>j * ss, ss, kc, c + (<usize>(j * NR) << 2), ldc, mr, alpha, beta, flags, rbias,
        cbias + (<usize>(j * NR) << 2), tile);
  for (; j < nsl; j++)
    microTile(a, pb + <usize>j * ss, kc, c + (<usize>(j * NR) << 2), ldc, mr, min(NR, n - j * NR), alpha, beta, flags,
      rbias, cbias + (<usize>(j * NR) << 2), tile);
}

/** An MR x NR tile of C from a packed strip and sliver: the 2-, 4- or 6-row kernel by mr. */
// @ts-ignore: decorator
@inline export function microTile(pa: usize, pb: usize, kc: i32, c: usize, ldc: i32, mr: i32, nr: i32,
  alpha: f32, beta: f32, flags: i32, rbias: usize, cbias: usize, tile: usize): void {
  if (mr <= 2) micro2x8(pa, pb, kc, c, ldc, mr, nr, alpha, beta, flags, rbias, cbias, tile);
  else if (mr <= 4) micro4x8(pa, pb, kc, c, ldc, mr, nr, alpha, beta, flags, rbias, cbias, tile);
  else micro6x8(pa, pb, kc, c, ldc, mr, nr, alpha, beta, flags, rbias, cbias, tile);
}

function micro4x8(pa: usize, pb: usize, kc: i32, c: usize, ldc: i32, mr: i32, nr: i32,
  alpha: f32, beta: f32, flags: i32, rbias: usize, cbias: usize, tile: usize): void {
  let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
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
    pa += MR << 2;
    pb += NR << 2;
  }
  if (directEpilogue(nr, alpha, flags)) {
    tileRows4(c, <usize>ldc << 2, mr, flags != 0, c00, c01, c10, c11, c20, c21, c30, c31);
    return;
  }
  v128.store(tile, c00); v128.store(tile, c01, 16);
  v128.store(tile, c10, 32); v128.store(tile, c11, 48);
  v128.store(tile, c20, 64); v128.store(tile, c21, 80);
  v128.store(tile, c30, 96); v128.store(tile, c31, 112);
  tileEpilogue(c, ldc, mr, nr, alpha, beta, flags, rbias, cbias, tile);
}

function micro2x8(pa: usize, pb: usize, kc: i32, c: usize, ldc: i32, mr: i32, nr: i32,
  alpha: f32, beta: f32, flags: i32, rbias: usize, cbias: usize, tile: usize): void {
  let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00;
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(pb), b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa);
    c00 = madd(a, b0, c00); c01 = madd(a, b1, c01);
    a = v128.load32_splat(pa, 4);
    c10 = madd(a, b0, c10); c11 = madd(a, b1, c11);
    pa += MR << 2;
    pb += NR << 2;
  }
  v128.store(tile, c00); v128.store(tile, c01, 16);
  v128.store(tile, c10, 32); v128.store(tile, c11, 48);
  tileEpilogue(c, ldc, mr, nr, alpha, beta, flags, rbias, cbias, tile);
}

/** Two full slivers (the second ss bytes after the first) for a strip of 1 or 2 rows. */
function micro2x16(pa: usize, pb: usize, ss: usize, kc: i32, c: usize, ldc: i32, mr: i32,
  alpha: f32, beta: f32, flags: i32, rbias: usize, cbias: usize, tile: usize): void {
  let c00 = f32x4.splat(0), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
  let p1 = pb + ss;
  for (let k = 0; k < kc; k++) {
    const a0 = v128.load32_splat(pa), a1 = v128.load32_splat(pa, 4);
    let b = v128.load(pb);
    c00 = madd(a0, b, c00); c10 = madd(a1, b, c10);
    b = v128.load(pb, 16);
    c01 = madd(a0, b, c01); c11 = madd(a1, b, c11);
    b = v128.load(p1);
    c02 = madd(a0, b, c02); c12 = madd(a1, b, c12);
    b = v128.load(p1, 16);
    c03 = madd(a0, b, c03); c13 = madd(a1, b, c13);
    pa += MR << 2;
    pb += NR << 2;
    p1 += NR << 2;
  }
  // two 2 x 8 tiles, each through the tile and the epilogue of the other tail kernels
  v128.store(tile, c00); v128.store(tile, c01, 16);
  v128.store(tile, c10, 32); v128.store(tile, c11, 48);
  tileEpilogue(c, ldc, mr, NR, alpha, beta, flags, rbias, cbias, tile);
  v128.store(tile, c02); v128.store(tile, c03, 16);
  v128.store(tile, c12, 32); v128.store(tile, c13, 48);
  tileEpilogue(c + (NR << 2), ldc, mr, NR, alpha, beta, flags, rbias, cbias + (NR << 2), tile);
}
